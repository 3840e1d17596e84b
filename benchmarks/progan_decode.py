"""Decode speed of the ``progan`` decoder on this machine: ms per image at batch 1 and batch 8.

Prints a table: resolution, widths per resolution (4x4 first), decoder parameters, GFLOP per image
(2 per multiply-add, convolutions and linear layers), and the median ms per image over ``--repeats`` timed
runs after one warm-up, for each width setting. The default settings are the paper's widths
(fmap_base 8192, fmap_max 512) and two reduced ones.

Examples:
    python benchmarks/progan_decode.py                      # 256x256, paper and reduced widths, 2 threads
    python benchmarks/progan_decode.py --resolutions 128 256 512 --threads 2 --repeats 5
    python benchmarks/progan_decode.py --widths 8192:512 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from dcvae_tools.networks import progan

DEFAULT_WIDTHS = ("8192:512", "4096:256", "2048:128")  # fmap_base:fmap_max; the first is the paper's


def decoder_gflop(decoder: progan.Decoder) -> float:
    """Forward GFLOP per image (2 per multiply-add) of the convolutions and linear layers actually run."""
    total = 0
    size = 4
    for r in decoder.resolutions:
        block = decoder.blocks[f"r{r}"]
        for m in block.modules():
            if isinstance(m, progan.EqualConv2d):
                out_ch, in_ch, k, _ = m.weight.shape
                total += out_ch * in_ch * k * k * r * r
            elif isinstance(m, progan.EqualLinear):
                total += m.weight.numel()
        size = r
    rgb = decoder.to_rgb[f"r{size}"].weight
    total += rgb.numel() * size * size
    return 2 * total / 1e9


def time_decoder(decoder: nn.Module, latent_dim: int, batch: int, repeats: int, dtype: torch.dtype) -> float:
    """Median ms per image over ``repeats`` runs (one warm-up run first)."""
    z = torch.randn(batch, latent_dim)
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        decoder(z)
        for _ in range(repeats):
            start = time.perf_counter()
            decoder(z)
            times.append((time.perf_counter() - start) * 1000 / batch)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256])
    parser.add_argument("--widths", nargs="+", default=list(DEFAULT_WIDTHS), help="fmap_base:fmap_max pairs")
    parser.add_argument("--latent-dim", type=int, default=512)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.dtype == "float32" else torch.bfloat16
    torch.manual_seed(0)

    batch_cols = "".join(f"  ms/img b{b:<3d}" for b in args.batches)
    header = f"{'res':>5}  {'fmap_base:max':>13}  {'widths (4x4 -> res)':<34} {'params':>8} {'GFLOP':>7}{batch_cols}"
    print(f"# torch {torch.__version__}, {args.threads} threads, {args.dtype}, latent {args.latent_dim}")
    print(header)
    print("-" * len(header))
    for resolution in args.resolutions:
        for spec in args.widths:
            base, cap = (int(v) for v in spec.split(":"))
            decoder = progan.build(
                "decoder",
                channels=3,
                latent_dim=args.latent_dim,
                image_size=resolution,
                args={"fmap_base": base, "fmap_max": cap},
                spectral_norm=False,
            ).eval()
            widths = "-".join(str(progan.width(r, base, cap)) for r in progan.resolutions(resolution))
            params = sum(p.numel() for p in decoder.parameters()) / 1e6
            timings = "".join(
                f"  {time_decoder(decoder, args.latent_dim, b, args.repeats, dtype):>10.1f}" for b in args.batches
            )
            print(
                f"{resolution:>5}  {spec:>13}  {widths:<34} {params:>7.2f}M {decoder_gflop(decoder):>7.1f}{timings}",
                flush=True,
            )


if __name__ == "__main__":
    main()
