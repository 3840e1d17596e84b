"""Training images/s of the presets that fit this machine, float32 against the fast mode, and what it costs.

Speed: runs ``training.training_loop.training_loop`` for a few iterations in a temporary run folder and
reports real images per second over the logged windows after the first (the first includes start-up and
warm-up). ``fashion-mnist-32`` is measured three times in the same run: in float32 (NCHW, no autocast: the loop
as it was before the fast mode), in float32 with channels-last memory, and in its preset's fast mode (bfloat16
autocast, channels-last), and the ratios to float32 are printed. On a CPU without native bfloat16 the fast mode
trains in float32 (``training.objective.training_precision``); the ``autocast`` column says what each row ran.
A preset whose data is not installed is skipped with the reason.

What the fast mode costs in quality is measured by ``benchmarks/fast_mode_quality.sh`` (training runs, so
not part of this quick benchmark).

    python -m benchmarks.training                         # tiny, fashion-mnist-32 in the three modes
    python -m benchmarks.training --results training-avx2 # the same, kept as benchmarks/results/training-avx2.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from benchmarks import common

FLOAT32 = {"amp": "none", "channels_last": False}
# fast: the preset as it is (bf16 + channels-last on the CPU presets)
MODES = {"float32": FLOAT32, "float32-channels-last": {**FLOAT32, "channels_last": True}, "fast": {}}


def _quiet(options_overrides: dict[str, Any]) -> dict[str, Any]:
    return {"snapshot_every": 10**9, "checkpoint_every": 10**9, "network_snapshot_every": 0, **options_overrides}


def measure_preset(name: str, window: int, windows: int, mode: str = "fast") -> dict[str, Any]:
    """Images/s of ``windows`` logged windows of ``window`` iterations each, after one warm-up window."""
    import torch

    from training.objective import training_precision
    from training.presets import get_preset
    from training.training_loop import training_loop

    preset = get_preset(name)
    total = window * (windows + 1)
    options = preset.override(**_quiet({"total_iterations": total, "log_every": window, **MODES[mode]}))
    rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"dcvae-train-bench-{name}-") as run_dir:
        start = time.perf_counter()
        try:
            training_loop(options, run_dir, resume=False, stop_after=total, progress=False,
                          progress_fn=lambda it, stats: rates.append(stats["Perf/images_per_s"]))
        except (FileNotFoundError, ValueError) as err:
            return {"preset": name, "mode": mode, "skipped": str(err).splitlines()[0]}
        elapsed = time.perf_counter() - start
    steady = rates[1:] or rates
    return {
        "preset": name,
        "mode": mode,
        "amp": options.amp,
        "autocast": training_precision(torch.device("cpu"), options.amp)[0],  # what ran: "none" is float32
        "channels_last": options.channels_last,
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
    parser.add_argument("--presets", nargs="+", default=["tiny"], help="presets measured in their own mode only")
    parser.add_argument("--window", type=int, default=8, help="iterations per timed window (even: n_critic 2)")
    parser.add_argument("--windows", type=int, default=4, help="timed windows after the warm-up window")
    parser.add_argument("--results", default="training",
                        help="name of the JSON under benchmarks/results/ (another name keeps another machine's)")
    args = parser.parse_args(argv)
    if not args.results.replace("-", "").replace("_", "").isalnum():
        parser.error(f"--results {args.results!r}: a plain name (letters, digits, - and _), written as "
                     "benchmarks/results/NAME.json")
    info = common.machine_info()
    print(common.header("Training throughput (real images per second)", info))
    rows = [measure_preset(p, args.window, args.windows) for p in args.presets]
    modes = {mode: measure_preset("fashion-mnist-32", args.window, args.windows, mode) for mode in MODES}
    rows += list(modes.values())
    result: dict[str, Any] = {"machine": info, "rows": rows}
    if all("skipped" not in r for r in modes.values()):
        base = modes["float32"]["images_per_s"]
        result["fast_over_float32"] = modes["fast"]["images_per_s"] / base
        result["channels_last_over_float32"] = modes["float32-channels-last"]["images_per_s"] / base
    print(common.format_table([r for r in rows if "skipped" not in r], [
        ("preset", "preset", ""), ("mode", "mode", ""), ("autocast", "autocast", ""),
        ("channels_last", "channels-last", ""), ("batch_size", "batch", "d"), ("n_critic", "n_critic", "d"),
        ("images_per_s", "img/s", ".1f"), ("s_per_iteration", "s/iter", ".3f"), ("iterations", "iters", "d"),
    ]))
    if "fast_over_float32" in result:
        print(f"fashion-mnist-32 fast mode / float32: {result['fast_over_float32']:.2f}x (target 2.5x); "
              f"float32 channels-last / float32: {result['channels_last_over_float32']:.2f}x")
    for r in rows:
        if "skipped" in r:
            print(f"{r['preset']} ({r['mode']}): skipped ({r['skipped']})")
    path = common.write_json(args.results, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
