"""Training images/s of the presets that fit this machine, float32 against the fast mode, and what it costs.

Speed: runs ``training.training_loop.training_loop`` for a few iterations in a temporary run folder and
reports real images per second over the logged windows after the first (the first includes start-up and
warm-up). ``fashion-mnist-32`` is measured twice in the same run, in float32 (NCHW, no autocast: the loop as
it was before the fast mode) and in its preset's fast mode (bfloat16 autocast, channels-last), and the
ratio is printed. A preset whose data is not installed is skipped with the reason.

Quality (``--quality``): the same short budget in float32 and in the fast mode, two seeds each, then
reconstruction MSE, reconstruction FD and sample FD in the classifier's features on fixed test subsets
(the subsets are recorded as deviations from the 10k protocols). Equal within the seed-to-seed spread
means the fast mode costs nothing measurable.

    python -m benchmarks.training                         # tiny, fashion-mnist-32 float32 and fast
    python -m benchmarks.training --quality               # + the float32-vs-fast quality table (~25 min)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from benchmarks import common

FLOAT32 = {"amp": "none", "channels_last": False}
MODES = {"float32": FLOAT32, "fast": {}}  # fast: the preset as it is (bf16 + channels-last on the CPU presets)
QUALITY_METRICS = ("recon_mse_test", "rfd_classifier", "fd10k_classifier")


def _quiet(options_overrides: dict[str, Any]) -> dict[str, Any]:
    return {"snapshot_every": 10**9, "checkpoint_every": 10**9, "network_snapshot_every": 0, **options_overrides}


def measure_preset(name: str, window: int, windows: int, mode: str = "fast") -> dict[str, Any]:
    """Images/s of ``windows`` logged windows of ``window`` iterations each, after one warm-up window."""
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


def quality_check(preset: str, iterations: int, seeds: list[int], test_limit: int, num_samples: int) -> dict[str, Any]:
    """Train ``preset`` for ``iterations`` in float32 and in the fast mode per seed; evaluate each run."""
    from training.evaluate import evaluate
    from training.metrics import resolve_metric
    from training.presets import get_preset
    from training.training_loop import training_loop

    rows = []
    for seed in seeds:
        for mode, changes in MODES.items():
            options = get_preset(preset).override(
                **_quiet({"total_iterations": iterations, "log_every": max(1, iterations // 4), "seed": seed,
                          **changes})
            )
            with tempfile.TemporaryDirectory(prefix=f"dcvae-quality-{mode}-{seed}-") as run_dir:
                start = time.perf_counter()
                training_loop(options, run_dir, resume=False, progress=False)
                train_s = time.perf_counter() - start
                report = evaluate(run_dir, list(QUALITY_METRICS), test_limit=test_limit, num_samples=num_samples,
                                  show_progress=False)
            metrics = report["metrics"]
            row = {"mode": mode, "seed": seed, "iterations": iterations, "train_s": train_s}
            for name in QUALITY_METRICS:
                row[name] = metrics[resolve_metric(name, num_samples=num_samples)[0]]  # the name carries the count
            rows.append(row)
            print(f"  {mode:8s} seed {seed}: " + "  ".join(f"{k} {row[k]:.4g}" for k in QUALITY_METRICS))
    summary = {}
    for mode in MODES:
        values = {k: [r[k] for r in rows if r["mode"] == mode] for k in QUALITY_METRICS}
        summary[mode] = {k: {"mean": statistics.mean(v), "spread": max(v) - min(v)} for k, v in values.items()}
    return {"preset": preset, "iterations": iterations, "seeds": seeds, "test_limit": test_limit,
            "num_samples": num_samples, "rows": rows, "summary": summary}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny"], help="presets measured in their own mode only")
    parser.add_argument("--window", type=int, default=8, help="iterations per timed window (even: n_critic 2)")
    parser.add_argument("--windows", type=int, default=4, help="timed windows after the warm-up window")
    parser.add_argument("--quality", action="store_true", help="also train float32 vs fast and compare metrics")
    parser.add_argument("--quality-iterations", type=int, default=500)
    parser.add_argument("--quality-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quality-test-limit", type=int, default=2000)
    parser.add_argument("--quality-samples", type=int, default=2000)
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("Training throughput (real images per second)", info))
    rows = [measure_preset(p, args.window, args.windows) for p in args.presets]
    pair = [measure_preset("fashion-mnist-32", args.window, args.windows, mode) for mode in MODES]
    rows += pair
    result: dict[str, Any] = {"machine": info, "rows": rows}
    if all("skipped" not in r for r in pair):
        result["fast_over_float32"] = pair[1]["images_per_s"] / pair[0]["images_per_s"]
    print(common.format_table([r for r in rows if "skipped" not in r], [
        ("preset", "preset", ""), ("mode", "mode", ""), ("batch_size", "batch", "d"), ("n_critic", "n_critic", "d"),
        ("images_per_s", "img/s", ".1f"), ("s_per_iteration", "s/iter", ".3f"), ("iterations", "iters", "d"),
    ]))
    if "fast_over_float32" in result:
        print(f"fashion-mnist-32 fast mode / float32: {result['fast_over_float32']:.2f}x (target 2.5x)")
    for r in rows:
        if "skipped" in r:
            print(f"{r['preset']} ({r['mode']}): skipped ({r['skipped']})")
    if args.quality:
        print(f"Quality: fashion-mnist-32, {args.quality_iterations} iterations, seeds {args.quality_seeds}")
        result["quality"] = quality_check("fashion-mnist-32", args.quality_iterations, args.quality_seeds,
                                          args.quality_test_limit, args.quality_samples)
        for mode, values in result["quality"]["summary"].items():
            print(f"  {mode:8s} mean: " + "  ".join(f"{k} {v['mean']:.4g} (spread {v['spread']:.3g})"
                                                   for k, v in values.items()))
    path = common.write_json("training", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
