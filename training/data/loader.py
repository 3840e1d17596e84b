"""An endless, resumable, per-rank sharded data loader for training."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..stop_request import isolate_from_stop_signals


def _epoch_seed(seed: int, epoch: int) -> int:
    # torch's CPU generator only uses the low 32 bits of its seed, so (seed, epoch) is hashed into 32 bits.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint32)[0])


class _BatchIndexStream(Sampler[list[int]]):
    """Endless batches of indices for one rank, starting at (epoch, batch)."""

    def __init__(self, owner: InfiniteLoader, epoch: int, batch: int) -> None:
        self.owner = owner
        self.epoch = epoch
        self.batch = batch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, start = self.epoch, self.batch
        size = self.owner.batch_size
        while True:
            indices = self.owner.epoch_indices(epoch)
            for b in range(start, self.owner.batches_per_epoch):
                yield indices[b * size : (b + 1) * size].tolist()
            epoch, start = epoch + 1, 0


class InfiniteLoader:
    """An endless, resumable iterator of batches (drop_last) over a map-style dataset.

    Epoch ``e`` uses the permutation ``torch.randperm(len(dataset))`` drawn from a ``torch.Generator``
    seeded by a hash of ``(seed, e)``. With ``world_size > 1`` the permutation is truncated to a multiple
    of ``world_size`` and rank ``r`` takes every ``world_size``-th index starting at ``r``
    (``DistributedSampler(drop_last=True)`` semantics), so ranks see disjoint shards of equal size.
    Each rank then yields ``batches_per_epoch = (len(dataset) // world_size) // batch_size`` batches.

    ``state_dict()`` counts the batches this object has *returned* (not those prefetched by workers);
    ``load_state_dict()`` on a loader built with the same dataset/batch_size/seed/rank/world_size makes
    the following batches exactly those the saved loader would have returned.
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        *,
        pin_memory: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.length = len(dataset)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn
        self.batches_per_epoch = (self.length // world_size) // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"dataset of {self.length} items is too small for batch_size={batch_size} "
                f"x world_size={world_size} with drop_last"
            )
        self._epoch = 0
        self._batch = 0
        self._iterator: Iterator[Any] | None = None
        self._cached_epoch, self._cached_indices = -1, torch.empty(0, dtype=torch.long)
        self.last_indices = torch.empty(0, dtype=torch.long)
        """Dataset indices of the batch returned last (int64 ``[batch_size]``)."""

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from."""
        return self._epoch

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This rank's dataset indices for ``epoch``, in order (int64, length ``length // world_size``)."""
        generator = torch.Generator()
        generator.manual_seed(_epoch_seed(self.seed, epoch))
        perm = torch.randperm(self.length, generator=generator)
        per_rank = self.length // self.world_size
        return perm[: per_rank * self.world_size][self.rank :: self.world_size]

    def __iter__(self) -> InfiniteLoader:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            loader = DataLoader(
                self.dataset,
                batch_sampler=_BatchIndexStream(self, self._epoch, self._batch),
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                collate_fn=self.collate_fn,
                worker_init_fn=isolate_from_stop_signals,
                # DataLoader draws a worker base seed when an iterator is created; from the global RNG
                # unless given a generator, which would make a resumed run's random stream differ.
                generator=torch.Generator().manual_seed(_epoch_seed(self.seed, self._epoch)),
            )
            self._iterator = iter(loader)
        batch = next(self._iterator)
        if self._cached_epoch != self._epoch:
            self._cached_epoch, self._cached_indices = self._epoch, self.epoch_indices(self._epoch)
        start = self._batch * self.batch_size
        self.last_indices = self._cached_indices[start : start + self.batch_size]
        self._batch += 1
        if self._batch == self.batches_per_epoch:
            self._epoch += 1
            self._batch = 0
        return batch

    def state_dict(self) -> dict[str, int]:
        """Position of the next batch: ``{"epoch": int, "batches_in_epoch": int}``."""
        return {"epoch": self._epoch, "batches_in_epoch": self._batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a ``state_dict()``; prefetched batches (if any) are discarded."""
        try:
            epoch, batch = int(state["epoch"]), int(state["batches_in_epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"bad InfiniteLoader state {state!r}: need int 'epoch' and 'batches_in_epoch'"
            ) from exc
        if epoch < 0 or not 0 <= batch <= self.batches_per_epoch:
            raise ValueError(
                f"bad InfiniteLoader state {state!r}: batches_in_epoch must be in 0..{self.batches_per_epoch}"
            )
        if batch == self.batches_per_epoch:
            epoch, batch = epoch + 1, 0
        self.close()
        self._epoch, self._batch = epoch, batch

    def close(self) -> None:
        """Drop the underlying DataLoader iterator (and its worker processes); iteration restarts lazily."""
        self._iterator = None


def infinite_loader(
    dataset: Dataset[Any],
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
) -> InfiniteLoader:
    """Build an ``InfiniteLoader`` (endless, reshuffled per epoch, sharded per rank, resumable)."""
    return InfiniteLoader(
        dataset, batch_size, seed, rank=rank, world_size=world_size, num_workers=num_workers
    )
