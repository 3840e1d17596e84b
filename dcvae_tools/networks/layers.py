"""Small building blocks shared by the backbones: spectral norm on/off, initialisation, folding."""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

ALL_FEATURES = ("b1", "final")
"""The discriminators' contrastive features: block 1's low-level head and the pooled "final" feature."""


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation when training; inference modules stay plain.

    Released checkpoints store the already-normalised weight (W / sigma), so the plain module
    computes exactly the trained function without power iteration.
    """
    return spectral_norm(module) if enabled else module


def init_official(module: nn.Module) -> None:
    """The official code's init: xavier-uniform convolutions, BatchNorm weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            weight = (
                m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            )
            nn.init.xavier_uniform_(weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-norm parametrisation by the normalised weight it currently computes.

    Uses the stored power-iteration vectors without updating them (as in eval mode), so the folded
    module gives exactly the outputs the training module gives in eval mode. Works in place.
    """
    was_training = module.training
    module.eval()
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    module.train(was_training)
    return module


def discriminator_outputs(
    d: nn.Module, h1: torch.Tensor, h: torch.Tensor, features: Collection[str], logits: bool
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """The 32x32 discriminators' heads on block 1's map ``h1`` and the pooled feature ``h``: only those asked for.

    ``d`` has ``b1_conv``, ``b1_linear`` (the low-level contrastive head), ``final`` (the pooled contrastive
    feature) and ``head`` (real/fake logits on ``final``).
    """
    out: dict[str, torch.Tensor] = {}
    if "b1" in features:
        out["b1"] = d.b1_linear(d.b1_conv(h1).flatten(1))
    final = d.final(h) if logits or "final" in features else None
    if "final" in features:
        out["final"] = final
    return (d.head(final).squeeze(1) if logits else None), out


def sum_pool(x: torch.Tensor) -> torch.Tensor:
    """Global sum pooling over height and width (the AutoGAN discriminator pools by sum, not mean)."""
    return x.sum(dim=(2, 3))
