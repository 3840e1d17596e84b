"""Out-of-domain check: how often it warns about held-out in-domain images, and about images of another dataset.

For one model:

* the test split is cut into two seeded halves (seed 0); the latent statistics are built from half A with the
  code the release uses (``training.latent_stats``: training-split latents for the Mahalanobis distance, half A's
  measures for the quantiles and the far-score limit);
* false positives: the share of half B flagged, and, for the choice of ``FAR_LEVEL``, the same share and the other
  dataset's share flagged with the limit at other levels of half A's combined scores;
* the other dataset (for a Fashion-MNIST model all 5,000 ``mnist5k`` digits, for an MNIST model 5,000
  Fashion-MNIST test images): the share flagged, by the combined rule and by each measure's upper-tail p alone
  at the same false-positive level, and by the previous rule (a measure above 1.5x the test maximum);
* the documentation's examples (``docs/examples/fashion-mnist`` and ``docs/examples/mnist``): how many are
  flagged with statistics from the full test split (what a release ships).

Results go to ``benchmarks/results/domain_check.json``, one entry per model (the ``--model`` argument).

    OMP_NUM_THREADS=1 python -m benchmarks.domain_check --model fashion-mnist-32   # a few minutes on 2 cores
    OMP_NUM_THREADS=1 python -m benchmarks.domain_check --model mnist-32 --other fashion-mnist
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks import common

OTHER = {"fashion-mnist": "mnist5k", "mnist5k": "fashion-mnist", "mnist": "fashion-mnist"}
"""The default other dataset for a model trained on each dataset."""
OTHER_COUNT = 5000
LEVELS = (0.99, 0.995, 0.998)
"""Limit levels compared (share of half A's combined scores at or below the limit)."""


def load(spec: str) -> tuple[Any, str]:
    """The model of a release folder or a bundled model's name, its latent statistics left unread (rebuilt
    here), and a description with the weights' sha256."""
    from dcvae_tools.manifest import load_manifest
    from dcvae_tools.release import WEIGHTS_NAME, load_release

    folder = Path(spec)
    if not (folder / "config.json").is_file():
        entry = load_manifest().models.get(spec)
        if entry is None or not (Path(entry.bundled_dir) / "config.json").is_file():
            raise SystemExit(f"{spec} is neither a release folder nor a bundled model's name")
        folder = Path(entry.bundled_dir)
    model = load_release(folder, read_derived=False)
    digest = hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest()
    return model, f"{folder} ({WEIGHTS_NAME} sha256 {digest[:16]}...)"


def other_images(dataset: str, model: Any) -> tuple[torch.Tensor, str]:
    """Up to ``OTHER_COUNT`` images of ``dataset`` in the model's format (mnist5k: all of them; otherwise the
    test split's seeded subset)."""
    from training.metrics.common import split_tensors

    c = model.config
    split = "all" if dataset == "mnist5k" else "test"
    images, _ = split_tensors(dataset, split, c.image_size, c.channels, None, OTHER_COUNT, c.content_size)
    return images, f"{len(images)} {dataset} {split}-split images (seeded subset when larger)"


def example_images(model: Any, folder: str) -> tuple[torch.Tensor, list[str]]:
    from PIL import Image

    paths = sorted((common.ROOT / "docs" / "examples" / folder).glob("*.png"))
    return model.images_to_tensor([Image.open(p) for p in paths]), [p.name for p in paths]


def _share(mask: torch.Tensor) -> float:
    return round(float(mask.double().mean()), 4)


def measure(spec: str, other: str | None) -> dict[str, Any]:
    from dcvae_tools.editing.domain import FAR_LEVEL, MEASURES, domain_report
    from dcvae_tools.editing.stats import compute_latent_stats
    from training.latent_stats import posterior_in_chunks, reference_measures, stats_metadata
    from training.metrics.common import split_tensors

    model, description = load(spec)
    c = model.config
    other = other or OTHER.get(c.dataset or "", "mnist5k")
    print(f"{spec}: {description}; encoding the {c.dataset} train split ...", flush=True)
    train, _ = split_tensors(c.dataset, "train", c.image_size, c.channels, None, None, c.content_size)
    with torch.inference_mode():
        z_train, _ = posterior_in_chunks(model, train)
    del train
    test, _ = split_tensors(c.dataset, "test", c.image_size, c.channels, None, None, c.content_size)
    print(f"measuring {len(test)} test images ...", flush=True)
    z, errors, cycle = reference_measures(model, test)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    a, b = order[: len(order) // 2], order[len(order) // 2 :]
    meta = stats_metadata(model)
    half = compute_latent_stats(z_train, z[a], errors[a], cycle[a], meta)
    full = compute_latent_stats(z_train, z, errors, cycle, meta)
    report_a = domain_report(half, z[a], errors[a], cycle[a])
    report_b = domain_report(half, z[b], errors[b], cycle[b])
    images, other_description = other_images(other, model)
    print(f"measuring {other_description} ...", flush=True)
    oz, oerrors, ocycle = reference_measures(model, images)
    report_o = domain_report(half, oz, oerrors, ocycle)
    full_o = domain_report(full, oz, oerrors, ocycle)

    levels = []
    for level in LEVELS:
        limit = float(torch.quantile(report_a.score.double(), level))
        levels.append({"level": level, "limit": round(limit, 3),
                       "false_positive_half_b": _share(report_b.score > limit),
                       "other_flagged": _share(report_o.score > limit)})
    single = {}
    for name in MEASURES:  # each measure's own p at the same false-positive level, for comparison
        p_limit = float(torch.quantile(report_a.p_values[name].double(), 1 - FAR_LEVEL))
        single[name] = {"false_positive_half_b": _share(report_b.p_values[name] < p_limit),
                        "other_flagged": _share(report_o.p_values[name] < p_limit)}
    old = (report_o.mahalanobis > 1.5 * full.quantile("mahalanobis", 1.0)) | (
        report_o.recon_error > 1.5 * full.quantile("recon_error", 1.0))

    model.latent_stats = full
    examples = {}
    for folder in ("fashion-mnist", "mnist"):
        x, names = example_images(model, folder)
        report = model.check_domain(x, warn=False)
        examples[folder] = {"count": len(names), "flagged": int(report.far.sum()),
                            "flagged_names": [n for n, f in zip(names, report.far.tolist(), strict=True) if f]}
    return {
        "model": description,
        "dataset": c.dataset,
        "test_images": len(test),
        "half_a": len(a),
        "half_b": len(b),
        "other": other_description,
        "far_level": FAR_LEVEL,
        "limit_half_a": round(half.far_score_limit_value, 3),
        "limit_full": round(full.far_score_limit_value, 3),
        "false_positive_half_a": _share(report_a.far),
        "false_positive_half_b": _share(report_b.far),
        "other_flagged": _share(report_o.far),
        "other_flagged_full_test_stats": _share(full_o.far),
        "other_flagged_previous_rule": _share(old),
        "by_level": levels,
        "single_measure_at_far_level": single,
        "examples_full_test_stats": examples,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-mnist-32", help="release folder or bundled model name")
    parser.add_argument("--other", default=None, help="the other dataset (default: mnist5k for Fashion-MNIST "
                        "models, fashion-mnist for MNIST ones)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    info = common.machine_info()
    print(common.header("Out-of-domain check: false positives and another dataset flagged", info))
    given = sys.argv[1:] if argv is None else argv
    result = measure(args.model, args.other)
    result["command"] = " ".join(["OMP_NUM_THREADS=1 python -m benchmarks.domain_check", *given])
    rows = [{"rule": f"combined, limit at {r['level']:g}", "fp": r["false_positive_half_b"],
             "other": r["other_flagged"]} for r in result["by_level"]]
    rows += [{"rule": f"{name} alone at {result['far_level']:g}", "fp": v["false_positive_half_b"],
              "other": v["other_flagged"]} for name, v in result["single_measure_at_far_level"].items()]
    rows.append({"rule": "previous: a measure > 1.5x test max (full stats)", "fp": float("nan"),
                 "other": result["other_flagged_previous_rule"]})
    print(common.format_table(rows, [("rule", "rule", ""), ("fp", "half B flagged", ".4f"),
                                     ("other", f"{result['other'].split(' ')[1]} flagged", ".4f")]))
    print(f"rule as shipped (limit at {result['far_level']:g}): half B {result['false_positive_half_b']:.4f} "
          f"flagged, {result['other']}: {result['other_flagged']:.4f} flagged "
          f"({result['other_flagged_full_test_stats']:.4f} with full-test statistics)")
    for folder, e in result["examples_full_test_stats"].items():
        print(f"docs/examples/{folder}: {e['flagged']} of {e['count']} flagged {e['flagged_names']}")
    path = common.RESULTS_DIR / "domain_check.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.pop("machine", None)
    data[args.model] = {"machine": info, **result}
    path = common.write_json("domain_check", data)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
