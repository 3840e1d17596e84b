"""Metrics against images seen: evaluate a run's network snapshots and draw the curves.

A run with ``network_snapshot_every`` keeps release-format models in ``network-snapshots/iteration-NNNNNNN/``.
``evaluate_snapshots`` evaluates each one not yet measured and appends a line per snapshot to
``curves.jsonl`` in the run folder (so it can be re-run while the run trains; a snapshot whose weights or images
hold NaN gets a line with its ``error`` and no metrics, and is not tried again); ``plot_curves`` draws one
panel per metric with a line per run.

Classifier-based metrics move with the classifier that measures them, so each line records the sha256 of the
classifier's weights (``classifier_sha256``; None when no metric used one) and ``classifier_mismatch`` says when
the lines of one figure were measured with different classifiers. Each line also records the evaluation
settings that change the values (``settings``: test and train subsets, sample prior): a snapshot counts as
measured only under the settings asked for now, and only those lines are returned and drawn.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

CURVES_NAME = "curves.jsonl"
SNAPSHOTS_DIR = "network-snapshots"
UNRECORDED = "not recorded"
"""The classifier of a line written before lines recorded theirs."""
PROTOCOL_SETTINGS = {
    "test_limit": None,
    "train_limit": None,
    "sample_prior": "standard",
    "seed": 0,
    "edit_strength": 1.0,
    "edit_classes": None,
    "lite0_normalization": "tf",
    "data_root": None,
}
"""``evaluate`` settings that change a metric's value without changing its name, with their defaults (a line
written before a setting was recorded was measured with its default)."""


def _setting(name: str, value: Any) -> Any:
    """A setting as a curves line stores it (JSON), so a value asked for now compares equal to a stored one."""
    if name == "edit_classes":
        if not value:
            return None
        return {key: [sorted(int(c) for c in positive), sorted(int(c) for c in negative)]
                for key, (positive, negative) in sorted(value.items())}
    if name == "edit_strength":
        return float(value)
    if name == "data_root" and value is not None:
        return str(value)
    return value


def snapshot_folders(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(iteration, folder) of every network snapshot of a run, in order."""
    root = Path(run_dir) / SNAPSHOTS_DIR
    found = []
    for folder in root.glob("iteration-*") if root.is_dir() else []:
        if not (folder / "model.safetensors").is_file():
            continue  # still being written by the training run
        try:
            found.append((int(folder.name.split("-", 1)[1]), folder))
        except ValueError:
            continue
    return sorted(found)


def read_curves(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a ``curves.jsonl`` (none when it does not exist); a line that is not JSON is a ValueError
    naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}, is not JSON ({err.msg}): a measurement may still be writing "
                             "it (wait for it), or the file was cut short (delete that line)") from None
    return lines


def evaluate_snapshots(
    run_dir: str | Path, metrics: Sequence[str], *, out: str | Path | None = None, **evaluate_kwargs: Any
) -> list[dict[str, Any]]:
    """Evaluate every snapshot not yet in ``out`` (default ``run_dir/curves.jsonl``); returns all lines."""
    from dcvae_tools.errors import NonFiniteWeightsError

    from .evaluate import evaluate
    from .metrics.common import DivergedModelError

    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / CURVES_NAME
    options = json.loads((run_dir / "training_options.json").read_text(encoding="utf-8"))
    from .metrics import resolve_metric

    settings = _settings(evaluate_kwargs)
    lines = _lines_under(out, settings)
    wanted = {resolve_metric(m, num_samples=evaluate_kwargs.get("num_samples"))[0] for m in metrics}
    done = {line["iteration"] for line in lines
            if wanted <= set(line["metrics"]) or wanted <= set(line.get("failed_metrics", []))}
    processes = _world_size(run_dir)
    for iteration, folder in snapshot_folders(run_dir):
        if iteration in done:
            continue
        line = {
            "iteration": iteration,
            "images_seen": iteration * int(options["batch_size"]) * processes,
            "preset": options["preset"],
        }
        try:
            report = evaluate(folder, list(metrics), **evaluate_kwargs)
        except (DivergedModelError, NonFiniteWeightsError) as err:  # recorded: later snapshots are still measured,
            # and this one is not tried again
            print(f"warning: {folder}: {err}", file=sys.stderr)
            line.update(metrics={}, error=str(err), failed_metrics=sorted(wanted), settings=settings,
                        classifier_sha256=None)
        else:
            line.update(
                metrics=report["metrics"],
                deviations=report["details"].get("deviations", []),
                settings=settings,
                classifier_sha256=(report["details"].get("classifier") or {}).get("weights_sha256"),
            )
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())
        lines.append(line)
    return _merge_by_snapshot(lines, int(options["batch_size"]) * processes)


def measured_lines(run_dir: str | Path) -> list[dict[str, Any]]:
    """The snapshots of a run already in its ``curves.jsonl`` under the protocol's default settings, one merged
    line each, as ``evaluate_snapshots`` returns them; measures nothing."""
    run_dir = Path(run_dir)
    if not (run_dir / CURVES_NAME).is_file():
        raise FileNotFoundError(f"{run_dir / CURVES_NAME} does not exist: measure the run's snapshots first with "
                                f"`dcvae-train curves {run_dir}`")
    options = json.loads((run_dir / "training_options.json").read_text(encoding="utf-8"))
    lines = _lines_under(run_dir / CURVES_NAME, _settings({}))
    return _merge_by_snapshot(lines, int(options["batch_size"]) * _world_size(run_dir))


def _settings(evaluate_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``PROTOCOL_SETTINGS`` of an evaluation with these keyword arguments, as curves lines store them."""
    return {name: _setting(name, evaluate_kwargs.get(name, default)) for name, default in PROTOCOL_SETTINGS.items()}


def _lines_under(path: Path, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The lines of the curves file at ``path`` measured under ``settings``."""
    return [line for line in read_curves(path) if line_settings(line) == settings]


def _merge_by_snapshot(lines: Sequence[Mapping[str, Any]], images_per_iteration: int) -> list[dict[str, Any]]:
    """One line per snapshot: a snapshot measured again with more metrics has its lines merged, the newest value
    winning, and the classifiers of its metrics listed."""
    latest: dict[int, dict[str, Any]] = {}
    for line in lines:
        # images seen by every process together, worked out now: lines written before they counted processes
        # stored one process's
        images_seen = line["iteration"] * images_per_iteration
        merged = latest.setdefault(line["iteration"], {**line, "images_seen": images_seen, "metrics": {},
                                                       "classifiers": []})
        merged["metrics"].update(line["metrics"])
        classifier = line.get("classifier_sha256", UNRECORDED if uses_classifier(line["metrics"]) else None)
        if classifier is not None and classifier not in merged["classifiers"]:
            merged["classifiers"].append(classifier)
    return [latest[i] for i in sorted(latest)]


def line_settings(line: Mapping[str, Any]) -> dict[str, Any]:
    """The ``PROTOCOL_SETTINGS`` a curves line was measured with.

    Lines written before they recorded them are read from their deviations, which name every setting that
    differs from the default (a sample prior by its description, which then matches no setting asked for).
    """
    if "settings" in line:
        return {name: line["settings"].get(name, default) for name, default in PROTOCOL_SETTINGS.items()}
    found = dict(PROTOCOL_SETTINGS)
    for text in line.get("deviations", []):
        if m := re.match(r"test split limited to a fixed subset of (\d+) images", text):
            found["test_limit"] = int(m[1])
        elif m := re.match(r"train split \(linear probes\) limited to a fixed subset of (\d+) images", text):
            found["train_limit"] = int(m[1])
        elif text.startswith("samples drawn from"):
            found["sample_prior"] = text
    return found


def _world_size(run_dir: Path) -> int:
    """How many processes trained the run (each shows ``batch_size`` images an iteration), as its checkpoint says;
    1 without one. A run continued (``--resume-from``) with another number than its source counts its own."""
    import torch

    from .run_state import CHECKPOINT_NAME, saved_world_size

    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        return 1
    return saved_world_size(torch.load(path, map_location="cpu", weights_only=True, mmap=True))


def uses_classifier(metrics: Iterable[str]) -> bool:
    """Whether any of these metric names (or a mapping's keys) is measured with the dataset's classifier (its name
    says so)."""
    return any(re.search(r"classifier|class_|^edit_success_", name) for name in metrics)


def classifier_mismatch(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """A message naming the classifiers when the lines (of every run) were not all measured with one; else None.

    ``curves`` maps a run's label to ``evaluate_snapshots``'s lines. Lines without a classifier-based metric
    do not count.
    """
    used: dict[str, list[str]] = {}
    for label, lines in curves.items():
        for line in lines:
            for classifier in line.get("classifiers", []):
                used.setdefault(classifier, []).append(f"{label}@{line['iteration']}")
    if len(used) <= 1:
        return None
    parts = [f"{sha if sha == UNRECORDED else sha[:12]} ({', '.join(where[:4])}{', ...' if len(where) > 4 else ''})"
             for sha, where in used.items()]
    return ("the classifier-based metrics were measured with different classifiers, so they do not compare: "
            + "; ".join(parts) + f". Move the older RUN/{CURVES_NAME} aside and run again to measure every snapshot "
            "with the current classifier.")


LOG_SCALE_SPAN = 10.0
"""A panel whose positive values span this factor or more is drawn on a log axis: linear, a distance that falls
from 230 to 13 leaves the late differences the figures are drawn for flat along the bottom."""


def wants_log_scale(values: Sequence[float]) -> bool:
    """Whether a panel with these values reads better on a log y axis (all positive, spanning LOG_SCALE_SPAN)."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) >= LOG_SCALE_SPAN


def plot_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], metrics: Sequence[str], out: str | Path) -> Path:
    """One panel per metric, x = real images seen, one line per label; written as PNG (atomically).

    A panel whose values span a factor of ``LOG_SCALE_SPAN`` or more gets a log y axis. Each label keeps one
    colour in every panel, and the legend sits below the panels, where it hides no point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    out = Path(out)
    points = {
        (label, metric): sorted(
            (line["images_seen"], line["metrics"][metric]) for line in lines if metric in line["metrics"]
        )
        for label, lines in curves.items()
        for metric in metrics
    }
    labels = [label for label in curves if any(points[label, metric] for metric in metrics)]
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
    width = 4.2 * len(metrics)
    # as many legend columns as the widest label fits across the figure (8-point text: about 0.065 inch a
    # character, plus the marker and the gap), so no label runs off its edges
    label_inches = 0.065 * max((len(label) for label in labels), default=0) + 0.6
    columns = max(1, min(len(labels), int(width // label_inches)))
    legend_rows = -(-len(labels) // columns)
    legend_inches = 0.22 * legend_rows + (0.1 if labels else 0)
    height = 3.4 + legend_inches
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, height), squeeze=False)
    handles = {}  # each label's first drawn line, for the legend
    for ax, metric in zip(axes[0], metrics, strict=True):
        drawn: list[float] = []
        for label in labels:
            if points[label, metric]:
                xs, ys = zip(*points[label, metric], strict=True)
                (line,) = ax.plot([x / 1e6 for x in xs], ys, marker="o", markersize=3, color=colours[label])
                handles.setdefault(label, line)
                drawn.extend(ys)
        if wants_log_scale(drawn):
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 20, not 2x10^1
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{metric} (log scale)", fontsize=10)
        else:
            ax.set_title(metric, fontsize=10)
        ax.set_xlabel("real images seen (millions)")
        ax.grid(alpha=0.3, which="both")
    if labels:
        fig.legend([handles[label] for label in labels], labels, loc="lower center", ncol=columns, fontsize=8,
                   frameon=False)
    fig.tight_layout(rect=(0, legend_inches / height, 1, 1))
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    return out
