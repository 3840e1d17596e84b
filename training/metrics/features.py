"""Feature networks for Frechet distances, behind one small interface, and batched feature extraction.

Three networks, each named in reports so that nobody mixes up their numbers:

* ``"FID-Inception"`` (:mod:`.inception`): pytorch-fid's Inception-v3 (pool3, 2048-d); the only one whose
  numbers compare with published FIDs (the paper's CIFAR-10 17.9).
* ``"FD-Lite0"`` (:mod:`.lite0`): EfficientNet-Lite0 ImageNet features (global average pool, 1280-d).
* ``"FD-classifier"`` (:mod:`.classifier`): a small CNN trained in this repo on the dataset's train split
  (penultimate layer, 128-d); sensitive to what the dataset's classes look like, cheap on a CPU.

All take model-space images: float [N, C, H, W] in [-1, 1], the model's padding already cropped away.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from .common import batches, progress
from .frechet import FeatureAccumulator

__all__ = ["FeatureNetwork", "extract_features", "feature_stats_of"]


class FeatureNetwork(nn.Module):
    """Base class: ``preprocess`` maps images in [-1, 1] to the network's input, ``embed`` gives [N, dim].

    Attributes:
        name: the human name used in reports (``"FID-Inception"``, ``"FD-Lite0"``, ``"FD-classifier"``).
        short: the suffix used in metric names (``"inception"``, ``"lite0"``, ``"classifier"``).
        dim: feature size.
    """

    name: str = "feature-network"
    short: str = "features"
    dim: int = 0

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] in [-1, 1] -> the network's input batch."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed batch -> features [N, dim]."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] in [-1, 1] -> features [N, dim] (float32)."""
        return self.embed(self.preprocess(images)).float()

    def cache_key(self) -> str:
        """A short id of the network and its weights, used in cached statistics' file names."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for reports: name, dim, weights file and checksum, preprocessing."""
        return {"feature_network": self.name, "dim": self.dim}


def _device_of(net: nn.Module) -> torch.device:
    try:
        return next(net.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _feature_batches(
    net: FeatureNetwork,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int,
    show: bool | None,
    total: int | None = None,
) -> Iterable[torch.Tensor]:
    device = _device_of(net)
    if isinstance(images, torch.Tensor):
        total, source = len(images), batches(images, batch_size)
    else:
        total, source = total or 0, images
    with progress(total, f"{net.name} features", enabled=show if total else False) as advance:
        for batch in source:
            with torch.inference_mode():
                out = net(batch.to(device)).cpu()
            advance(len(batch))
            yield out


def extract_features(
    net: FeatureNetwork,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 128,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Features [N, dim] (float32 numpy) of images [N, C, H, W] in [-1, 1] (or an iterable of such batches)."""
    net.eval()
    parts = [f.numpy() for f in _feature_batches(net, images, batch_size, show_progress)]
    if not parts:
        raise ValueError("no images to extract features from")
    return np.concatenate(parts)


def feature_stats_of(
    net: FeatureNetwork,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 128,
    show_progress: bool | None = None,
    total: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Streaming (mu, sigma, count) of the features of images (a tensor, or an iterable of batches whose
    image count ``total`` sizes the progress bar)."""
    net.eval()
    acc = FeatureAccumulator()
    for feats in _feature_batches(net, images, batch_size, show_progress, total):
        acc.update(feats.double().numpy())
    mu, sigma = acc.statistics()
    return mu, sigma, acc.count
