"""torch.distributed helpers: torchrun detection, process-group set-up, gathering, rank-0 gating."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

_HOST_GROUP: Any = None  # a gloo group beside an NCCL default group (None: the default group is gloo)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Side effects (files, progress bars, logs) happen on rank 0 only."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_with_several_ranks() -> bool:
    """Whether torchrun (or the like) started this process as one of several ranks; known before joining."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    NCCL on CUDA, gloo on the CPU. A plain ``python`` launch is a single process and needs no group.
    """
    if not launched_with_several_ranks():
        return DistInfo()
    info = DistInfo(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    )
    global _HOST_GROUP
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    # NCCL moves CUDA tensors only: host objects (random states, loader positions) need a gloo group
    _HOST_GROUP = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def all_gather_cat(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0 (rank order); identity on one process."""
    if not info.enabled:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(info.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (picklable host data, e.g. CPU tensors), in rank order, on every rank.

    Goes through a gloo group, which exists next to NCCL for exactly this; ``[obj]`` on one process.
    """
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj, group=_HOST_GROUP)
    return out


def max_over_ranks(value: int, info: DistInfo) -> int:
    """The largest of every rank's ``value``, on every rank. Ranks vote with it to leave a loop at the same
    iteration and for the same reason (a clock or a signal seen by one rank alone would leave the others
    waiting in a collective)."""
    if not info.enabled:
        return value
    votes = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=_HOST_GROUP)
    return int(votes.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo, *, failed: bool = False) -> None:
    """Leave the process group.

    After a clean finish the ranks first meet at a barrier (on the gloo group), so that no rank closes its
    connections while another is still in its last collective: without it, a gloo rank that left first now and
    then made the other abort at exit ("terminate called without an active exception"). If another rank failed
    and left without it, the barrier raises instead of waiting, and this rank fails too, saying so.

    After a failure (``failed=True``) there is no barrier, since the other ranks may never reach it. A gloo
    group is still destroyed (that is local to the process); an NCCL one is left to the process's exit, since
    destroying NCCL communicators while a peer is inside a collective can hang.
    """
    if not (info.enabled and dist.is_initialized()):
        return
    try:
        if not failed:
            dist.barrier(group=_HOST_GROUP)
    except RuntimeError as err:  # DistBackendError is one: a peer closed its connections
        raise RuntimeError(
            f"rank {info.rank} finished, but another rank left the run without finishing it (its own error says "
            f"why): {err}"
        ) from err
    finally:
        if not (failed and dist.get_backend() == "nccl"):
            dist.destroy_process_group()
