"""Attribute-edit success: does adding an attribute direction make the repo's classifier see the attribute?

Protocol (this repo's; the paper shows edits qualitatively, Figure 7, without a number): take held-out (test
split) images whose label is on the attribute's NEGATIVE side, encode them (posterior mean), add
``strength * direction`` and decode. The success rate is the share of edited images that the dataset's
FD-classifier assigns to one of the attribute's POSITIVE classes. Reported beside it: the same share for the
unedited reconstructions (the baseline an edit must beat), and how far the edit moved the image: mean
per-image L2 distance and MSE, on the [0, 1] scale over the image content, to the source reconstruction and
to the source image.

The direction is the model's own attribute when it ships one under that name; otherwise it is made with the
paper's recipe (supplementary A.2): mean latent of 20 training images of the positive classes minus the mean
of 20 of the negative classes, picked at random with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from dcvae_tools.errors import LatentError

from .common import DivergedModelError, batches, crop_content, require_finite

__all__ = ["EditResult", "class_direction", "edit_success"]

EXAMPLES_PER_SIDE = 20


@dataclass
class EditResult:
    """Numbers of one attribute-edit evaluation (see the module docstring)."""

    success_rate: float
    baseline_rate: float
    num_images: int
    strength: float
    positive_classes: list[int]
    negative_classes: list[int]
    mean_l2_to_reconstruction: float
    mse_to_reconstruction: float
    mean_l2_to_source: float
    mse_to_source: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def class_direction(
    model: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    positive: Sequence[int],
    negative: Sequence[int],
    *,
    seed: int = 0,
    count: int = EXAMPLES_PER_SIDE,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The paper's direction from class labels: mean latent of ``count`` random positive-class images minus that
    of ``count`` negative-class ones (seeded). Returns the [D] direction and the indices used."""
    y = labels.numpy()
    rng = np.random.default_rng(seed)
    pos_pool = np.flatnonzero(np.isin(y, list(positive)))
    neg_pool = np.flatnonzero(np.isin(y, list(negative)))
    if len(pos_pool) == 0 or len(neg_pool) == 0:
        raise ValueError(f"no training images of classes {list(positive)} or {list(negative)}")
    pos = np.sort(rng.choice(pos_pool, min(count, len(pos_pool)), replace=False))
    neg = np.sort(rng.choice(neg_pool, min(count, len(neg_pool)), replace=False))
    try:
        vector = model.attribute_vector(images[torch.from_numpy(pos)], images[torch.from_numpy(neg)])
    except LatentError as err:  # a collapsed encoder: no edit of this snapshot can be measured (curves record it)
        raise DivergedModelError(f"no direction from classes {list(positive)} to {list(negative)}: {err}") from err
    return vector.direction, {"positive_indices": pos.tolist(), "negative_indices": neg.tolist(), "seed": seed}


def _l2_and_mse(a: torch.Tensor, b: torch.Tensor, content_size: int | None) -> tuple[float, float]:
    diff = (crop_content(a, content_size).double() - crop_content(b, content_size).double()) / 2.0
    flat = diff.flatten(1)
    return float(flat.norm(dim=1).mean()), float(flat.pow(2).mean())


def edit_success(
    model: Any,
    classifier: Any,
    direction: torch.Tensor,
    images: torch.Tensor,
    positive_classes: Sequence[int],
    negative_classes: Sequence[int],
    *,
    strength: float = 1.0,
    content_size: int | None = None,
    batch_size: int = 256,
) -> EditResult:
    """Edit negative-side ``images`` (model space, [-1, 1]) along ``direction`` and judge them with ``classifier``.

    Args:
        model: the DC-VAE (``encode``/``decode``).
        classifier: a :class:`~training.metrics.classifier.SmallCNN` (``predict`` on content-region images).
        direction: [D] attribute direction.
        images: the source images, all of the negative side.
        positive_classes, negative_classes: the attribute's class sets (labels of ``classifier``).
        strength: multiple of ``direction`` added to each latent.
        content_size: the model's content size (padding is cropped before judging and measuring).
    """
    if len(images) == 0:
        raise ValueError("no source images to edit")
    positive = torch.tensor(sorted(set(int(c) for c in positive_classes)))
    hits = base_hits = 0
    l2_rec = mse_rec = l2_src = mse_src = 0.0
    for batch in batches(images, batch_size):
        z = model.encode(batch, batch_size=batch_size)
        recon = require_finite(model.decode(z, batch_size=batch_size).cpu(), "reconstructions (in one batch)")
        edited = require_finite(
            model.decode(z + float(strength) * direction.to(z.device, z.dtype), batch_size=batch_size).cpu(),
            "edited images (in one batch)",
        )
        hits += int(torch.isin(classifier.predict(crop_content(edited, content_size)), positive).sum())
        base_hits += int(torch.isin(classifier.predict(crop_content(recon, content_size)), positive).sum())
        n = len(batch)
        a, b = _l2_and_mse(edited, recon, content_size)
        l2_rec, mse_rec = l2_rec + a * n, mse_rec + b * n
        a, b = _l2_and_mse(edited, batch, content_size)
        l2_src, mse_src = l2_src + a * n, mse_src + b * n
    total = len(images)
    return EditResult(
        success_rate=hits / total,
        baseline_rate=base_hits / total,
        num_images=total,
        strength=float(strength),
        positive_classes=positive.tolist(),
        negative_classes=sorted(set(int(c) for c in negative_classes)),
        mean_l2_to_reconstruction=l2_rec / total,
        mse_to_reconstruction=mse_rec / total,
        mean_l2_to_source=l2_src / total,
        mse_to_source=mse_src / total,
    )
