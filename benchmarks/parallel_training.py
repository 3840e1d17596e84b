"""One training run on every core, or one single-threaded run per core: which trains more images per second.

The 32x32 networks of the Fashion-MNIST and MNIST presets are small: a second thread adds little to one run's
speed, and two threads synchronise at every operator. This measures, for each preset, in one sitting:

- ``1 run, all threads``: one process with torch's default thread count (the machine's cores);
- ``1 run, 1 thread``: one process with ``OMP_NUM_THREADS=1``;
- ``N runs, 1 thread each``: as many single-threaded processes as there are cores, started together; their
  images/s are added up.

Each process runs ``benchmarks.training.measure_preset`` (the real training loop in a temporary run folder,
median images/s over the logged windows after a warm-up window) and prints its result as JSON. Run it with
nothing else running; it prints the ratio ``N runs / 1 run`` that says whether training several presets side by
side, each with one thread, beats training them one after the other.

    python -m benchmarks.parallel_training                          # fashion-mnist-32-vae and fashion-mnist-32
    python -m benchmarks.parallel_training --presets mnist-32-vae --windows 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from benchmarks import common

_WORKER = (
    "import json, sys; from benchmarks.training import measure_preset; "
    "print(json.dumps(measure_preset(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))"
)


def _start(preset: str, window: int, windows: int, threads: int | None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, preset, str(window), str(windows)],
        cwd=common.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"benchmark worker failed (exit {process.returncode}):\n{err.strip()[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def measure(preset: str, window: int, windows: int, processes: int) -> dict[str, Any]:
    """The three set-ups for one preset; images/s of each and the ratio of the side-by-side runs to one run."""
    all_threads = _finish(_start(preset, window, windows, None))
    if "skipped" in all_threads:
        return {"preset": preset, "skipped": all_threads["skipped"]}
    one_thread = _finish(_start(preset, window, windows, 1))
    side_by_side = [_finish(p) for p in [_start(preset, window, windows, 1) for _ in range(processes)]]
    combined = sum(r["images_per_s"] for r in side_by_side)
    return {
        "preset": preset,
        "iterations": all_threads["iterations"],
        "all_threads_images_per_s": all_threads["images_per_s"],
        "one_thread_images_per_s": one_thread["images_per_s"],
        "processes": processes,
        "side_by_side_images_per_s": [r["images_per_s"] for r in side_by_side],
        "side_by_side_total_images_per_s": combined,
        "side_by_side_over_all_threads": combined / all_threads["images_per_s"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["fashion-mnist-32-vae", "fashion-mnist-32"])
    parser.add_argument("--window", type=int, default=20, help="iterations per timed window (even: n_critic 2)")
    parser.add_argument("--windows", type=int, default=4, help="timed windows after the warm-up window")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2,
                        help="single-threaded runs started together (default: the number of CPUs)")
    args = parser.parse_args(argv)
    if args.processes < 2:
        parser.error("--processes must be at least 2: the comparison is between one run and several")
    info = common.machine_info()
    print(common.header("Training: one run on every thread vs. one single-threaded run per core", info))
    rows = [measure(p, args.window, args.windows, args.processes) for p in args.presets]
    measured = [r for r in rows if "skipped" not in r]
    print(common.format_table(measured, [
        ("preset", "preset", ""),
        ("all_threads_images_per_s", "1 run, all threads", ".1f"),
        ("one_thread_images_per_s", "1 run, 1 thread", ".1f"),
        ("side_by_side_total_images_per_s", f"{args.processes} runs, 1 thread each (sum)", ".1f"),
        ("side_by_side_over_all_threads", "ratio", ".2f"),
    ]))
    for r in rows:
        if "skipped" in r:
            print(f"{r['preset']}: skipped ({r['skipped']})")
    result = {"machine": info, "rows": rows}
    print(f"wrote {common.write_json('parallel_training', result)}")
    return result


if __name__ == "__main__":
    main()
