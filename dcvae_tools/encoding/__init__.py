"""Dataset-scale encoding: any number of images -> a folder of latents shards, streamed and resumable.

- :mod:`~dcvae_tools.encoding.writer`: :func:`encode_files` / :func:`encode_folder` (DataLoader workers,
  batches, atomic shards, resume, torchrun);
- :mod:`~dcvae_tools.encoding.distributed`: each torchrun process's share and the collectives;
- :mod:`~dcvae_tools.encoding.index`: the on-disk format's index and shard headers, read without torch
  (:func:`read_index`, :func:`is_sharded`, :func:`source_files`);
- :mod:`~dcvae_tools.encoding.shards`: reading the latents (:func:`load_latents`, :func:`iter_shards`,
  :func:`read_row`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# Names load on first use: what reads an index (.index) needs no torch, so the command line can check a latents
# argument before it loads torch.
_EXPORTS = {
    "DEFAULT_SHARD_SIZE": ".index",
    "FORMAT": ".index",
    "FORMAT_VERSION": ".index",
    "INDEX_NAME": ".index",
    "is_sharded": ".index",
    "read_index": ".index",
    "shard_name": ".index",
    "source_files": ".index",
    "iter_shards": ".shards",
    "load_latents": ".shards",
    "read_row": ".shards",
    "distributed_device": ".distributed",
    "EncodeResult": ".writer",
    "encode_files": ".writer",
    "encode_folder": ".writer",
}

if TYPE_CHECKING:
    from .distributed import distributed_device
    from .index import (
        DEFAULT_SHARD_SIZE,
        FORMAT,
        FORMAT_VERSION,
        INDEX_NAME,
        is_sharded,
        read_index,
        shard_name,
        source_files,
    )
    from .shards import iter_shards, load_latents, read_row
    from .writer import EncodeResult, encode_files, encode_folder


# submodules the package imported eagerly before its names became lazy: ``package.files`` keeps working
_SUBMODULES = ("index", "shards", "distributed", "writer", "reading")


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "INDEX_NAME",
    "EncodeResult",
    "distributed_device",
    "encode_files",
    "encode_folder",
    "is_sharded",
    "iter_shards",
    "load_latents",
    "read_index",
    "read_row",
    "shard_name",
    "source_files",
]
