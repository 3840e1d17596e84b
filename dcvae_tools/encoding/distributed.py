"""The torchrun side of sharded encoding: who this process is, its share of the shards, and the collectives.

torch is imported where it is used, so ``dcvae encode`` can check its arguments (under torchrun too) first."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import DCVAEError

if TYPE_CHECKING:
    from ..model import DCVAE


def whole_number_variable(name: str, default: str) -> int:
    """An environment variable torchrun sets, as a whole number of 0 or more (a DCVAEError naming it otherwise)."""
    text = os.environ.get(name, default)
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise DCVAEError(f"{name}={text!r} is not a whole number of 0 or more; it is torchrun's to set: unset it, "
                         "or run under torchrun")
    return value


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it. A malformed value is a DCVAEError that
    names the variable (they are set by torchrun, or left over from another job's shell)."""
    rank, world = whole_number_variable("RANK", "0"), whole_number_variable("WORLD_SIZE", "1")
    if world < 1 or not rank < world:  # RANK=3 alone would encode no shard and say nothing
        raise DCVAEError(f"RANK={rank} with WORLD_SIZE={world} is not a torchrun process (RANK must be below "
                         "WORLD_SIZE, which is at least 1); unset both, or run under torchrun")
    _check_rendezvous(world)
    return rank, world


def _check_rendezvous(world: int) -> None:
    """Refuse, before any output exists, a WORLD_SIZE > 1 whose processes could never meet (no process group yet
    and no MASTER_ADDR / MASTER_PORT for torch's env:// rendezvous)."""
    if world <= 1:
        return
    dist = sys.modules.get("torch.distributed")  # not imported here: an initialised group means it was
    if dist is not None and dist.is_available() and dist.is_initialized():
        return
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise DCVAEError(f"WORLD_SIZE={world} asks for {world} processes, but {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not set, so they cannot meet: start the command "
                         "with torchrun, or unset WORLD_SIZE to run it as one process")


def distributed_device() -> str | None:
    """The device a torchrun process should use: ``cuda:LOCAL_RANK`` when CUDA is there, else None."""
    if rank_and_world()[1] <= 1:
        return None
    import torch

    if torch.cuda.is_available():
        return f"cuda:{whole_number_variable('LOCAL_RANK', '0')}"
    return None


@contextlib.contextmanager
def process_group(model: DCVAE, world: int) -> Iterator[None]:
    """Join torchrun's process group (gloo on the CPU, nccl on CUDA) unless it is joined already."""
    import torch
    import torch.distributed as dist

    if world <= 1 or dist.is_initialized():
        yield
        return
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.set_device(model.device)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def my_shards(num_shards: int, rank: int, world: int) -> range:
    """A contiguous, deterministic range of shards for each process."""
    return range(num_shards * rank // world, num_shards * (rank + 1) // world)


def gather_records(
    model: DCVAE, records: dict[int, dict[str, Any]], failed: bool, world: int
) -> dict[int, dict[str, Any]]:
    """All processes' shard records (a collective); raises in every process if one of them failed."""
    if world <= 1:
        return records
    gathered = all_processes(None if failed else records, world)
    if any(g is None for g in gathered):
        bad = [str(r) for r, g in enumerate(gathered) if g is None]
        raise DCVAEError(f"torchrun process(es) {', '.join(bad)} failed (see their error); re-run to resume")
    return {k: v for part in gathered for k, v in part.items()}


def all_processes(value: Any, world: int) -> list[Any]:
    """``value`` from every process, in rank order (a collective; ``[value]`` outside torchrun)."""
    if world <= 1:
        return [value]
    import torch.distributed as dist

    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, value)
    return gathered


def shared_seed(seed: int | None, world: int) -> int | None:
    """Rank 0's seed in every process (a random seed is drawn once)."""
    if world <= 1:
        return seed
    import torch.distributed as dist

    box = [seed]
    dist.broadcast_object_list(box, src=0)
    return box[0]
