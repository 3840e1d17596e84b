"""How far an encoder's latents sit from the prior: the gap that decides whether prior samples look like data.

Samples are decoded from z ~ N(0, I); reconstructions from the encoder's posteriors. When the aggregate
posterior (the mixture of every test image's N(mu, sigma^2)) is far from N(0, I), the decoder is trained on one
region of latent space and sampled in another. ``aggregate_prior_kl`` moment-matches the aggregate posterior
per dimension -- mean ``E[mu]``, variance ``Var[mu] + E[sigma^2]`` -- and returns the KL divergence of that
Gaussian from N(0, 1), averaged over dimensions (0 when the moments match the prior).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["aggregate_moments", "aggregate_prior_kl"]


def aggregate_moments(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean ``E[mu]`` and variance ``Var[mu] + E[sigma^2]`` of the aggregate posterior, float64."""
    mu, logvar = mu.double(), logvar.double()
    return mu.mean(0), mu.var(0, unbiased=False) + logvar.exp().mean(0)


def aggregate_prior_kl(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[float, dict[str, Any]]:
    """(mean per-dimension KL(N(m, v) || N(0, 1)) of the moment-matched aggregate posterior, details).

    Args:
        mu, logvar: the encoder's posterior parameters for a set of images, each [N, D].
    """
    if mu.shape != logvar.shape or mu.ndim != 2 or len(mu) < 2:
        raise ValueError(f"mu and logvar must both be [N >= 2, D], got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    mean, var = aggregate_moments(mu, logvar)
    kl = 0.5 * (var + mean.square() - 1.0 - var.log())
    return float(kl.mean()), {
        "num_images": len(mu),
        "latent_dim": mu.shape[1],
        "aggregate_std_mean": float(var.sqrt().mean()),
        "aggregate_std_max": float(var.sqrt().max()),
        "abs_mean_mean": float(mean.abs().mean()),
        "posterior_std_mean": float(logvar.double().mul(0.5).exp().mean()),
        "kl_per_dim_max": float(kl.max()),
    }
