"""Images/s and peak memory of encode, decode and edit at batch sizes 1, 16 and 256.

Every configuration runs in its own subprocess, so its peak resident memory (VmHWM) is its own. Each
figure is also given as a share of the machine's limit: the architecture's nominal FLOPs per image (see
``benchmarks.flops``) times images/s, over the dense matmul rate measured in the same run (float32 rows
against the float32 limit, bfloat16 rows against the bfloat16 limit). The fast inference form computes
fewer multiply-adds than the nominal count, so a share above 100% is possible.

Every row is measured in ``--passes`` passes over all rows (default 2) and the faster pass is kept: on a
shared machine other processes only ever slow a measurement down.

Rows (``model / variant / dtype``):

* ``default``: the bundled default model (a small autogan32, 1 channel, latent 64), or a random model with
  its config when it is not bundled; ``paper``: autogan32 at the paper's widths (random weights);
  ``official``: the official ``models_32.py`` (imported at run time from ``--official-repo``), eager float32,
  as its own code runs it (``torch.no_grad``, NCHW, whole batches);
* ``fast``: the library's default path (folded networks, channels-last, micro-batches of 32 on the CPU);
  ``plain``: the networks as trained, whole batches (what dcvae-tools did before the fast path; bfloat16
  via autocast); ``nomicro``: fast without micro-batches; ``compile``: fast with ``torch.compile``.

``edit`` is encode -> add an attribute direction -> decode, through the public API (so it includes the
input conversion); it is the encoder+decoder figure the targets refer to.

    python -m benchmarks.throughput                # all rows, two passes (about 20 minutes on 2 cores)
    python -m benchmarks.throughput --quick        # a smoke test
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from benchmarks import common

OPS = ("encode", "decode", "edit")
BATCHES = (1, 16, 256)


# ----------------------------------------------------------------------------- worker (one configuration)


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM peak), in MiB.

    ``ru_maxrss`` would do for the peak, but Linux carries it across fork+exec from the parent, so a worker
    started by a large parent would report the parent's peak; VmHWM belongs to this process image only.
    """
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one configuration, time it, and report images/s and memory."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    batch, op, device = spec["batch"], spec["op"], spec.get("device", "cpu")
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    if spec["model"] == "official":
        module, message = common.load_official_module(spec.get("official_repo"))
        if module is None:
            return {"skipped": message}
        enc, dec = common.official_networks(module)
        enc, dec = enc.to(device), dec.to(device)
        latent = 128
        x = (torch.rand(batch, 3, 32, 32, generator=gen) * 2 - 1).to(device)
        z = torch.randn(batch, latent, generator=gen).to(device)
        direction = torch.randn(latent, generator=gen).to(device)

        def call() -> Any:
            with torch.no_grad():
                if op == "encode":
                    out = enc(x)[:, :latent]
                elif op == "decode":
                    out = dec(z)
                else:
                    out = dec(enc(x)[:, :latent] + direction)
            sync()
            return out

    else:
        from dcvae_tools.fast import optimize_for_inference

        if spec["model"] == "default":
            model, _ = common.default_model(spec.get("model_path"))
        else:
            model = common.random_model(common.PAPER_CONFIG)
        variant = spec["variant"]
        optimize_for_inference(
            model,
            fast=variant != "plain",
            micro_batch=None if variant in ("plain", "nomicro") else spec.get("micro_batch", 32),
            compile=variant == "compile",
            dtype=spec["dtype"],
        )
        model.to(device)
        model.batch_size = batch
        c = model.config
        x = torch.rand(batch, c.channels, c.image_size, c.image_size, generator=gen) * 2 - 1
        z = torch.randn(batch, c.latent_dim, generator=gen)
        direction = torch.randn(c.latent_dim, generator=gen)

        def call() -> Any:
            if op == "encode":
                out = model.encode(x)
            elif op == "decode":
                out = model.decode(z)
            else:
                out = model.edit(x, [(direction, 1.0)])
            sync()
            return out

    rss_before = _status_mb("VmRSS")
    t0 = time.perf_counter()
    call()  # warm-up (and, with torch.compile, the compilation)
    first_call_s = time.perf_counter() - t0
    timing = common.time_call(call, min_time=spec.get("min_time", 2.0), min_reps=spec.get("min_reps", 3),
                              warmup=1 if spec.get("variant") == "compile" else 0)
    peak = _status_mb("VmHWM")
    return {
        "images_per_s": batch / timing["median_s"],
        "images_per_s_best": batch / timing["best_s"],
        "median_s": timing["median_s"],
        "reps": timing["reps"],
        "first_call_s": first_call_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "peak_extra_mb": max(peak - rss_before, 0.0),
    }


def run_config(spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run one configuration in a fresh Python process."""
    cmd = [sys.executable, "-m", "benchmarks.throughput", "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: {' | '.join(tail)}"}


# ----------------------------------------------------------------------------- the table


def configurations(quick: bool, compile_rows: bool, cuda: bool) -> list[dict[str, Any]]:
    """(model, variant, dtype, op, batch) rows to measure, the rows the targets need first."""
    rows: list[dict[str, Any]] = []
    batches = (1, 16) if quick else BATCHES
    full = [("official", "eager", "float32"), ("paper", "fast", "float32"), ("paper", "fast", "bfloat16"),
            ("default", "fast", "float32"), ("default", "fast", "bfloat16")]
    if not quick:
        for model, variant, dtype in full:
            rows.append({"model": model, "variant": variant, "dtype": dtype, "op": "edit", "batch": 256})
    for model, variant, dtype in full:
        for op in OPS:
            for batch in batches:
                if (op == "edit" and batch == 256) or (quick and model != "default" and batch > 1):
                    continue
                rows.append({"model": model, "variant": variant, "dtype": dtype, "op": op, "batch": batch})
    if not quick:  # ablations, edit at batch 256 only
        for model, variant, dtype in [("default", "plain", "float32"), ("default", "plain", "bfloat16"),
                                      ("paper", "plain", "float32"), ("paper", "plain", "bfloat16"),
                                      ("paper", "nomicro", "float32"), ("paper", "nomicro", "bfloat16")]:
            rows.append({"model": model, "variant": variant, "dtype": dtype, "op": "edit", "batch": 256})
    if compile_rows:
        for model in ("default", "paper"):
            for dtype in ("float32", "bfloat16"):
                rows.append({"model": model, "variant": "compile", "dtype": dtype, "op": "edit", "batch": 256})
    if cuda:
        for model in ("default", "paper"):
            for dtype in ("float32", "bfloat16"):
                for batch in BATCHES:
                    rows.append({"model": model, "variant": "fast", "dtype": dtype, "op": "edit", "batch": batch,
                                 "device": "cuda"})
    return rows


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from benchmarks import flops as flops_mod

    info = common.machine_info()
    print(common.header("Throughput: images/s, share of the machine's matmul limit, peak memory", info), flush=True)
    limits_start = {d: common.matmul_gflops(d) for d in ("float32", "bfloat16")}
    counted = flops_mod.measure(args.official_repo, args.model)
    nominal = {}
    for r in counted["rows"]:
        key = "official" if r["model"].startswith("official") else r["model"].split()[0]
        nominal[key] = {"encode": r["encoder_flops"], "decode": r["decoder_flops"],
                        "edit": r["encoder_flops"] + r["decoder_flops"]}
        if r.get("encoder_flops_executed") is not None:
            nominal[key + "_executed"] = {
                "encode": r["encoder_flops_executed"], "decode": r["decoder_flops_executed"],
                "edit": r["encoder_flops_executed"] + r["decoder_flops_executed"]}
    nominal["paper"] = nominal.get("paper") or nominal.get("official")
    rows: list[dict[str, Any]] = []
    specs = configurations(args.quick, args.compile, torch.cuda.is_available() and not args.no_cuda)
    min_time = 0.3 if args.quick else args.min_time
    passes = 1 if args.quick else args.passes
    for pass_index in range(passes):
        for i, spec in enumerate(specs):
            full_spec = {**spec, "min_time": min_time, "official_repo": args.official_repo,
                         "model_path": args.model, "threads": args.threads}
            result = run_config(full_spec)
            if pass_index == 0:
                rows.append({**spec, **result, "images_per_s_passes": [result.get("images_per_s")]})
            else:  # keep the faster pass: other processes on a shared machine only ever slow a pass down
                row = rows[i]
                row["images_per_s_passes"].append(result.get("images_per_s"))
                if result.get("images_per_s", 0) > row.get("images_per_s", 0):
                    row.update(result)
            common.write_json("throughput.partial", {"machine": info, "matmul_start": limits_start, "rows": rows})
            if "images_per_s" not in result:
                print(f"  {spec['model']:>8} {spec['variant']:>7} {spec['dtype']:>8} {spec['op']:>6} "
                      f"b{spec['batch']:<3d} {result.get('skipped') or result.get('error')}", flush=True)
            else:
                print(f"  pass {pass_index + 1}: {spec['model']:>8} {spec['variant']:>7} {spec['dtype']:>8} "
                      f"{spec['op']:>6} b{spec['batch']:<3d} {result['images_per_s']:9.1f} img/s  "
                      f"peak {result['peak_rss_mb']:.0f} MB", flush=True)
    limits_end = {d: common.matmul_gflops(d) for d in ("float32", "bfloat16")}
    limits = {d: max(limits_start[d]["gflops_best"], limits_end[d]["gflops_best"]) for d in limits_start}
    official = {(r["op"], r["batch"]): r["images_per_s"] for r in rows
                if r["model"] == "official" and "images_per_s" in r}
    for r in rows:
        if "images_per_s" not in r:
            continue
        flop = nominal.get(r["model"], {}).get(r["op"])
        if flop is None:
            continue
        r["gflop_per_image"] = flop / 1e9
        r["gflops"] = r["images_per_s"] * flop / 1e9
        r["share_of_fp32_matmul"] = r["gflops"] / limits["float32"]
        r["share_of_own_dtype_matmul"] = r["gflops"] / limits[r["dtype"]]
        executed = nominal.get(r["model"] + "_executed", {}).get(r["op"])
        if executed is not None and r["variant"] in ("fast", "nomicro", "compile"):
            r["executed_gflops"] = r["images_per_s"] * executed / 1e9
            r["executed_share_of_own_dtype_matmul"] = r["executed_gflops"] / limits[r["dtype"]]
        base = official.get((r["op"], r["batch"]))
        if base and r["model"] in ("paper", "official"):
            r["x_official"] = r["images_per_s"] / base
    info_end = common.machine_info()
    return {
        "machine": info,
        "load_average_end": info_end["load_average_1min"],
        "matmul": {"start": limits_start, "end": limits_end, "limit_gflops": limits},
        "flops": counted,
        "rows": rows,
    }


COLUMNS = [
    ("model", "model", ""), ("variant", "variant", ""), ("dtype", "dtype", ""), ("op", "op", ""),
    ("batch", "batch", "d"), ("images_per_s", "img/s", ".1f"), ("gflops", "GFLOP/s", ".1f"),
    ("share_of_fp32_matmul", "xfp32 mm", ".0%"), ("share_of_own_dtype_matmul", "x own mm", ".0%"),
    ("x_official", "x official", ".2f"), ("peak_rss_mb", "peak MB", ".0f"), ("peak_extra_mb", "+MB", ".0f"),
]


def print_report(result: dict[str, Any]) -> None:
    limits = result["matmul"]["limit_gflops"]
    print(f"matmul limit (best of start/end): float32 {limits['float32']:.0f} GFLOP/s, "
          f"bfloat16 {limits['bfloat16']:.0f} GFLOP/s")
    rows = [{**r, "model": r["model"] + ("/cuda" if r.get("device") == "cuda" else "")}
            for r in result["rows"] if "images_per_s" in r]
    print(common.format_table(rows, COLUMNS))
    for r in result["rows"]:
        if "images_per_s" not in r:
            print(f"{r['model']} {r['variant']} {r['dtype']} {r['op']} b{r['batch']}: "
                  f"{r.get('skipped') or r.get('error')}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--official-repo", default=None, help="checkout (or bare mirror) of mlpc-ucsd/DC-VAE")
    parser.add_argument("--model", default=None, help="release folder or training run folder for the default rows")
    parser.add_argument("--quick", action="store_true", help="few rows, short timings (a smoke test)")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (slow to compile)")
    parser.add_argument("--no-cuda", action="store_true", help="skip CUDA rows even when a GPU is present")
    parser.add_argument("--min-time", type=float, default=1.5, help="seconds of timed repeats per row")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--passes", type=int, default=2,
                        help="measure every row this many times, far apart, and keep the fastest (a shared "
                             "machine only slows rows down)")
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return {}
    result = measure(args)
    print_report(result)
    path = common.write_json("throughput", result)
    (common.RESULTS_DIR / "throughput.partial.json").unlink(missing_ok=True)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
