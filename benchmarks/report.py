"""Render benchmarks/results/*.json as Markdown and put it into docs/benchmarks.md.

The figures section of docs/benchmarks.md lies between ``<!-- BEGIN FIGURES -->`` and ``<!-- END FIGURES -->``
and is generated from the results files only, so every number there comes from ``python benchmarks/run.py``.

    python -m benchmarks.report            # rewrite the figures section from the latest results
    python -m benchmarks.report --print    # print it instead
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import common

DOC = common.ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN FIGURES -->", "<!-- END FIGURES -->"


def _load(name: str) -> dict[str, Any] | None:
    path = common.RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        partial = common.RESULTS_DIR / f"{name}.partial.json"
        if not partial.is_file():
            return None
        path = partial
    return json.loads(path.read_text(encoding="utf-8"))


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and spec:
        return format(value, spec)
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k), s) for k, _, s in columns) + " |")
    return "\n".join(lines)


def _machine_line(info: dict[str, Any]) -> str:
    bf16 = "AVX-512 BF16" if info.get("avx512_bf16") else "no native bfloat16"
    load = info.get("load_average_1min")
    return (f"{info['cpu']} ({info['cpu_count']} cores, {bf16}), torch {info['torch']} with "
            f"{info['torch_threads']} threads, Python {info['python']}; {info['date_utc']}; "
            f"1-minute load average at the start {load:.1f}" if load is not None else "")


def render() -> str:
    out: list[str] = []
    summary = _load("summary")
    tp = _load("throughput")
    machines = [r["machine"] for r in (summary, tp) if r and "machine" in r]
    if machines:
        out.append(f"Machine: {_machine_line(machines[-1])}.")
        shared = [m for m in machines if common.busy_note(m)]
        if shared or (tp and tp.get("load_average_end", 0) and tp["load_average_end"] > 2):
            out.append("\n**The machine was shared while these figures were taken** (other processes were using "
                       "its 2 cores; see the load averages), so absolute figures are low and noisy; ratios measured "
                       "in the same run are more reliable than the absolute numbers.")
    if summary and summary.get("targets"):
        out.append("\n### Targets\n")
        rows = [{**t, "value_s": _fmt(t["value"], t["format"]), "met_s": "met" if t["met"] else "**missed**"}
                for t in summary["targets"]]
        out.append(_table(rows, [("target", "target", ""), ("value_s", "measured", ""), ("met_s", "", ""),
                                 ("detail", "detail", "")]))
    if tp:
        limits = tp.get("matmul", {}).get("limit_gflops") or {
            d: v["gflops_best"] for d, v in tp.get("matmul_start", {}).items()}
        out.append("\n### Throughput (CPU)\n")
        if limits:
            out.append(f"Matmul limit measured in the same run (`torch.mm` 2048x2048, best): float32 "
                       f"{limits['float32']:.0f} GFLOP/s, bfloat16 {limits['bfloat16']:.0f} GFLOP/s. GFLOP/s below "
                       "are the architecture's nominal FLOPs (benchmarks/flops.py) times images/s; `x fp32 mm` and "
                       "`x own mm` divide them by the float32 and by the row's own dtype's matmul limit; `x official` "
                       "is images/s over the official code's (eager float32) for the same operation and batch. "
                       "Peak MB is the worker process's peak RSS (VmHWM), `+MB` its growth during the timed "
                       "operation.\n")
        rows = [r for r in tp["rows"] if "images_per_s" in r and r.get("device", "cpu") == "cpu"]
        order = {"paper": 0, "official": 1, "default": 2}
        rows.sort(key=lambda r: (order.get(r["model"], 9), r["op"], r["batch"], r["variant"], r["dtype"]))
        out.append(_table(rows, [
            ("model", "model", ""), ("variant", "variant", ""), ("dtype", "dtype", ""), ("op", "op", ""),
            ("batch", "batch", "d"), ("images_per_s", "img/s", ".1f"), ("gflops", "GFLOP/s", ".0f"),
            ("share_of_fp32_matmul", "x fp32 mm", ".0%"), ("share_of_own_dtype_matmul", "x own mm", ".0%"),
            ("x_official", "x official", ".2f"), ("peak_rss_mb", "peak MB", ".0f"), ("peak_extra_mb", "+MB", ".0f"),
        ]))
        cuda = [r for r in tp["rows"] if "images_per_s" in r and r.get("device") == "cuda"]
        if cuda:
            out.append("\n### Throughput (CUDA)\n")
            out.append(_table(cuda, [("model", "model", ""), ("dtype", "dtype", ""), ("op", "op", ""),
                                     ("batch", "batch", "d"), ("images_per_s", "img/s", ".1f")]))
        missing = [r for r in tp["rows"] if "images_per_s" not in r]
        for r in missing:
            out.append(f"\n- {r['model']} {r['variant']} {r['dtype']} {r['op']} b{r['batch']}: "
                       f"{r.get('skipped') or r.get('error')}")
    acc = _load("accuracy")
    if acc:
        out.append("\n### Accuracy against plain float32 (real images)\n")
        for s in acc["sets"]:
            if "skipped" in s:
                out.append(f"- {s['model']}: skipped ({s['skipped']})")
                continue
            out.append(f"\n{s['model']} model ({s['model_source']}), {s['images']}; pixels on the [-1, 1] scale:\n")
            out.append(_table(s["rows"], [
                ("path", "path", ""), ("latent_max_rel", "latent max (rel.)", ".1e"),
                ("recon_pixel_mean_abs", "recon mean", ".1e"), ("recon_pixel_max_abs", "recon max", ".1e"),
                ("decode_pixel_mean_abs", "decode mean", ".1e"), ("decode_pixel_max_abs", "decode max", ".1e"),
                ("allclose_1e-5", "allclose 1e-5", ""), ("recon_max_abs_vs_float64", "recon max vs fp64", ".1e"),
            ]))
    cli = _load("cli_e2e")
    if cli:
        out.append(f"\n### dcvae CLI end to end\n\nModel: {cli['model']}; {cli['images']}.\n")
        out.append(_table(cli["rows"], [("command", "command", ""), ("median_s", "median s", ".2f"),
                                        ("x_import_torch", "x import torch", ".2f"),
                                        ("images_per_s", "img/s", ".0f"), ("reps", "runs", "d")]))
    st = _load("startup")
    if st:
        out.append("\n### Start-up\n")
        out.append(_table(st["rows"], [("command", "command", ""), ("median_s", "median s", ".3f"),
                                       ("best_s", "best s", ".3f"), ("reps", "runs", "d")]))
        out.append(f"\n`dcvae --help` imports torch: {_fmt(st['dcvae_help_imports_torch'], '')}.")
    tr = _load("training")
    if tr:
        out.append("\n### Training\n")
        ok = [r for r in tr["rows"] if "skipped" not in r]
        out.append(_table(ok, [("preset", "preset", ""), ("mode", "mode", ""), ("amp", "autocast", ""),
                               ("channels_last", "channels-last", ""), ("batch_size", "batch", "d"),
                               ("n_critic", "n_critic", "d"), ("images_per_s", "real img/s", ".1f"),
                               ("s_per_iteration", "s/iteration", ".2f")]))
        if "fast_over_float32" in tr:
            out.append(f"\n`fashion-mnist-32`, fast mode over float32 in the same run: "
                       f"**{tr['fast_over_float32']:.2f}x** (target 2.5x).")
        for r in tr["rows"]:
            if "skipped" in r:
                out.append(f"\n- {r['preset']}: skipped ({r['skipped']})")
    fl = _load("flops")
    if fl:
        out.append("\n### FLOPs per image\n")
        rows = [{**r, "enc": r["encoder_flops"] / 1e9, "dec": r["decoder_flops"] / 1e9,
                 "exe": r.get("gflop_per_image_executed")} for r in fl["rows"]]
        out.append(_table(rows, [("model", "model", ""), ("enc", "encoder GFLOP", ".3f"),
                                 ("dec", "decoder GFLOP", ".3f"), ("exe", "fast form executes (GFLOP)", ".3f"),
                                 ("encoder_params", "encoder params", ","), ("decoder_params", "decoder params", ",")]))
    return "\n".join(out) + "\n"


def write_docs(path: Path = DOC) -> Path:
    """Replace the figures section of ``path`` (appending one if it has none)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    block = f"{BEGIN}\n<!-- generated by `python benchmarks/run.py --write-docs` (benchmarks/report.py) -->\n\n" \
            f"{render()}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="print the Markdown instead of writing the doc")
    args = parser.parse_args(argv)
    if args.print:
        print(render())
    else:
        print(f"wrote {write_docs()}")


if __name__ == "__main__":
    main()
