"""Reading the files of a dataset-scale encoding: a map-style dataset, its batches and their collation.

Files that are already model-ready 8-bit PNGs (:mod:`dcvae_tools.images.ready_png`) are decoded to uint8 and
converted batch by batch; every other file goes through :func:`~dcvae_tools.images.convert_image`, one by
one. Both give the same values, so which path a file took never shows in the latents.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ImageError
from ..images import convert_image
from ..images.convert import model_batch_from_uint8
from ..images.ready_png import read_model_ready_png

if TYPE_CHECKING:
    from .writer import _Plan

Pixels = np.ndarray | torch.Tensor
"""A model-ready file's uint8 ``[s, s, C]`` pixels, or a converted ``[C, size, size]`` model tensor."""
Item = tuple[int, Pixels | None, str | None, str | None]
"""One file as a worker reads it: (index, pixels or None, note, error message)."""


@dataclass
class ImageBatch:
    """One batch as a worker hands it over: the readable images stacked into one tensor.

    Stacking in the worker matters: a worker passes each tensor to the main process through its own
    shared-memory segment, and one segment per image cost more than reading and converting the image.
    """

    indices: list[int]
    images: torch.Tensor | None
    notes: list[tuple[int, str]]
    errors: list[tuple[int, str]]


class ImageFiles(Dataset[Item]):
    """Map-style dataset over image files: item ``i`` is (i, pixels or None, note, error message)."""

    def __init__(self, files: Sequence[Path], size: int, channels: int, content_size: int | None) -> None:
        self.files = list(files)
        self.size, self.channels = size, channels
        self.content_size = size if content_size is None else content_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Item:
        ready = read_model_ready_png(self.files[i], self.channels, self.content_size)
        if ready is not None:
            return i, ready, None, None
        try:
            tensor, note = convert_image(
                self.files[i], size=self.size, channels=self.channels, content_size=self.content_size
            )
        except ImageError as err:
            return i, None, None, " ".join(str(err).split())
        return i, tensor, note, None

    def collate(self, items: list[Item]) -> ImageBatch:
        """Stack a batch's readable images in item order (the model-ready ones converted together)."""
        readable = [pixels for _, pixels, _, error in items if error is None and pixels is not None]
        images = None
        if readable:
            images = torch.empty(len(readable), self.channels, self.size, self.size, dtype=torch.float32)
            ready = [k for k, pixels in enumerate(readable) if isinstance(pixels, np.ndarray)]
            if ready:
                images[ready] = model_batch_from_uint8(np.stack([readable[k] for k in ready]), self.size)
            for k, pixels in enumerate(readable):
                if isinstance(pixels, torch.Tensor):
                    images[k] = pixels
        return ImageBatch(
            indices=[i for i, *_ in items],
            images=images,
            notes=[(i, note) for i, _, note, error in items if note and error is None],
            errors=[(i, error) for i, _, _, error in items if error is not None],
        )


class ShardBatches:
    """Batches of file indices, shard by shard, never crossing a shard boundary."""

    def __init__(self, plan: _Plan, shards: Sequence[int], batch_size: int) -> None:
        self.plan, self.shards, self.batch_size = plan, list(shards), batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for shard in self.shards:
            span = self.plan.shard_range(shard)
            for start in range(span.start, span.stop, self.batch_size):
                yield list(range(start, min(start + self.batch_size, span.stop)))

    def __len__(self) -> int:
        return sum(-(-len(self.plan.shard_range(s)) // self.batch_size) for s in self.shards)
