"""Can a 3x3 convolution go faster than oneDNN here? Direct (oneDNN) versus Winograd F(2x2, 3x3) in PyTorch ops.

The paper-width autogan32 decoder spends most of its time in 256 -> 256 3x3 convolutions at 8x8, 16x16 and
32x32. The fast path already runs them through oneDNN in channels-last layout; the only way left to a large
speed-up is to do fewer multiply-adds, and Winograd F(2x2, 3x3) does 2.25x fewer (16 products per 2x2 output
tile instead of 36). This benchmark times both on those shapes, checks that they agree, and prints each as
"GFLOP/s equivalent" (the direct convolution's FLOPs divided by the time) beside the measured float32 matmul
rate, so a ratio above 1 means faster than the machine's dense-matmul limit allows a direct convolution.

Winograd here is written with eager tensor ops (unfold, adds, one batched matmul, adds); its input and output
transforms are memory-bound passes over 4x the activation size, which is what decides the comparison on a
CPU without a fused kernel.

    python -m benchmarks.conv3x3                 # 2 threads, float32
    python -m benchmarks.conv3x3 --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

from benchmarks import common

# (batch, channels, size): the decoder's 3x3 convolutions at paper widths, with micro-batches that fit in cache.
SHAPES = ((8, 256, 32), (32, 256, 16), (32, 256, 8))

_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weights(weight: torch.Tensor) -> torch.Tensor:
    """[C_out, C_in, 3, 3] -> the transformed kernel G w G^T as [16, C_in, C_out]."""
    g = _G.to(weight.dtype)
    u = torch.einsum("ak,oikl,bl->abio", g, weight, g)
    return u.reshape(16, weight.shape[1], weight.shape[0]).contiguous()


def _transform_rows(t: torch.Tensor, dim: int) -> torch.Tensor:
    """B^T d along ``dim`` (length 4): (d0 - d2, d1 + d2, d2 - d1, d1 - d3), stacked first."""
    d = [t.select(dim, i) for i in range(4)]
    return torch.stack([d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]])


def winograd_conv3x3(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """3x3 convolution, stride 1, padding 1, of NHWC ``x`` (even H and W) with a :func:`winograd_weights` kernel."""
    n, h, w, c = x.shape
    tiles = F.pad(x, (0, 0, 1, 1, 1, 1)).unfold(1, 4, 2).unfold(2, 4, 2)  # N, H/2, W/2, C, 4, 4
    v = _transform_rows(_transform_rows(tiles, -2), -1).transpose(0, 1)  # 4 rows, 4 cols, N, H/2, W/2, C
    m = torch.bmm(v.reshape(16, -1, c), kernel).view(4, 4, -1, kernel.shape[-1])
    rows = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])  # A^T m, then m A: 2 x 2 outputs per tile
    out = torch.stack([torch.stack([r[0] + r[1] + r[2], r[1] - r[2] - r[3]], 1) for r in rows], 1)
    out = out.view(n, h // 2, w // 2, 2, 2, -1).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, -1)
    return out + bias


def measure(shape: tuple[int, int, int], matmul_gflops: float) -> list[dict[str, Any]]:
    batch, channels, size = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(channels, channels, 3, 3, generator=gen) / (3 * channels**0.5)).contiguous(
        memory_format=torch.channels_last
    )
    bias = torch.randn(channels, generator=gen)
    kernel = winograd_weights(weight)
    x_nhwc = x.permute(0, 2, 3, 1)
    flop = 2.0 * channels * channels * 9 * size * size * batch
    with torch.inference_mode():
        reference = F.conv2d(x, weight, bias, padding=1)
        error = (winograd_conv3x3(x_nhwc, kernel, bias).permute(0, 3, 1, 2) - reference).abs().max().item()
        runs = {
            "direct (oneDNN, channels-last)": lambda: F.conv2d(x, weight, bias, padding=1),
            "Winograd F(2x2,3x3), eager ops": lambda: winograd_conv3x3(x_nhwc, kernel, bias),
        }
        rows = []
        for name, fn in runs.items():
            timing = common.time_call(fn, min_time=1.0, min_reps=3)
            gflops = flop / timing["median_s"] / 1e9
            rows.append(
                {
                    "shape": f"{batch}x{channels}x{size}x{size}",
                    "method": name,
                    "ms": timing["median_s"] * 1e3,
                    "gflops_equiv": gflops,
                    "share_of_fp32_matmul": gflops / matmul_gflops,
                    "max_abs_error": 0.0 if name.startswith("direct") else error,
                }
            )
    direct = rows[0]["ms"]
    for row in rows:
        row["speed_vs_direct"] = direct / row["ms"]
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = common.machine_info()
    matmul = common.matmul_gflops("float32")
    rows = [row for shape in SHAPES for row in measure(shape, matmul["gflops_median"])]
    print(common.header("3x3 convolution: direct (oneDNN) vs Winograd F(2x2,3x3)", info))
    print(f"# float32 matmul: {matmul['gflops_median']:.0f} GFLOP/s (median)")
    print(
        common.format_table(
            rows,
            [
                ("shape", "input NCHW", ""),
                ("method", "method", ""),
                ("ms", "ms", ".1f"),
                ("gflops_equiv", "GFLOP/s equiv", ".0f"),
                ("share_of_fp32_matmul", "x matmul", ".2f"),
                ("speed_vs_direct", "x direct", ".2f"),
                ("max_abs_error", "max |err|", ".1e"),
            ],
        )
    )
    result = {"machine": info, "matmul": matmul, "rows": rows}
    common.write_json("conv3x3", result)
    return result


if __name__ == "__main__":
    main()
