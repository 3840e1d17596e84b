"""FLOPs per image of each network, counted from the layer shapes, and the machine's matmul limit.

``count_flops`` puts forward hooks on every Conv2d, ConvTranspose2d and Linear and counts 2 FLOPs per
multiply-add (bias additions, activations, pooling and up-sampling are not counted). These *nominal* FLOPs of
the architecture are what every throughput is measured against. The fast inference form
(:mod:`dcvae_tools.fast`) computes the same function with fewer multiply-adds; ``executed_flops`` counts
what it really runs (with ``torch.utils.flop_counter``).

    python -m benchmarks.flops
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from benchmarks import common


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of ``module`` on ``inputs``, from the layer shapes."""
    total = 0

    def conv_hook(m: nn.Conv2d, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += 2 * out.numel() * (m.in_channels // m.groups) * kh * kw

    def deconv_hook(m: nn.ConvTranspose2d, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += 2 * args[0].numel() * (m.out_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * out.numel() * m.in_features

    handles = []
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            handles.append(m.register_forward_hook(deconv_hook))
        elif isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def executed_flops(fn: Any, *inputs: torch.Tensor) -> int:
    """FLOPs that ``fn(*inputs)`` really executes in convolutions and matrix products (torch's counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn(*inputs)
    return counter.get_total_flops()


def model_flops(model: Any) -> dict[str, float]:
    """Nominal and executed FLOPs per image of a DCVAE's encoder and decoder."""
    from dcvae_tools.fast import build_fast_network

    c = model.config
    n = 2
    x = torch.zeros(n, c.channels, c.image_size, c.image_size)
    z = torch.zeros(n, c.latent_dim)
    result = {
        "encoder_flops": count_flops(model.encoder, x) / n,
        "decoder_flops": count_flops(model.decoder, z) / n,
        "encoder_params": sum(p.numel() for p in model.encoder.parameters()),
        "decoder_params": sum(p.numel() for p in model.decoder.parameters()),
    }
    fast_enc = build_fast_network(c.architecture, "encoder", model.encoder)
    fast_dec = build_fast_network(c.architecture, "decoder", model.decoder)
    result["encoder_flops_executed"] = executed_flops(fast_enc, x) / n if fast_enc is not None else None
    result["decoder_flops_executed"] = executed_flops(fast_dec, z) / n if fast_dec is not None else None
    return result


def official_flops(module: Any) -> dict[str, float]:
    enc, dec = common.official_networks(module)
    n = 2
    return {
        "encoder_flops": count_flops(enc, torch.zeros(n, 3, 32, 32)) / n,
        "decoder_flops": count_flops(dec, torch.zeros(n, 128)) / n,
        "encoder_params": sum(p.numel() for p in enc.parameters()),
        "decoder_params": sum(p.numel() for p in dec.parameters()),
    }


def measure(official_repo: str | None = None, model_path: str | None = None) -> dict[str, Any]:
    rows = []
    default, description = common.default_model(model_path)
    rows.append({"model": "default (autogan32 gf48 df32 z64, 1ch)", "source": description, **model_flops(default)})
    paper = common.random_model(common.PAPER_CONFIG)
    rows.append({"model": "paper widths (autogan32 gf256 df128 z128, 3ch)", "source": "random weights",
                 **model_flops(paper)})
    module, message = common.load_official_module(official_repo)
    if module is not None:
        rows.append({"model": "official models_32.py (paper widths)", "source": message, **official_flops(module)})
    for r in rows:
        r["gflop_per_image"] = (r["encoder_flops"] + r["decoder_flops"]) / 1e9
        if r.get("encoder_flops_executed") is not None:
            r["gflop_per_image_executed"] = (r["encoder_flops_executed"] + r["decoder_flops_executed"]) / 1e9
    return {"rows": rows, "official": message}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-repo", default=None, help="checkout (or bare mirror) of mlpc-ucsd/DC-VAE")
    parser.add_argument("--model", default=None, help="release folder or training run folder for the default rows")
    parser.add_argument("--no-matmul", action="store_true", help="skip measuring the matmul limit")
    args = parser.parse_args(argv)
    info = common.machine_info()
    result: dict[str, Any] = {"machine": info, **measure(args.official_repo, args.model)}
    if not args.no_matmul:
        result["matmul"] = {d: common.matmul_gflops(d) for d in ("float32", "bfloat16")}
    print(common.header("FLOPs per image (2 per multiply-add, Conv2d/ConvTranspose2d/Linear)", info))
    table = [
        {
            "model": r["model"],
            "enc": r["encoder_flops"] / 1e9,
            "dec": r["decoder_flops"] / 1e9,
            "enc_x": (r.get("encoder_flops_executed") or 0) / 1e9 or None,
            "dec_x": (r.get("decoder_flops_executed") or 0) / 1e9 or None,
            "enc_p": r["encoder_params"],
            "dec_p": r["decoder_params"],
        }
        for r in result["rows"]
    ]
    print(common.format_table(table, [
        ("model", "model", ""), ("enc", "encoder GFLOP", ".3f"), ("dec", "decoder GFLOP", ".3f"),
        ("enc_x", "fast enc GFLOP", ".3f"), ("dec_x", "fast dec GFLOP", ".3f"),
        ("enc_p", "encoder params", ","), ("dec_p", "decoder params", ","),
    ]))
    if "official" in result and not any(r["model"].startswith("official") for r in result["rows"]):
        print(f"official row skipped: {result['official']}")
    if "matmul" in result:
        for d, m in result["matmul"].items():
            print(f"matmul limit {d}: {m['gflops_best']:.0f} GFLOP/s best, {m['gflops_median']:.0f} median "
                  f"(torch.mm {m['n']}x{m['n']})")
    path = common.write_json("flops", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
