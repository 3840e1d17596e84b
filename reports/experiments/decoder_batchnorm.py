"""Why do N(0, I) samples of DC-VAE score so much worse than its reconstructions? The decoder's BatchNorm.

The autogan32 decoder has one BatchNorm layer (before its last ReLU and convolution). In training it normalises
each batch with the batch's own statistics, and prior samples and reconstructions go through it in separate
batches, so it has learned to work on both. In evaluation it normalises with running statistics, which the
training loop averaged over both kinds of batch (four posterior batches for every three prior batches at n_critic 2,
the discriminator phases included). When the posterior latents lie far from N(0, I) (a KL weight of
1e-6 leaves them there), those averages fit neither kind of batch well.

This script measures, for each model folder, with the BatchNorm's running statistics

* ``released``: as the folder holds them;
* ``prior``: recomputed from ``--batches`` batches of 64 clamped N(0, I) latents (what the sampling FD decodes);
* ``posterior``: recomputed from as many batches of posterior draws of training images (what reconstructions
  decode);

the paper-protocol sample FD (``fd10k_classifier``: 10,000 N(0, I) samples clamped to [-1, 1]), class entropy,
the same two from the release's fitted mixture prior when it ships one (``mixture_*``), and the
reconstruction metrics (class agreement, FD, MSE on the 10,000 test images), each by
``training.evaluate``, as ``dcvae-train eval`` computes them. It also prints how far each kind of batch's
statistics lie from the running ones (mean absolute difference of the means, in units of the running standard
deviation).

    python reports/experiments/decoder_batchnorm.py dcvae_tools/weights/fashion-mnist-32 \\
        -o reports/experiments/decoder-batchnorm-fashion-mnist-32.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dcvae_tools import load_model
from dcvae_tools.io_utils import atomic_write_text
from training.evaluate import evaluate
from training.metrics.metric_main import MetricOptions

METRICS = ["fd10k_classifier", "sample_class_entropy10k", "recon_class_agreement_test", "rfd_classifier",
           "recon_mse_test"]
MIXTURE_METRICS = ["fd10k_classifier", "sample_class_entropy10k"]


def _batchnorm(decoder: nn.Module) -> nn.BatchNorm2d:
    layers = [m for m in decoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if len(layers) != 1:
        raise SystemExit(f"expected a decoder with one BatchNorm layer, found {len(layers)}")
    return layers[0]


@torch.inference_mode()
def input_statistics(decoder: nn.Module, latent_batches: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) variance of the BatchNorm's inputs over all the batches together."""
    seen: list[torch.Tensor] = []
    hook = _batchnorm(decoder).register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].float()))
    try:
        for z in latent_batches:
            decoder(z)
    finally:
        hook.remove()
    x = torch.cat(seen)
    return x.mean((0, 2, 3)), x.var((0, 2, 3))


def measure(folder: str, batches: int, seed: int) -> dict[str, Any]:
    model = load_model(folder)
    dim = model.config.latent_dim
    generator = torch.Generator().manual_seed(seed)
    prior = [torch.randn(64, dim, generator=generator).clamp(-1, 1) for _ in range(batches)]
    opts = MetricOptions(model=model, dataset=model.config.dataset or "fashion-mnist", show_progress=False)
    train, _ = opts.split("train", 64 * batches)
    with torch.inference_mode():
        mu, logvar = model.posterior(train, batch_size=256)
    draws = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
    posterior = list(draws.split(64))

    bn = _batchnorm(model.decoder)
    running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
    result: dict[str, Any] = {"folder": folder, "batches": batches, "seed": seed, "variants": {}}
    stats = {"prior": input_statistics(model.decoder, prior), "posterior": input_statistics(model.decoder, posterior)}
    for kind, (mean, var) in stats.items():
        gap = float(((mean - running_mean).abs() / running_var.sqrt()).mean())
        ratio = float((var / running_var).median())
        result[f"{kind}_batches_vs_running"] = {"mean_gap_in_running_std": gap, "median_variance_ratio": ratio}
        print(f"{folder}: {kind} batches' BatchNorm inputs: means {gap:.2f} running std from the running means, "
              f"median variance ratio {ratio:.2f}")
    for variant in ("released", "prior", "posterior"):
        candidate = load_model(folder)  # a fresh model: nothing cached from the one measured above
        layer = _batchnorm(candidate.decoder)
        if variant != "released":
            layer.running_mean.copy_(stats[variant][0])
            layer.running_var.copy_(stats[variant][1])
        report = evaluate(candidate, METRICS, opts.dataset, show_progress=False)
        metrics = dict(report["metrics"])
        if candidate.latent_prior is not None:  # and from the release's own sampler, the fitted mixture
            mixture = evaluate(candidate, MIXTURE_METRICS, opts.dataset, sample_prior="mixture", show_progress=False)
            metrics.update({f"mixture_{k}": v for k, v in mixture["metrics"].items()})
        result["variants"][variant] = metrics
        print(f"  {variant:9s} " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="model folders (releases or network snapshots)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="JSON report")
    parser.add_argument("--batches", type=int, default=40, help="batches of 64 latents per recomputation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = [measure(folder, args.batches, args.seed) for folder in args.folders]
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
