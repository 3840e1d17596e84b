"""Paper-width training on a CUDA GPU: the cifar10-autogan32 objective on real data for a few minutes.

CIFAR-10 cannot be downloaded here, so the data is Fashion-MNIST repeated to 3 channels (28x28 padded to
32x32): the networks, widths, batch sizes and objective are the paper's. Reports real images per second
in each precision and the peak GPU memory, into ``benchmarks/results/gpu.json``.

    python -m benchmarks.gpu_train --minutes 1.5 --amp none bf16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from typing import Any

import torch

from benchmarks import common


def measure(amp: str, minutes: float, data_root: str | None) -> dict[str, Any]:
    from training.presets import get_preset
    from training.training_loop import training_loop

    options = get_preset("cifar10-autogan32").override(
        dataset="fashion-mnist", data_root=data_root, channels=3, content_size=28, amp=amp,
        channels_last=amp != "none", total_iterations=10**6, max_minutes=minutes, log_every=50,
        snapshot_every=10**9, checkpoint_every=10**9,
    )
    rates: list[float] = []
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="dcvae-gpu-") as run_dir:
        summary = training_loop(options, run_dir, device="cuda", progress=False,
                                progress_fn=lambda it, stats: rates.append(stats["Perf/images_per_s"]))
    steady = rates[1:] or rates
    last = summary["stats"]
    return {
        "preset": "cifar10-autogan32 (Fashion-MNIST x3 channels)", "amp": amp, "iterations": summary["iteration"],
        "images_per_s": statistics.median(steady) if steady else None,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "finite_losses": all(v == v and abs(v) != float("inf") for v in last.values()),
        "last_losses": {k: v for k, v in last.items() if k.startswith("Loss/")},
    }


def _driver_version() -> str | None:
    """The NVIDIA driver's version as nvidia-smi reports it (None where nvidia-smi is missing or fails)."""
    import subprocess

    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.5, help="training time per precision")
    parser.add_argument("--amp", nargs="+", default=["none", "bf16"])
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST IDX folder (default: Debian's)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: run this on a GPU machine (benchmarks/gpu_check.sh)")
    props = torch.cuda.get_device_properties(0)
    info = {**common.machine_info(), "gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda,
            "gpu_memory_gib": props.total_memory / 2**30, "gpu_multiprocessors": props.multi_processor_count,
            "gpu_driver": _driver_version()}
    print(common.header(f"Paper-width training on {info['gpu']}", info))
    rows = [measure(amp, args.minutes, args.data_root) for amp in args.amp]
    print(common.format_table(rows, [("amp", "amp", ""), ("iterations", "iters", "d"),
                                     ("images_per_s", "real img/s", ".1f"), ("peak_memory_gib", "peak GiB", ".2f")]))
    path = common.write_json("gpu", {"machine": info, "rows": rows})
    print(f"wrote {path}")
    return {"machine": info, "rows": rows}


if __name__ == "__main__":
    main()
