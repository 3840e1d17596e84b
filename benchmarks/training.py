"""Training images/s of the presets that fit this machine (a few iterations each, real data).

Runs ``training.training_loop.training_loop`` for a few iterations in a temporary run folder and reports
real images per second over the logged windows after the first (the first includes start-up and warm-up).
A preset whose data is not installed is skipped with the reason.

    python -m benchmarks.training                         # tiny, fashion-mnist-32
    python -m benchmarks.training --presets tiny --windows 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from benchmarks import common

DEFAULT_PRESETS = ("tiny", "fashion-mnist-32")


def measure_preset(name: str, window: int, windows: int) -> dict[str, Any]:
    """Images/s of ``windows`` logged windows of ``window`` iterations each, after one warm-up window."""
    from training.presets import get_preset
    from training.training_loop import training_loop

    preset = get_preset(name)
    total = window * (windows + 1)
    options = preset.override(total_iterations=total, log_every=window, snapshot_every=10**9,
                              checkpoint_every=10**9)
    rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"dcvae-train-bench-{name}-") as run_dir:
        start = time.perf_counter()
        try:
            training_loop(options, run_dir, resume=False, stop_after=total, progress=False,
                          progress_fn=lambda it, stats: rates.append(stats["Perf/images_per_s"]))
        except (FileNotFoundError, ValueError) as err:
            return {"preset": name, "skipped": str(err).splitlines()[0]}
        elapsed = time.perf_counter() - start
    steady = rates[1:] or rates
    return {
        "preset": name,
        "batch_size": options.batch_size,
        "n_critic": options.n_critic,
        "widths": options.architecture_args,
        "latent_dim": options.latent_dim,
        "iterations": total,
        "images_per_s": statistics.median(steady),
        "images_per_s_windows": rates,
        "s_per_iteration": options.batch_size / statistics.median(steady),
        "wall_s": elapsed,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--window", type=int, default=4, help="iterations per timed window (even: n_critic 2)")
    parser.add_argument("--windows", type=int, default=3, help="timed windows after the warm-up window")
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("Training throughput (real images per second)", info))
    rows = [measure_preset(p, args.window, args.windows) for p in args.presets]
    result = {"machine": info, "rows": rows}
    print(common.format_table([r for r in rows if "skipped" not in r], [
        ("preset", "preset", ""), ("batch_size", "batch", "d"), ("n_critic", "n_critic", "d"),
        ("images_per_s", "img/s", ".1f"), ("s_per_iteration", "s/iter", ".3f"), ("iterations", "iters", "d"),
    ]))
    for r in rows:
        if "skipped" in r:
            print(f"{r['preset']}: skipped ({r['skipped']})")
    path = common.write_json("training", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
