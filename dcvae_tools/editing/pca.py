"""Unsupervised directions (GANSpace's recipe): principal components of a model's training latents.

Component k is the k-th eigenvector of the training latents' covariance (from ``latent_stats.safetensors``),
scaled to one standard deviation: ``pcNN = sqrt(lambda_k) * v_k``. A strength of 1.0 therefore moves one standard
deviation along it in both units. The sign of each eigenvector is fixed so that its largest entry is positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..model import DCVAE, AttributeVector
    from .stats import LatentStats

FIGURE_STRENGTHS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def principal_directions(stats: LatentStats, count: int = 10) -> dict[str, AttributeVector]:
    """The first ``count`` principal components as attribute directions ``pc01`` ... (one std long)."""
    from ..model import AttributeVector
    from .units import unit_metadata

    values, vectors = stats.eigen()
    total = float(values.sum()) or 1.0
    out = {}
    for k in range(min(count, len(values))):
        v = vectors[:, k]
        v = v * (1.0 if float(v[v.abs().argmax()]) >= 0 else -1.0)
        std = float(values[k].sqrt())
        direction = (std * v).float()
        name = f"pc{k + 1:02d}"
        out[name] = AttributeVector(
            name=name,
            direction=direction,
            num_positive=0,
            num_negative=0,
            normalized=False,
            metadata={
                "method": "pca",
                "component": k + 1,
                "explained_variance_ratio": float(values[k]) / total,
                "rule": f"principal component {k + 1} of the training latents' covariance, one standard deviation "
                "long",
                "dataset": stats.metadata.get("dataset"),
                "unit": unit_metadata(direction, stats),
            },
        )
    return out


def draw_components(
    model: DCVAE,
    path: str | Path,
    base: torch.Tensor | None = None,
    names: Sequence[str] | None = None,
    strengths: Sequence[float] = FIGURE_STRENGTHS,
) -> Path:
    """A grid of what each principal component does: one row per component, one column per strength (in
    standard deviations, named in a strip on top), applied to ``base`` (default: the training latents' mean)."""
    from ..images import save_grid
    from ..images.labels import strength_labels

    stats = model.latent_stats
    if stats is None:
        raise ValueError("the model has no latent statistics; run `dcvae-train latent-stats` first")
    names = list(names or sorted(n for n, a in model.attributes.items() if a.metadata.get("method") == "pca"))
    z0 = (stats.mean.float() if base is None else base.float().reshape(-1)).unsqueeze(0)
    rows = [z0 + torch.tensor(strengths).unsqueeze(1) * model.attributes[n].direction.unsqueeze(0) for n in names]
    images = model.decode(torch.cat(rows)).cpu()
    return save_grid(images, Path(path), nrow=len(strengths), content_size=model.config.content_size, upscale=2,
                     column_labels=strength_labels(strengths))
