"""Supervised boundaries (InterFaceGAN's recipe): a linear classifier's unit normal as an editing direction.

A logistic regression ``p(positive | z) = sigmoid(w . (z - c) / s + b)`` with an L2 penalty on ``w`` is fitted to
latents of labelled examples (full-batch L-BFGS in float64; ``c`` and ``s`` standardise each latent dimension over
the examples). The direction is the boundary's normal in latent space, ``w / s``, scaled to unit length and
pointing towards the positive side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..arguments import is_real_number
from ..errors import LatentError
from ..latent import check_example_latents


@dataclass
class Boundary:
    """A fitted boundary: ``normal`` [D] (unit length, towards positive), ``accuracy`` on the examples,
    ``l2`` the penalty used and the number of L-BFGS ``iterations``."""

    normal: torch.Tensor
    accuracy: float
    l2: float
    iterations: int


def fit_boundary(positive: torch.Tensor, negative: torch.Tensor, l2: float = 1e-2, max_iter: int = 200) -> Boundary:
    """Fit an L2-regularised logistic regression separating latents ``positive`` [P, D] from ``negative`` [Q, D].

    ``l2`` is the penalty on the standardised weights, per example (``l2 * |w|^2 / 2`` is added to the mean
    log-loss); larger values give a direction nearer the (standardised) mean difference.
    """
    check_example_latents(positive, negative, "a boundary")
    if not is_real_number(l2) or not l2 > 0:
        raise LatentError(f"l2 must be positive (it keeps the fit finite when the examples separate), got {l2}")
    # leave inference mode (a caller may be in it): the weights need autograd
    with torch.inference_mode(False):
        x = torch.cat([positive, negative]).double().cpu()
        y = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))]).double()
        centre, scale = x.mean(0), x.std(0).clamp_min(1e-8) if len(x) > 1 else torch.ones(x.shape[1])
        xs = (x - centre) / scale
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10,
                                      tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")
        # positives and negatives weigh equally, whatever their counts
        weights = torch.where(y > 0, 0.5 / len(positive), 0.5 / len(negative))

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            logits = xs @ w + b
            loss = (weights * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")).sum()
            loss = loss + 0.5 * l2 * (w @ w)
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
    iterations = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
    with torch.no_grad():
        accuracy = float((((xs @ w + b) > 0).double() == y).double().mean())
        normal = w.detach() / scale
    if not bool(normal.isfinite().all()) or float(normal.norm()) == 0.0:
        raise LatentError("the boundary fit found no direction (are the positive and negative examples the same?)")
    return Boundary(normal=(normal / normal.norm()).to(positive.dtype), accuracy=accuracy, l2=l2,
                    iterations=iterations)
