"""Recompute a release decoder's BatchNorm running statistics from posterior draws of training images.

In training, the decoder's BatchNorm normalises every batch with that batch's own statistics, and the official
recipe sends prior samples and reconstructions through it in separate batches; its running statistics (what a
release normalises with) average both kinds. Where the encoder's posteriors lie away from N(0, I), that average
fits neither kind well. Recomputed from posterior draws only, the statistics fit what the toolkit decodes by
default (encoded images, their edits and mixes, samples of the fitted mixture prior), at the cost of
samples from N(0, I) (docs/experiments.md has the measurements).

Each BatchNorm layer's statistics are computed in evaluation mode, in network order, with the layers before it
already recomputed, so every layer's statistics are those of the inputs it sees at inference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dcvae_tools.model import DCVAE

from .latent_prior import posterior_draws

DECODER_STATISTICS = ("training", "posterior")
"""training: the running statistics as training left them; posterior: recomputed by this module."""


def batchnorm_layers(network: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The network's BatchNorm layers in the order they are registered (``modules()``)."""
    return [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.inference_mode()
def _in_forward_order(decoder: nn.Module, layers: list[nn.Module], latent: torch.Tensor) -> list[nn.Module]:
    """``layers`` in the order a forward pass of ``latent`` reaches them (registration order need not be it)."""
    reached: list[nn.Module] = []
    hooks = [layer.register_forward_hook(lambda m, _i, _o: reached.append(m) if m not in reached else None)
             for layer in layers]
    try:
        decoder(latent)
    finally:
        for hook in hooks:
            hook.remove()
    return reached + [layer for layer in layers if layer not in reached]


@torch.inference_mode()
def _input_statistics(
    decoder: nn.Module, layer: nn.Module, latents: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance of ``layer``'s inputs over all of ``latents`` (float64 sums)."""
    total = torch.zeros((), dtype=torch.float64)
    sums: torch.Tensor | None = None
    squares: torch.Tensor | None = None

    def accumulate(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        nonlocal total, sums, squares
        x = inputs[0].double()
        dims = [d for d in range(x.dim()) if d != 1]
        count = x.numel() // x.shape[1]
        s, q = x.sum(dims).cpu(), (x * x).sum(dims).cpu()
        sums, squares = (s, q) if sums is None else (sums + s, squares + q)
        total = total + count

    hook = layer.register_forward_hook(accumulate)
    try:
        for batch in latents.split(batch_size):
            decoder(batch)
    finally:
        hook.remove()
    assert sums is not None and squares is not None
    mean = sums / total
    variance = (squares - total * mean * mean) / (total - 1)
    return mean.float(), variance.clamp_min(0).float()


def recompute_decoder_batchnorm(
    decoder: nn.Module,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Set every BatchNorm running mean and variance of ``decoder`` to those of its inputs when it decodes one
    posterior draw per row of ``mu`` / ``logvar`` (seeded, as ``training.latent_prior.posterior_draws``).

    The decoder stays in evaluation mode. Returns, per layer, how far the old running means lay from the new
    ones, in units of the new standard deviation (the mean over channels), for the record.
    """
    layers = batchnorm_layers(decoder)
    if not layers:
        raise ValueError("the decoder has no BatchNorm layer: there are no running statistics to recompute")
    was_training = decoder.training
    decoder.eval()
    device = next(decoder.parameters()).device
    latents = posterior_draws(mu, logvar, seed=seed).to(device)
    layers = _in_forward_order(decoder, layers, latents[:2])
    shifts: dict[str, float] = {}
    names = {module: name for name, module in decoder.named_modules()}
    try:
        for layer in layers:
            mean, variance = _input_statistics(decoder, layer, latents, batch_size)
            old_mean = layer.running_mean.detach().float().cpu()
            shifts[names[layer]] = float(((old_mean - mean).abs() / (variance + layer.eps).sqrt()).mean())
            layer.running_mean.copy_(mean.to(layer.running_mean))
            layer.running_var.copy_(variance.to(layer.running_var))
            if progress is not None:
                progress(f"decoder {names[layer]}: running statistics recomputed from {len(latents):,} posterior "
                         f"draws (old means {shifts[names[layer]]:.2f} std away)")
    finally:
        decoder.train(was_training)
    return shifts


def recompute_from_training_images(
    model: DCVAE,
    *,
    data_root: str | None = None,
    images: int = 10_000,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, float], int]:
    """``recompute_decoder_batchnorm`` on posterior draws of ``images`` training images of the model's dataset
    (prepared as for training; the fixed seeded subset ``training.metrics.common.split_tensors`` picks, which is
    also the reference set of the 10k sample FDs; the whole split when it is smaller); returns the per-layer
    record and how many images were drawn."""
    from .metrics.common import split_tensors

    c = model.config
    if c.dataset is None:
        raise ValueError("the model's config names no dataset to draw training images from: export it with "
                         "--decoder-statistics training, or set the config's dataset")
    train, _ = split_tensors(c.dataset, "train", c.image_size, c.channels, data_root, images, c.content_size)
    with torch.inference_mode():
        mu, logvar = model.posterior(train, batch_size=256)
    return recompute_decoder_batchnorm(model.decoder, mu, logvar, seed=seed, progress=progress), len(train)
