"""Run every benchmark, print the tables and the targets, write benchmarks/results/*.json.

    python benchmarks/run.py                                  # everything (about 20 minutes on 2 cores)
    python benchmarks/run.py --only throughput accuracy       # some of it
    python benchmarks/run.py --official-repo ~/src/DC-VAE     # where the official code is checked out
    python benchmarks/run.py --write-docs                     # also regenerate docs/benchmarks.md's figures

Each concern is also a module of its own: ``python -m benchmarks.NAME`` (startup, flops, throughput,
accuracy, cli_e2e, training). Results files: ``benchmarks/results/NAME.json`` and ``summary.json`` (the
targets, met or missed, with their ratios).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

CONCERNS = ("startup", "flops", "throughput", "accuracy", "cli_e2e", "training")


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()) and "images_per_s" in r:
            return r
    return None


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value, the threshold and whether it is met."""
    out: list[dict[str, Any]] = []
    tp = results.get("throughput", {}).get("rows", [])
    if tp:
        for dtype in ("float32", "bfloat16"):
            r = _row(tp, model="default", variant="fast", dtype=dtype, op="edit", batch=256)
            if r is not None:
                out.append({
                    "target": f"default model, encode+decode (edit) at batch 256, {dtype}: >= 50% of the float32 "
                              "matmul limit",
                    "value": r["share_of_fp32_matmul"], "threshold": 0.5, "format": ".0%",
                    "met": r["share_of_fp32_matmul"] >= 0.5,
                    "detail": f"{r['images_per_s']:.0f} img/s, {r['gflops']:.0f} GFLOP/s nominal",
                })
        for dtype, need in (("float32", 4.0), ("bfloat16", 8.0)):
            r = _row(tp, model="paper", variant="fast", dtype=dtype, op="edit", batch=256)
            if r is not None and r.get("x_official") is not None:
                out.append({
                    "target": f"paper widths, encode+decode (edit) at batch 256, {dtype}: >= {need:g}x the official "
                              "code eager float32",
                    "value": r["x_official"], "threshold": need, "format": ".2f", "met": r["x_official"] >= need,
                    "detail": f"{r['images_per_s']:.0f} img/s",
                })
    acc = results.get("accuracy", {}).get("sets", [])
    for s in acc:
        fast32 = next((r for r in s.get("rows", []) if r["path"] == "fast float32"), None)
        if fast32 is not None and "allclose_1e-5" in fast32:
            out.append({
                "target": f"{s['model']} model, fast float32 equals plain float32 (allclose rtol=atol=1e-5; "
                          f"{s['images']})",
                "value": fast32["allclose_1e-5"], "threshold": True, "format": "", "met": fast32["allclose_1e-5"],
                "detail": f"largest pixel difference {fast32['recon_pixel_max_abs']:.1e}",
            })
    for s in acc:
        if s.get("model") != "paper" or "rows" not in s:
            continue
        bf = next(r for r in s["rows"] if r["path"] == "fast bfloat16")
        out.append({
            "target": f"paper widths, bfloat16 mean pixel difference to float32 <= 0.01 ({s['images']})",
            "value": bf["recon_pixel_mean_abs"], "threshold": 0.01, "format": ".4f",
            "met": bf["recon_pixel_mean_abs"] <= 0.01,
            "detail": f"largest {bf['recon_pixel_max_abs']:.3f}",
        })
    cli = results.get("cli_e2e", {}).get("rows", [])
    enc = next((r for r in cli if r["command"] == "dcvae encode (1 image)"), None)
    if enc is not None:
        out.append({
            "target": "dcvae encode of one image within 1.5x python -c 'import torch'",
            "value": enc["x_import_torch"], "threshold": 1.5, "format": ".2f", "met": enc["x_import_torch"] <= 1.5,
            "detail": f"{enc['median_s']:.2f} s",
        })
    startup = results.get("startup")
    if startup:
        out.append({
            "target": "dcvae --help does not import torch",
            "value": not startup["dcvae_help_imports_torch"], "threshold": True, "format": "",
            "met": not startup["dcvae_help_imports_torch"], "detail": "",
        })
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=CONCERNS, default=list(CONCERNS))
    parser.add_argument("--official-repo", default=None, help="checkout (or bare mirror) of mlpc-ucsd/DC-VAE")
    parser.add_argument("--model", default=None, help="release folder or training run folder for the default rows")
    parser.add_argument("--quick", action="store_true", help="short smoke-test settings")
    parser.add_argument("--compile", action="store_true", help="add torch.compile throughput rows")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the figures in docs/benchmarks.md")
    args = parser.parse_args(argv)

    from benchmarks import accuracy, cli_e2e, flops, startup, throughput, training

    model_opt = ["--model", args.model] if args.model else []
    official_opt = ["--official-repo", args.official_repo] if args.official_repo else []
    argvs = {
        "startup": ["--repeats", "3" if args.quick else "7"],
        "flops": [*model_opt, *official_opt],
        "throughput": [*model_opt, *official_opt, *(["--quick"] if args.quick else []),
                       *(["--compile"] if args.compile else [])],
        "accuracy": [*model_opt, "-n", "64" if args.quick else "1000"],
        "cli_e2e": [*model_opt, *(["--repeats", "2", "-n", "50"] if args.quick else [])],
        "training": ["--windows", "1"] if args.quick else [],
    }
    modules = {"startup": startup, "flops": flops, "throughput": throughput, "accuracy": accuracy,
               "cli_e2e": cli_e2e, "training": training}
    results: dict[str, dict[str, Any]] = {}
    for name in CONCERNS:
        if name not in args.only:
            continue
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            results[name] = modules[name].main(argvs[name])
        except Exception:  # report and go on with the other concerns
            traceback.print_exc()
            results[name] = {"error": traceback.format_exc().splitlines()[-1]}
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)

    # keep earlier results of concerns not run this time, so the summary covers everything measured
    import json

    for name in CONCERNS:
        path = common.RESULTS_DIR / f"{name}.json"
        if name not in results and path.is_file():
            results[name] = json.loads(path.read_text(encoding="utf-8"))
    met = targets(results)
    info = common.machine_info()
    summary = {"machine": info, "targets": met, "concerns_run": [c for c in CONCERNS if c in args.only]}
    print("\n=== targets ===")
    for t in met:
        value = format(t["value"], t["format"]) if t["format"] else str(t["value"])
        print(f"[{'met' if t['met'] else 'MISSED'}] {t['target']}: {value} {t['detail']}".rstrip())
    path = common.write_json("summary", summary)
    print(f"wrote {path}")
    if args.write_docs:
        from benchmarks import report

        doc = report.write_docs()
        print(f"wrote {doc}")
    return summary


if __name__ == "__main__":
    main()
