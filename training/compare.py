"""Evaluation reports side by side: one markdown row per report, one column per metric.

    >>> from training.compare import compare_reports
    >>> print(compare_reports(["reports/fashion-mnist-32.json", "reports/baselines/fashion-mnist-32-vae.json"]))

Each row names the checkpoint (its training preset, or the report's model label), the training iteration the
report was made at, and the metric values as the report wrote them (rounded for reading only). Reports made
on different datasets or with different deviations from a metric's protocol (``details.deviations``) are
refused unless ``allow_mixed=True``, since their numbers are not comparable; deviations that every report shares
(the same reduced test subset, say) keep them comparable with each other and are listed under the table. So are
classifier-based metrics (``fd10k_classifier``, ``recon_class_agreement_test``, ...) measured with different
classifiers, as each report's ``details.classifier.weights_sha256`` records (reports that record none are not
checked).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LOWER_IS_BETTER", "compare_reports", "load_report"]

LOWER_IS_BETTER = ("recon_mse", "fd", "rfd", "fid", "rfid", "perceptual", "latent_kl")
"""Metric-name prefixes where a smaller value is better (marked with a down arrow in the header)."""


class ReportError(ValueError):
    """A report that cannot be read or compared; the message names the file."""


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one ``dcvae-train eval`` JSON report, checking it is one."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such report") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    from .evaluate import REPORT_FORMAT

    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise ReportError(f"{path}: not a `dcvae-train eval` report (format {REPORT_FORMAT!r} expected)")
    return report


def _name(report: dict[str, Any]) -> str:
    config = report.get("details", {}).get("model_config") or {}
    return str(config.get("preset") or report.get("model") or "?")


def _deviations(report: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(report.get("details", {}).get("deviations") or []))


def _classifier_sha256(report: dict[str, Any]) -> str | None:
    classifier = report.get("details", {}).get("classifier") or {}
    return classifier.get("weights_sha256") if isinstance(classifier, dict) else None


def _describe(deviations: tuple[str, ...]) -> str:
    return "; ".join(deviations) if deviations else "none"


def _direction(metric: str) -> str:
    return " (lower is better)" if metric.startswith(LOWER_IS_BETTER) else " (higher is better)"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def compare_reports(
    paths: Sequence[str | os.PathLike[str]], metrics: Sequence[str] | None = None, *, allow_mixed: bool = False
) -> str:
    """A markdown table of ``metrics`` (default: every metric any report has, in first-seen order)."""
    if not paths:
        raise ReportError("no reports given")
    reports = [(Path(p), load_report(p)) for p in paths]
    if not allow_mixed:
        datasets = {r.get("dataset") for _, r in reports}
        if len(datasets) > 1:
            raise ReportError(
                f"reports on different datasets ({', '.join(sorted(map(str, datasets)))}); "
                "pass --allow-mixed (allow_mixed=True) to compare anyway"
            )
        first_path, first = reports[0]
        expected = _deviations(first)
        for path, report in reports[1:]:
            if (found := _deviations(report)) != expected:
                raise ReportError(
                    f"{path} and {first_path} were made with different deviations from the protocol "
                    f"({_describe(found)} vs. {_describe(expected)}); "
                    "pass --allow-mixed (allow_mixed=True) to compare anyway"
                )
    if metrics is None:
        metrics = list(dict.fromkeys(m for _, r in reports for m in r["metrics"]))
    if not allow_mixed:
        from .curves import uses_classifier

        judged = {  # report -> its classifier, for reports whose compared metrics it measured
            path: sha for path, r in reports
            if (sha := _classifier_sha256(r)) and uses_classifier([m for m in metrics if m in r["metrics"]])
        }
        if len(set(judged.values())) > 1:
            listed = "; ".join(f"{path}: {sha[:12]}" for path, sha in judged.items())
            raise ReportError(
                f"the classifier-based metrics were measured with different classifiers ({listed}), so they do not "
                "compare; measure every report with one classifier, or pass --allow-mixed (allow_mixed=True)"
            )
    header = ["checkpoint", "iteration", *(f"`{m}`{_direction(m)}" for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for _, report in reports:
        iteration = report.get("details", {}).get("iteration")
        cells = [f"`{_name(report)}`", _cell(iteration), *(_cell(report["metrics"].get(m)) for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    shared = set.intersection(*(set(_deviations(r)) for _, r in reports))
    if shared:
        lines.append("")
        lines.append(f"Every report above deviates from the protocol in the same way: {'; '.join(sorted(shared))}.")
    return "\n".join(lines)
