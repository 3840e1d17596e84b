"""Dataset-scale encoding: any number of images -> a folder of latents shards, streamed and resumable.

- :mod:`~dcvae_tools.encoding.writer`: :func:`encode_files` / :func:`encode_folder` (DataLoader workers,
  batches, atomic shards, resume, torchrun);
- :mod:`~dcvae_tools.encoding.distributed`: each torchrun process's share and the collectives;
- :mod:`~dcvae_tools.encoding.shards`: the on-disk format and its readers (:func:`load_latents`,
  :func:`iter_shards`, :func:`read_row`, :func:`source_files`, :func:`read_index`).
"""

from .distributed import distributed_device
from .shards import (
    DEFAULT_SHARD_SIZE,
    FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    is_sharded,
    iter_shards,
    load_latents,
    read_index,
    read_row,
    shard_name,
    source_files,
)
from .writer import EncodeResult, encode_files, encode_folder

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
