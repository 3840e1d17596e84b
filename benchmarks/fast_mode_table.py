"""The float32-vs-fast-mode quality table from ``benchmarks/results/fast-mode-quality/*.json``.

    python -m benchmarks.fast_mode_table          # markdown table: every run, then mean and seed spread per mode
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "fast-mode-quality"
METRICS = ("recon_mse_test", "recon_class_agreement_test", "rfd_classifier")


def load(results: Path = RESULTS) -> dict[str, dict[str, dict[str, float]]]:
    """{mode: {seed: metrics}} from files named ``<mode>-seed<seed>.json``."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted(results.glob("*-seed*.json")):
        mode, seed = path.stem.rsplit("-seed", 1)
        table.setdefault(mode, {})[seed] = json.loads(path.read_text(encoding="utf-8"))["metrics"]
    return table


def render(table: dict[str, dict[str, dict[str, float]]]) -> str:
    head = "| mode | seed | " + " | ".join(f"`{m}`" for m in METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for mode, seeds in table.items():
        for seed, metrics in sorted(seeds.items()):
            lines.append(f"| {mode} | {seed} | " + " | ".join(f"{metrics[m]:.4g}" for m in METRICS) + " |")
    for mode, seeds in table.items():
        cells = []
        for m in METRICS:
            values = [metrics[m] for metrics in seeds.values()]
            cells.append(f"{statistics.mean(values):.4g} (spread {max(values) - min(values):.2g})")
        lines.append(f"| **{mode}, mean** | {len(seeds)} seeds | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(load()))
