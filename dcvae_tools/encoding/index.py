"""The sharded latents folder's index (``index.json``) and shard headers, read without torch.

What a command needs to tell a latents folder from an image folder, count its rows or name its sources lives here,
so the command line can check its arguments before it loads torch; :mod:`.shards` reads the latents themselves.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DCVAEError, LatentError
from ..io_utils import safetensors_header

FORMAT = "dcvae-latents-shards"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
DEFAULT_SHARD_SIZE = 4096


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-00000.safetensors``."""
    return f"shard-{index:05d}.safetensors"


def load_index_file(out_dir: Path, fix: str = "give another output folder") -> dict[str, Any] | None:
    """The folder's parsed index, or None without one; ``fix`` ends the error for a file that is not an index."""
    path = out_dir / INDEX_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DCVAEError(f"{path} is not readable JSON ({err}); delete the folder to start over") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DCVAEError(f"{path} is not a dcvae latents index; {fix}")
    return data


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on a header


def shard_header(path: Path) -> tuple[dict[str, str], list[int]] | None:
    """The metadata and ``latents`` shape of a shard, or None when it is not a whole, readable safetensors file.

    The header is read by :func:`~dcvae_tools.io_utils.safetensors_header` (safetensors' reader imports torch);
    the checks are the ones that matter here: the JSON parses, ``latents`` is a float tensor whose bytes
    match its shape, and the tensors' data ends exactly where the file does (a truncated shard is not whole).
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            length = int.from_bytes(head, "little")
            if length > _MAX_HEADER_BYTES:
                return None
            header = safetensors_header(head + f.read(length), path, "", limit=_MAX_HEADER_BYTES)
    except (OSError, DCVAEError):
        return None
    metadata = header.pop("__metadata__", None) or {}
    entry = header.get("latents")
    try:
        shape = [int(n) for n in entry["shape"]]
        start, end = (int(n) for n in entry["data_offsets"])
        data_end = max(int(t["data_offsets"][1]) for t in header.values())
        itemsize = _DTYPE_BYTES[entry["dtype"]]
    except (TypeError, KeyError, ValueError, IndexError):
        return None
    whole = data_end == size - 8 - length and end - start == math.prod(shape) * itemsize and min(shape, default=0) >= 0
    if not whole or not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return None
    return dict(metadata), shape


def tensor_names(names: Sequence[str], shown: int = 3) -> str:
    """The first ``shown`` of a file's tensor names for a message (``"a, b, c and 50 more"``)."""
    if not names:
        return "no tensors"
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {rest} more" if rest > 0 else "")


def is_sharded(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder of latents shards (it holds an ``index.json``)."""
    return Path(path).is_dir() and (Path(path) / INDEX_NAME).is_file()


def is_latents_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder whose ``index.json`` is a dcvae latents index (an image folder may hold some
    other ``index.json``)."""
    try:
        return is_sharded(path) and load_index_file(Path(path)) is not None
    except DCVAEError:
        return False


def read_index(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The index of a finished sharded latents folder (LatentError if it is missing or unfinished)."""
    path = Path(folder)
    try:
        index = load_index_file(path, fix="pass a folder written by `dcvae encode IMAGES -o DIR`")
    except DCVAEError as err:
        raise LatentError(str(err)) from None
    if index is None:
        raise LatentError(f"{path}: no {INDEX_NAME}; write a sharded latents folder with `dcvae encode IMAGES -o DIR`")
    if index.get("format_version") != FORMAT_VERSION:
        raise LatentError(
            f"{path}: index format version {index.get('format_version')} is not supported (this dcvae-tools reads "
            f"version {FORMAT_VERSION}); upgrade dcvae-tools, or encode the images again"
        )
    if not index.get("complete"):
        raise LatentError(f"{path} is unfinished ({index.get('total_rows', 0)} rows so far); run its encode again")
    return index


def source_files(folder: str | os.PathLike[str]) -> list[str]:
    """The source file of every row of a sharded folder, read from the shards' headers only."""
    path = Path(folder)
    files: list[str] = []
    for entry in read_index(path)["shards"]:
        header = shard_header(path / entry["file"])
        if header is None:
            raise LatentError(f"{path / entry['file']} is not a readable latents shard; encode the folder again")
        files.extend(str(f) for f in json.loads(header[0].get("files", "[]")))
    return files
