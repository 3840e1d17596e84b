"""Reading the files of a dataset-scale encoding: a map-style dataset, its batches and their collation.

Files that are already model-ready 8-bit PNGs (:mod:`dcvae_tools.images.ready_png`) are read to their
compressed image data, then decoded and converted batch by batch; every other file (and a model-ready one whose
data does not decode) goes through :func:`~dcvae_tools.images.convert_image`, one by one. Both give the same
values, so which path a file took never shows in the latents.
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
from ..images.ready_png import decode_model_ready, read_model_ready_data

if TYPE_CHECKING:
    from .writer import _Plan

Pixels = bytes | torch.Tensor
"""A model-ready file's compressed image data (decoded with its batch), or a converted ``[C, size, size]``
model tensor."""
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
        ready = read_model_ready_data(self.files[i], self.channels, self.content_size)
        if ready is not None:
            return i, ready, None, None
        return self._convert(i)

    def _convert(self, i: int) -> Item:
        """Item ``i`` the usual way: converted, with its note, or its error message."""
        try:
            tensor, note = convert_image(
                self.files[i], size=self.size, channels=self.channels, content_size=self.content_size
            )
        except ImageError as err:
            return i, None, None, " ".join(str(err).split())
        return i, tensor, note, None

    def collate(self, items: list[Item]) -> ImageBatch:
        """Stack a batch's readable images in item order (the model-ready ones decoded and converted together)."""
        items = list(items)
        ready = [k for k, (_, pixels, _, _) in enumerate(items) if isinstance(pixels, bytes)]
        decoded = np.empty(0)
        if ready:
            streams = [pixels for k in ready if isinstance(pixels := items[k][1], bytes)]
            decoded, whole = decode_model_ready(streams, self.channels, self.content_size)
            for k, ok in zip(ready, whole, strict=True):
                if not ok:  # data Pillow refuses: the usual path reads the file and says what is wrong
                    items[k] = self._convert(items[k][0])
            ready = [k for k, ok in zip(ready, whole, strict=True) if ok]
            decoded = decoded[np.asarray(whole, dtype=bool)]
        readable = [k for k, (_, pixels, _, error) in enumerate(items) if error is None and pixels is not None]
        images = None
        if readable:
            images = torch.empty(len(readable), self.channels, self.size, self.size, dtype=torch.float32)
            row = {k: r for r, k in enumerate(readable)}
            if ready:
                images[[row[k] for k in ready]] = model_batch_from_uint8(decoded, self.size)
            for k in readable:
                pixels = items[k][1]
                if isinstance(pixels, torch.Tensor):
                    images[row[k]] = pixels
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
