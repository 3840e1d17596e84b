"""Fitting a release's latent prior: a full-covariance Gaussian mixture, by EM, to its training latents.

The mixture is fitted to one posterior draw per training image (``mu + sigma * eps``), not to the posterior means,
so the components keep the spread the decoder was trained on. ``dcvae-train latent-stats`` writes it as
``latent_prior.safetensors`` (see :mod:`dcvae_tools.prior`), and ``dcvae-train eval --sample-prior mixture``
scores samples drawn from it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from dcvae_tools.prior import MAX_COMPONENTS, LatentPrior, mixture_log_joint

DEFAULT_COMPONENTS = 10
"""Mixture size shipped with releases: 10 components took the 48,000-iteration release's sample FD from 68.2
(N(0, I), clamped) to 5.40; 50 gave 3.97 at five times the file size (reports/experiments/ex-post-prior-*.json)."""


DEFAULT_RESTARTS = 10
"""EM starts a fit tries, keeping the one of highest training log-likelihood. From one start, the 51,000-iteration
mnist-32 release's mixture sampled at FD 12.1-39.1 depending on the seed, and the starts of higher likelihood
sampled better (reports/history/prior-restarts-mnist-32-iteration-51000.json, by
``reports/experiments/prior_restarts.py``)."""


def fit_latent_prior(
    latents: torch.Tensor,
    components: int = DEFAULT_COMPONENTS,
    *,
    seed: int = 0,
    restarts: int = DEFAULT_RESTARTS,
    max_iter: int = 200,
    tol: float = 1e-6,
    reg: float = 1e-5,
    metadata: dict[str, Any] | None = None,
) -> LatentPrior:
    """A full-covariance Gaussian mixture of ``components`` components fitted to ``latents`` [N, D] by EM.

    EM runs from ``restarts`` starts (seeds ``seed``, ``seed + 1``, ...) and the fit of the highest mean
    log-likelihood on ``latents`` is returned: one start can end in a poor local optimum. Each start picks
    ``components`` distinct rows as the means, with the data's covariance for every component. float64
    throughout; ``reg`` is added to every covariance's diagonal (keeps them positive definite). A start stops when
    the mean log-likelihood gains less than ``tol`` (relative) in an iteration, or after ``max_iter`` iterations.
    The metadata records the start kept (``seed``) and, when more than one was tried, how many (``restarts``;
    a fit from one start writes the metadata fits wrote before restarts existed, so a file fitted then is
    written again as it was). With one component, or as many components as latents, every start gives the same
    fit, so one start is made.
    """
    x = latents.detach().double().cpu()
    if x.ndim != 2:
        raise ValueError(f"latents must be [N, D], got shape {tuple(x.shape)}")
    n, _ = x.shape
    if n < 2:
        raise ValueError(f"need at least two latents to fit a mixture, got {n}")
    if isinstance(components, bool) or not 1 <= components <= min(MAX_COMPONENTS, n):
        raise ValueError(f"components must be between 1 and {min(MAX_COMPONENTS, n)} for {n} latents, "
                         f"got {components}")
    if isinstance(restarts, bool) or not isinstance(restarts, numbers.Integral) or restarts < 1:  # numpy ints pass
        raise ValueError(f"restarts must be a whole number >= 1, got {restarts!r}")
    if not bool(x.isfinite().all()):
        raise ValueError("latents contain NaN or infinite values")
    restarts = 1 if components in (1, n) else int(restarts)
    best: tuple[float, int, int, LatentPrior] | None = None
    for start in range(seed, seed + restarts):
        prior, iterations, mean_ll = _em_from(x, components, start, max_iter, tol, reg)
        if best is None or math.isnan(best[0]) or mean_ll > best[0]:
            best = (mean_ll, start, iterations, prior)
    assert best is not None
    mean_ll, kept_seed, iterations, prior = best
    tried = {"restarts": restarts} if restarts > 1 else {}
    prior.metadata = {**(metadata or {}), "count": n, "components": components, "em_iterations": iterations,
                      "mean_log_likelihood": mean_ll, "seed": kept_seed, **tried, "covariance_regularisation": reg}
    return prior


def _em_from(x: torch.Tensor, components: int, seed: int, max_iter: int, tol: float,
             reg: float) -> tuple[LatentPrior, int, float]:
    """EM from the start ``seed`` picks: (the fit, its iterations, its final mean log-likelihood on ``x``)."""
    n, d = x.shape
    eye = torch.eye(d, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    means = x[torch.randperm(n, generator=generator)[:components]].clone()
    covariances = (torch.cov(x.T).reshape(d, d) + reg * eye).expand(components, d, d).clone()
    weights = torch.full((components,), 1.0 / components, dtype=torch.float64)
    previous = -math.inf
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        log_joint = mixture_log_joint(x, weights, means, torch.linalg.cholesky(covariances))  # [K, N]
        log_likelihood = torch.logsumexp(log_joint, 0)
        responsibility = torch.exp(log_joint - log_likelihood)
        total = responsibility.sum(1) + 1e-12
        weights = total / total.sum()
        means = responsibility @ x / total[:, None]
        for k in range(components):
            centred = x - means[k]
            covariances[k] = (responsibility[k, :, None] * centred).T @ centred / total[k] + reg * eye
        mean_ll = float(log_likelihood.mean())
        converged = mean_ll - previous < tol * abs(mean_ll)
        previous = mean_ll
        if converged:
            break
    scale_tril = torch.linalg.cholesky(covariances)
    final_ll = float(torch.logsumexp(mixture_log_joint(x, weights, means, scale_tril), 0).mean())
    return LatentPrior(weights, means, scale_tril), iterations, final_ll


def posterior_draws(mu: torch.Tensor, logvar: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One draw ``mu + exp(logvar / 2) * eps`` per row, seeded: what the mixture is fitted to."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(mu.shape, generator=generator).to(mu.device)  # drawn on the CPU: the same on any device
    return mu.float() + (0.5 * logvar.float()).exp() * noise
