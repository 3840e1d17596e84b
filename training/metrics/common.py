"""Shared helpers of the metrics: evaluation data as tensors, the content crop, batching and progress."""

from __future__ import annotations

import contextlib
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dcvae_tools.errors import DCVAEError
from dcvae_tools.images.convert import crop_center

__all__ = [
    "DEFAULT_CACHE_DIR",
    "PARTLY_LABELLED",
    "DivergedModelError",
    "MetricError",
    "batches",
    "crop_content",
    "default_cache_dir",
    "labelled_indices",
    "labelled_rows",
    "labelled_split_tensors",
    "progress",
    "require_finite",
    "split_tensors",
    "subset_indices",
    "to_grey",
]

DEFAULT_CACHE_DIR = Path("~/.cache/dcvae-tools")
"""Where trained classifiers (``classifiers/<dataset>/``) and reference statistics (``fd-stats/``) live."""

SUBSET_SEED = 0
"""Seed of the permutation that picks a limited subset of a split: fixed, so cached statistics are shared."""

_BT601 = (0.299, 0.587, 0.114)
_SPLIT_CACHE: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
_SPLIT_CACHE_SIZE = 4


class MetricError(DCVAEError):
    """An unknown metric name, or a metric that cannot run with what is available (the message says why)."""


class DivergedModelError(MetricError):
    """The model gave NaN or infinite images or latents: no metric can measure it."""


def require_finite(images: torch.Tensor, what: str) -> torch.Tensor:
    """``images`` unchanged, or a DivergedModelError when any value is NaN or infinite: a classifier would put
    such images in class 0 and report a number, so no metric measures them."""
    bad = int((~torch.isfinite(images.flatten(1))).any(1).sum()) if len(images) else 0
    if bad:
        raise DivergedModelError(
            f"{bad} of {len(images)} {what} have NaN or infinite values: the model has diverged; evaluate an "
            "earlier snapshot"
        )
    return images


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``~/.cache/dcvae-tools`` (expanded)."""
    return Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR.expanduser()


def subset_indices(total: int, limit: int | None) -> np.ndarray | None:
    """Sorted indices of a seeded random subset of ``limit`` of ``total`` items; None for "all of them".

    The permutation's seed is fixed (``SUBSET_SEED``): a subset of a split is the same in every evaluation,
    whatever the evaluation seed, so statistics cached for it can be shared.
    """
    if limit is None or limit >= total:
        return None
    if limit < 1:
        raise ValueError(f"a subset needs at least 1 item, got {limit}")
    order = np.random.default_rng(SUBSET_SEED).permutation(total)
    return np.sort(order[:limit])


def _fast_array_tensor(dataset: object) -> torch.Tensor | None:
    """Vectorised ``convert_image`` for an ArrayImageDataset of square grey images that are only padded.

    Same values as the dataset's items (``v / 255 * 2 - 1``, padded with -1), without a Python loop.
    """
    from ..data import ArrayImageDataset, natural_content_size

    if not isinstance(dataset, ArrayImageDataset) or dataset.images.ndim != 3:
        return None
    size = dataset.image_size
    _, h, w = dataset.images.shape
    content = dataset.content_size or natural_content_size(h, w, True, size)
    if (h, w) != (content, content):
        return None
    x = torch.from_numpy(np.ascontiguousarray(dataset.images)).float().div_(255.0).mul_(2.0).sub_(1.0)
    x = x.unsqueeze(1)
    if (h, w) != (size, size):
        top, left = (size - h) // 2, (size - w) // 2
        x = F.pad(x, (left, size - w - left, top, size - h - top), value=-1.0)
    if dataset.channels == 3:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


def split_tensors(
    dataset: str,
    split: str,
    image_size: int,
    channels: int,
    data_root: str | None = None,
    limit: int | None = None,
    content_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset split as tensors: images float32 [N, channels, S, S] in [-1, 1] and labels int64 [N].

    Images are converted exactly as for training (``training.data.make_dataset`` with the model's
    ``content_size``; None lets grey 28x28 data be padded into ``S x S`` with -1). ``limit`` keeps a fixed
    seeded subset (see :func:`subset_indices`).
    The last few results are kept in memory, so several metrics share one load.
    """
    key = (dataset, split, image_size, channels, data_root, limit, content_size)
    if key in _SPLIT_CACHE:
        _SPLIT_CACHE.move_to_end(key)
        return _SPLIT_CACHE[key]
    from ..data import make_dataset

    ds = make_dataset(dataset, split, image_size, channels, data_root, content_size=content_size)
    total = len(ds)  # type: ignore[arg-type]
    keep = subset_indices(total, limit)
    images = _fast_array_tensor(ds)
    labels_all = getattr(ds, "labels", None)
    if images is not None and labels_all is not None:
        labels = torch.as_tensor(np.asarray(labels_all), dtype=torch.int64)
        if keep is not None:
            index = torch.from_numpy(keep)
            images, labels = images[index].contiguous(), labels[index]
    else:
        order = keep if keep is not None else np.arange(total)
        items = [ds[int(i)] for i in order]
        images = torch.stack([item[0] for item in items])
        labels = torch.tensor([int(item[1]) for item in items], dtype=torch.int64)
    _SPLIT_CACHE[key] = (images, labels)
    while len(_SPLIT_CACHE) > _SPLIT_CACHE_SIZE:
        _SPLIT_CACHE.popitem(last=False)
    return images, labels


def crop_content(images: torch.Tensor, content_size: int | None) -> torch.Tensor:
    """The centred ``content_size`` square of images [N, C, S, S] (drops the model's padding); no-op if None."""
    if content_size is None or content_size >= images.shape[-1]:
        return images
    return crop_center(images, content_size)


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] -> [N, 1, H, W] with ITU-R BT.601 luma (as training.data); grey input is returned as is."""
    if images.shape[1] == 1:
        return images
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return _BT601[0] * r + _BT601[1] * g + _BT601[2] * b


def batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``x`` along dim 0, ``batch_size`` at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


@contextlib.contextmanager
def progress(total: int, description: str, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (only when stderr is a terminal, unless ``enabled`` says otherwise).

    Yields ``advance(n)``; a no-op when the bar is off.
    """
    on = sys.stderr.isatty() if enabled is None else enabled
    if not on:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


PARTLY_LABELLED = frozenset({"stl10"})
"""Datasets whose train split holds images without a label (-1): STL-10's 100,000 unlabeled images."""


def labelled_split_tensors(
    dataset: str,
    split: str,
    image_size: int,
    channels: int,
    data_root: str | None = None,
    limit: int | None = None,
    content_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`split_tensors` without the images that carry no label (``PARTLY_LABELLED``); ``limit`` then keeps a
    fixed seeded subset of the labelled ones.

    Where every image is labelled (all the other datasets) this is exactly ``split_tensors``.
    """
    if dataset.strip().lower() not in PARTLY_LABELLED:
        return split_tensors(dataset, split, image_size, channels, data_root, limit, content_size)
    from ..data import make_dataset

    ds = make_dataset(dataset, split, image_size, channels, data_root, content_size=content_size)
    try:
        return labelled_rows(ds, limit)
    except ValueError as err:
        raise ValueError(f"the {dataset} {split} split: {err}") from None


def labelled_rows(dataset: Any, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled items of a dataset with a ``labels`` array (-1: unlabelled) as tensors, like
    :func:`split_tensors`'s; only the kept items are converted."""
    labels = torch.as_tensor(np.asarray(dataset.labels), dtype=torch.int64)
    keep = labelled_indices(labels, limit)
    images = torch.stack([dataset[int(i)][0] for i in keep])
    return images, labels[keep]


def labelled_indices(labels: torch.Tensor, limit: int | None = None) -> torch.Tensor:
    """Indices of the labelled rows (label >= 0; -1 marks an unlabelled image), sorted; with ``limit``, the fixed
    seeded subset of that many of them (:func:`subset_indices`)."""
    keep = torch.nonzero(labels >= 0).squeeze(1)
    if len(keep) == 0:
        raise ValueError(f"no labelled images among {len(labels):,} (every label is -1)")
    subset = subset_indices(len(keep), limit)
    return keep if subset is None else keep[torch.from_numpy(subset)]
