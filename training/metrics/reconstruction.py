"""Pixel reconstruction error: MSE on the [0, 1] scale and PSNR.

Reference: the usual definitions (e.g. ``skimage.metrics.peak_signal_noise_ratio`` with ``data_range=1``).
Images are in [-1, 1]; the MSE is taken on the [0, 1] scale, i.e. ``mean((x - y)^2) / 4``, over the image
content (the model's padding is cropped away), averaged over all pixels of all images. PSNR is computed from
that dataset-level MSE: ``10 log10(1 / MSE)`` (``inf`` for a perfect reconstruction); the mean of per-image
PSNRs is reported beside it.
"""

from __future__ import annotations

import math

import torch

from .common import crop_content

__all__ = ["mse_01", "psnr_from_mse", "reconstruction_errors"]


def psnr_from_mse(mse: float) -> float:
    """``10 log10(1 / mse)`` for images on the [0, 1] scale; ``inf`` when ``mse`` is 0."""
    if mse < 0 or math.isnan(mse):
        raise ValueError(f"MSE must be >= 0, got {mse}")
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def mse_01(images: torch.Tensor, references: torch.Tensor, content_size: int | None = None) -> torch.Tensor:
    """Per-image MSE [N] on the [0, 1] scale of images in [-1, 1] (content region), float64."""
    if images.shape != references.shape:
        raise ValueError(f"shapes differ: {tuple(images.shape)} vs {tuple(references.shape)}")
    a = crop_content(images, content_size).double()
    b = crop_content(references, content_size).double()
    return ((a - b) / 2.0).pow(2).flatten(1).mean(1)


def reconstruction_errors(
    images: torch.Tensor, reconstructions: torch.Tensor, content_size: int | None = None
) -> dict[str, float]:
    """``{"mse": ..., "psnr": ..., "psnr_mean_per_image": ..., "num_images": ...}`` on the [0, 1] scale."""
    per_image = mse_01(reconstructions, images, content_size)
    mse = float(per_image.mean())
    per_image_psnr = [psnr_from_mse(float(v)) for v in per_image]
    return {
        "mse": mse,
        "psnr": psnr_from_mse(mse),
        "psnr_mean_per_image": float(sum(per_image_psnr) / len(per_image_psnr)),
        "num_images": len(per_image),
    }
