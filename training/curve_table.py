"""Measured curves as a markdown table: a window of snapshots, a column per series and metric, and each mean.

A series is one run folder, or a run continued in further folders (``--resume-from`` into a new ``--run-dir``),
written ``RUN+RUN2``: its snapshots are read from each folder's ``curves.jsonl``, and at an iteration two folders
measured their metrics merge, a later folder's value winning. ``LABEL=RUN+RUN2`` names the series; otherwise its
last folder's name does.

The first mean row averages each column over its own snapshots in the window, with their count beside it; the
second only over the iterations every series measured. Two runs snapshotted at different intervals (every 1,000
and every 2,000 iterations), or one trained further than the other, compare fairly on the second. Nothing is
measured here; ``dcvae-train curves`` measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .curves import measured_lines


@dataclass(frozen=True)
class Series:
    """One column group of the table: a label and the run folders whose snapshots make it, in training order."""

    label: str
    runs: tuple[Path, ...]


def parse_series(text: str) -> Series:
    """``RUN``, ``RUN+RUN2`` or ``LABEL=RUN+RUN2`` as a Series. A folder that exists is read as one run even when
    its name holds ``=`` or ``+`` (``runs/lr=1e-4``)."""
    def is_folder(path_text: str) -> bool:
        return bool(path_text) and Path(path_text).is_dir()

    label, sep, runs_text = text.partition("=")
    if not sep or is_folder(text):
        label, sep, runs_text = "", "", text
    runs = (Path(runs_text),) if is_folder(runs_text) else tuple(
        Path(part) for part in runs_text.split("+") if part)
    if sep and not label.strip():
        raise ValueError(f"{text!r} has an empty label: write LABEL=RUN, or RUN alone to be labelled by its name")
    if not runs:
        raise ValueError(f"{text!r} names no run: write RUN, RUN+RUN2 (a run continued in another folder) "
                         "or LABEL=RUN+RUN2")
    return Series(label.strip() or runs[-1].name, runs)


def series_lines(series: Series) -> list[dict[str, Any]]:
    """The measured snapshots of every folder of a series, by iteration; at an iteration two folders measured,
    their metrics merge, a later folder's value winning."""
    by_iteration: dict[int, dict[str, Any]] = {}
    for run in series.runs:
        for line in measured_lines(run):
            earlier = by_iteration.get(line["iteration"])
            if earlier is not None:
                known = earlier["classifiers"]
                classifiers = known + [c for c in line["classifiers"] if c not in known]
                line = {**line, "metrics": {**earlier["metrics"], **line["metrics"]}, "classifiers": classifiers}
            by_iteration[line["iteration"]] = line
    return [by_iteration[i] for i in sorted(by_iteration)]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _mean_cell(column: Sequence[float]) -> str:
    """The mean of a column's values with their count, or "-" when it has none."""
    return f"{_cell(sum(column) / len(column))} ({len(column)})" if column else "-"


def window_table(
    columns: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Sequence[str],
    *,
    since: int | None = None,
    until: int | None = None,
) -> str:
    """A markdown table of ``metrics`` for each series' snapshots from ``since`` to ``until`` (both included),
    one row per iteration any series measured, then two rows of means: each column's over its own snapshots (with
    their count), and, with several series, each column's over the iterations every series measured, the fair
    comparison when one series runs further or is snapshotted more often than another.

    ``columns`` maps a series' label to its lines (``series_lines``). Raises ValueError when the window holds no
    snapshot, or when no series measured one of the metrics (naming those it did measure).
    """
    def in_window(iteration: int) -> bool:
        return (since is None or iteration >= since) and (until is None or iteration <= until)

    values: dict[tuple[str, str], dict[int, float]] = {}
    for label, lines in columns.items():
        for metric in metrics:
            values[label, metric] = {line["iteration"]: float(line["metrics"][metric]) for line in lines
                                     if in_window(line["iteration"]) and metric in line["metrics"]}
    iterations = sorted({i for column in values.values() for i in column})
    if not iterations:
        window = f"{since if since is not None else 'the start'} to {until if until is not None else 'the end'}"
        raise ValueError(f"no measured snapshot of {', '.join(columns)} from {window} (only lines measured under "
                         "the paper's protocol count: `dcvae-train curves` without --test-limit or --num-samples)")
    measured = {name for lines in columns.values() for line in lines for name in line["metrics"]}
    missing = [m for m in metrics if m not in measured]
    if missing:
        raise ValueError(f"no series measured {', '.join(missing)}; measured: {', '.join(sorted(measured))}")

    keys = list(values)
    header = "| iteration | " + " | ".join(f"{label}: {metric}" for label, metric in keys) + " |"
    rows = [header, "|---:|" + "---:|" * len(keys)]
    for iteration in iterations:
        rows.append(f"| {iteration:,} | " + " | ".join(_cell(values[key].get(iteration)) for key in keys) + " |")
    rows.append("| mean (snapshots) | " + " | ".join(_mean_cell(list(values[key].values())) for key in keys) + " |")
    if len(columns) > 1:
        shared = [i for i in iterations
                  if all(any(i in values[label, metric] for metric in metrics) for label in columns)]
        cells = (_mean_cell([values[key][i] for i in shared if i in values[key]]) for key in keys)
        rows.append("| mean (iterations all measured) | " + " | ".join(cells) + " |")
    return "\n".join(rows)
