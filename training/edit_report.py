"""The measured tables of docs/editing.md: ``dcvae-train edit-report MODEL`` prints them (markdown) and writes JSON.

1. Strength units: how far (pixel L2 to the reconstruction) each shipped direction moves held-out test images at
   strength 1 in raw units and in std units.
2. Mean difference vs boundary (for class attributes, where the repo's classifier can judge): both directions from
   the same training examples (20 + 20 as in the paper, and 1,000 + 1,000), edited over a range of std strengths
   on held-out negative-side test images; edit success (training/metrics/edit.py's protocol) interpolated at equal
   identity cost (mean pixel L2 to the source's reconstruction).
3. Conditional edits: the target attribute with and without holding another; the held attribute's score before
   and after (classifier probability of its positive classes, or its pixel measure for measured attributes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dcvae_tools.editing.api import edit_offsets
from dcvae_tools.model import DCVAE

from .attributes import ATTRIBUTES, ClassAttribute
from .metrics.common import crop_content, split_tensors
from .metrics.edit import edit_success

STRENGTHS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
COSTS = (4.0, 6.0, 8.0)
SOURCES = 500


def _spread(n: int, k: int) -> torch.Tensor:
    return torch.from_numpy(np.linspace(0, n - 1, min(n, k)).astype(np.int64))


def _pixel_l2(a: torch.Tensor, b: torch.Tensor, content: int | None) -> torch.Tensor:
    d = (crop_content(a, content).double() - crop_content(b, content).double()) / 2.0
    return d.flatten(1).norm(dim=1)


def units_table(model: DCVAE, test: torch.Tensor) -> list[dict[str, Any]]:
    """Per shipped direction: its length, its std, and the mean pixel L2 of a strength-1 edit in each unit."""
    content = model.config.content_size
    x = test[_spread(len(test), SOURCES)]
    z = model.encode(x)
    recon = model.decode(z).cpu()
    rows = []
    for name, vector in model.attributes.items():
        if vector.metadata.get("method") == "pca":
            continue
        row: dict[str, Any] = {"attribute": name, "norm": float(vector.direction.norm()),
                               "std": model.latent_stats.std_along(vector.direction)}
        for unit in ("raw", "std"):
            (offset,) = edit_offsets(model, [(name, 1.0)], unit)
            edited = model.decode(z + offset).cpu()
            row[f"l2_{unit}"] = float(_pixel_l2(edited, recon, content).mean())
            row[f"brightness_{unit}"] = float((crop_content(edited, content).mean() + 1) / 2)
        rows.append(row)
    return rows


def _examples(labels: np.ndarray, spec: ClassAttribute, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(np.isin(labels, spec.positive))
    neg = np.flatnonzero(np.isin(labels, spec.negative))
    return rng.choice(pos, min(count, len(pos)), replace=False), rng.choice(neg, min(count, len(neg)), replace=False)


def _at_cost(costs: list[float], values: list[float], target: float) -> float | None:
    """``values`` linearly interpolated at identity cost ``target`` (None outside the measured range)."""
    if not costs[0] <= target <= costs[-1]:
        return None
    return float(np.interp(target, costs, values))


def boundary_table(model: DCVAE, classifier: Any, data: dict[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Mean difference vs boundary on each class attribute, at equal identity cost."""
    content = model.config.content_size
    train_x, train_y = data["train"]
    test_x, test_y = data["test"]
    rows = []
    for name, spec in ATTRIBUTES[model.config.dataset].items():
        if not isinstance(spec, ClassAttribute):
            continue
        sources = test_x[torch.isin(test_y, torch.tensor(spec.negative))]
        sources = sources[_spread(len(sources), SOURCES)]
        for count in (20, 1000):
            pos, neg = _examples(train_y.numpy(), spec, count, seed)
            zp = model.encode(train_x[torch.from_numpy(pos)])
            zn = model.encode(train_x[torch.from_numpy(neg)])
            directions = {"mean": model.attribute_vector(zp, zn, name=name),
                          "boundary": model.boundary(zp, zn, name=name)}
            for method, vector in directions.items():
                curve = []
                for s in STRENGTHS:
                    (offset,) = edit_offsets(model, [(vector, s)], "std")
                    r = edit_success(model, classifier, offset, sources, spec.positive, spec.negative,
                                     strength=1.0, content_size=content)
                    curve.append((r.mean_l2_to_reconstruction, r.success_rate))
                curve.sort()
                costs, success = [c for c, _ in curve], [v for _, v in curve]
                rows.append({
                    "attribute": name, "examples": f"{len(pos)}+{len(neg)}", "method": method,
                    "baseline": r.baseline_rate, "curve": curve,
                    **{f"success_at_l2_{c:g}": _at_cost(costs, success, c) for c in COSTS},
                })
    return rows


def _held_score(model: DCVAE, classifier: Any, images: torch.Tensor, spec: Any) -> torch.Tensor:
    content = model.config.content_size
    if isinstance(spec, ClassAttribute):
        with torch.inference_mode():
            probs = torch.softmax(classifier.logits(crop_content(images, content)), 1)
        return probs[:, list(spec.positive)].sum(1)
    pixels = ((crop_content(images, content)[:, 0] + 1) * 127.5).clamp(0, 255).round().numpy().astype(np.uint8)
    return torch.from_numpy(spec.measure(pixels)).float()


CONDITIONAL = {
    "fashion-mnist": [("boot", "open_shoe", 7), ("long_sleeves", "ink", 0), ("open_shoe", "boot", 7)],
    "mnist5k": [("thick", "slant", None), ("slant", "thick", None)],
}


def conditional_table(model: DCVAE, classifier: Any, data: dict[str, Any], strength: float = 2.0) -> list[dict]:
    """Target edit with and without holding another attribute: target and held scores before/after."""
    test_x, test_y = data["test"]
    specs = ATTRIBUTES[model.config.dataset]
    rows = []
    for target, held, source_class in CONDITIONAL.get(model.config.dataset, []):
        pool = test_x if source_class is None else test_x[test_y == source_class]
        x = pool[_spread(len(pool), SOURCES)]
        z = model.encode(x)
        recon = model.decode(z).cpu()
        before_t = _held_score(model, classifier, recon, specs[target])
        before_h = _held_score(model, classifier, recon, specs[held])
        for hold in ([], [held]):
            (offset,) = edit_offsets(model, [(target, strength)], "std", hold)
            edited = model.decode(z + offset).cpu()
            after_t = _held_score(model, classifier, edited, specs[target])
            after_h = _held_score(model, classifier, edited, specs[held])
            rows.append({
                "target": target, "held": held if hold else "-", "strength": strength,
                "target_before": float(before_t.mean()), "target_after": float(after_t.mean()),
                "other": held, "other_before": float(before_h.mean()), "other_after": float(after_h.mean()),
                "other_change_abs": float((after_h - before_h).abs().mean()),
                "l2": float(_pixel_l2(edited, recon, model.config.content_size).mean()),
                "score": "classifier P(positive classes)" if isinstance(specs[target], ClassAttribute)
                else "pixel measure",
            })
    return rows


def edit_report(model: DCVAE, data_root: str | None = None, seed: int = 0) -> dict[str, Any]:
    """All three tables for ``model`` (which needs latent statistics)."""
    if model.latent_stats is None:
        raise ValueError("the model has no latent statistics; run `dcvae-train latent-stats` first")
    c = model.config
    data = {split: split_tensors(c.dataset, split, c.image_size, c.channels, data_root, None, c.content_size)
            for split in ("train", "test")}
    has_classes = any(isinstance(s, ClassAttribute) for s in ATTRIBUTES.get(c.dataset, {}).values())
    classifier = None
    if has_classes:
        from .metrics.classifier import load_or_train_classifier

        classifier = load_or_train_classifier(c.dataset, data_root=data_root)
    with torch.inference_mode():
        units = units_table(model, data["test"][0])
        conditional = conditional_table(model, classifier, data)
    boundary = boundary_table(model, classifier, data, seed) if classifier is not None else []
    return {"units": units, "boundary": boundary, "conditional": conditional,
            "protocol": {"sources": SOURCES, "strengths_std": list(STRENGTHS), "seed": seed,
                         "l2": "mean per-image L2 on the [0, 1] scale over the content, edit vs reconstruction"}}


def markdown(report: dict[str, Any]) -> str:
    """The report's tables in markdown."""
    def f(v: Any, digits: int = 3) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    lines = ["| attribute | length of d | std along d | L2, strength 1 raw | L2, strength 1 std |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['attribute']} | {r['norm']:.2f} | {r['std']:.2f} | {r['l2_raw']:.2f} | {r['l2_std']:.2f} |"
              for r in report["units"]]
    if report["boundary"]:
        head = " | ".join(f"success at L2 {c:g}" for c in COSTS)
        lines += ["", f"| attribute | examples | method | unedited | {head} |",
                  "|---|---|---|---|" + "---|" * len(COSTS)]
        for r in report["boundary"]:
            cells = " | ".join(f(r[f"success_at_l2_{c:g}"]) for c in COSTS)
            lines.append(f"| {r['attribute']} | {r['examples']} | {r['method']} | {f(r['baseline'])} | {cells} |")
    if report["conditional"]:
        lines += ["", "| edit (2 std) | held | target score before -> after | other attribute | its score before -> "
                  "after | its mean abs change | L2 |", "|---|---|---|---|---|---|---|"]
        for r in report["conditional"]:
            lines.append(
                f"| {r['target']} | {r['held']} | {f(r['target_before'])} -> {f(r['target_after'])} | {r['other']} | "
                f"{f(r['other_before'])} -> {f(r['other_after'])} | {f(r['other_change_abs'])} | {r['l2']:.2f} |"
            )
    return "\n".join(lines)
