"""What :func:`dcvae_tools.heap.keep_freed_memory` (glibc keeping freed memory in the heap) changes.

Runs each workload in a fresh process with glibc's defaults and with the settings, in turn, ``--rounds`` times,
and prints images/s (median and all rounds) and the ratio of the medians:

* ``encode``: ``encode_files`` over ``--files`` Fashion-MNIST PNG files, in this process (reading between the
  encoder's batches, where the defaults cost most);
* ``train PRESET``: ``--iterations`` training iterations of each ``--presets`` preset (threads as set by
  ``OMP_NUM_THREADS``), counting from the second logged window.

Measure on a quiet machine: one 2-core machine runs the same pass up to a third slower from minute to minute,
which is why the two settings take turns and the medians are compared.

    python -m benchmarks.heap
    OMP_NUM_THREADS=1 python -m benchmarks.heap --presets fashion-mnist-32-vaegan mnist-32 --skip-encode
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common

_WORKER = r"""
import json, sys, time, shutil
settings, kind, arg, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if settings == "kept":
    from dcvae_tools.heap import keep_freed_memory
    assert keep_freed_memory()
if kind == "encode":
    from benchmarks import common
    from dcvae_tools.encoding import encode_files
    from dcvae_tools.encoding import writer
    from dcvae_tools.images import expand_image_paths
    if settings != "kept":
        writer.keep_freed_memory = lambda: False  # the defaults: encode_files would apply the settings
    model, _ = common.default_model(None)
    files = expand_image_paths(arg)
    start = time.perf_counter()
    encode_files(model, files, extra, num_workers=0)
    print(json.dumps(len(files) / (time.perf_counter() - start)))
else:
    from benchmarks.training import measure_preset
    iterations = int(extra)
    print(json.dumps(measure_preset(arg, iterations // 4, 3)["images_per_s"]))
"""


def _run(settings: str, kind: str, arg: str, extra: str) -> float:
    done = common.run_python(_WORKER, settings, kind, arg, extra, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {arg} ({settings}) failed: {done.stderr.strip()[-800:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(kind: str, arg: str, extra: str, rounds: int, reset: Path | None = None) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"default": [], "kept": []}
    for _ in range(rounds):
        for settings in rates:
            if reset is not None and reset.exists():
                shutil.rmtree(reset)
            rates[settings].append(_run(settings, kind, arg, extra))
    default, kept = statistics.median(rates["default"]), statistics.median(rates["kept"])
    return {"workload": f"{kind} {arg}" if kind == "train" else "encode", "default_images_per_s": default,
            "kept_images_per_s": kept, "ratio": kept / default, "default_rounds": rates["default"],
            "kept_rounds": rates["kept"]}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=6400, help="PNG files for the encode workload")
    parser.add_argument("--presets", nargs="*", default=["fashion-mnist-32"], help="training workloads")
    parser.add_argument("--iterations", type=int, default=64, help="training iterations per run (4 windows)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setting, in turn")
    parser.add_argument("--skip-encode", action="store_true")
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("glibc defaults against dcvae_tools.heap.keep_freed_memory", info))
    results = []
    with tempfile.TemporaryDirectory(prefix="dcvae-bench-heap-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_encode:
            from benchmarks.encoding import write_images

            images = write_images(tmp, args.files)
            results.append(measure("encode", str(images), str(tmp / "out"), args.rounds, reset=tmp / "out"))
        for preset in args.presets:
            results.append(measure("train", preset, str(args.iterations), args.rounds))
    print(common.format_table(results, [
        ("workload", "workload", "s"), ("default_images_per_s", "img/s default", ".0f"),
        ("kept_images_per_s", "img/s kept", ".0f"), ("ratio", "ratio", ".2f"),
    ]))
    for row in results:
        print(f"{row['workload']}: default {[round(r) for r in row['default_rounds']]}, "
              f"kept {[round(r) for r in row['kept_rounds']]}")
    path = common.write_json("heap", {"machine": info, "results": results})
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
