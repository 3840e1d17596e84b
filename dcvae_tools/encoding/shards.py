"""The sharded latents folder on disk: reading its latents back (its format and index: :mod:`.index`).

A folder holds ``shard-00000.safetensors``, ``shard-00001.safetensors``, ... (tensor ``latents`` [rows, D]
float32 with the metadata of a ``dcvae encode`` latents file, plus the shard's place and the run's settings)
and ``index.json`` (the model, the settings, every finished shard with its rows and sha256, the skipped files,
``complete``). :mod:`dcvae_tools.encoding.writer` writes it; :func:`load_latents` reads a latents file or such a
folder, and :func:`iter_shards` and :func:`read_row` read a folder piece by piece (:mod:`.index` reads its
index and headers without torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, LatentError
from ..release import safetensors_metadata
from .index import (  # re-exported: these lived here before the torch-free index module
    DEFAULT_SHARD_SIZE,
    FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    is_latents_folder,
    is_sharded,
    load_index_file,
    read_index,
    shard_header,
    shard_name,
    source_files,
    tensor_names,
)

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "INDEX_NAME",
    "is_latents_folder",
    "is_sharded",
    "iter_shards",
    "load_index_file",
    "load_latents",
    "read_index",
    "read_row",
    "shard_header",
    "shard_name",
    "source_files",
    "stable_safetensors_bytes",
    "tensor_names",
]


def stable_safetensors_bytes(latents: torch.Tensor, metadata: dict[str, str]) -> bytes:
    """safetensors bytes of ``{"latents": latents}`` with the header's keys sorted.

    safetensors writes the metadata in hash-map order, which changes from process to process; sorted, the
    same rows and metadata always give the same bytes (and sha256), whichever process wrote them (a sharded
    encoding's metadata includes its images' modification times: see dcvae_tools.encoding.writer).
    """
    from safetensors.torch import save

    data = save({"latents": latents.contiguous()}, metadata=metadata)
    size = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data stays 8-byte aligned, as safetensors writes it
    return len(header).to_bytes(8, "little") + header + data[8 + size :]


def _load_shard(folder: Path, entry: dict[str, Any], verify: bool) -> tuple[torch.Tensor, list[str]]:
    """One shard's latents and source files, its bytes checked against the index's sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = folder / entry["file"]
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LatentError(f"{path}: cannot read the shard ({err.strerror}); encode the folder again") from None
    if verify and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise LatentError(f"{path}: sha256 differs from {INDEX_NAME} (corrupt or changed); encode it again")
    try:
        latents = load(data)["latents"]
        files = json.loads(safetensors_metadata(data, path, fix="encode the folder again").get("files", "[]"))
        if not isinstance(files, list):
            raise ValueError(f"its 'files' metadata is a {type(files).__name__}, not a list")
    except (ConfigError, SafetensorError, KeyError, ValueError, TypeError) as err:
        raise LatentError(f"{path} is not a readable latents shard ({err})") from None
    return latents, [str(f) for f in files]


def iter_shards(folder: str | os.PathLike[str], *, verify: bool = True) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Yield (latents [rows, D], source files) shard by shard, in row order (empty shards are passed over)."""
    path = Path(folder)
    for entry in read_index(path)["shards"]:
        if entry["rows"]:
            yield _load_shard(path, entry, verify)


def read_row(folder: str | os.PathLike[str], row: int) -> torch.Tensor:
    """Latent ``row`` [D] of a sharded folder (only its shard is read)."""
    path = Path(folder)
    index = read_index(path)
    if not 0 <= row < index["total_rows"]:
        total = index["total_rows"]
        valid = f"0-{total - 1}" if total else "it holds none"
        raise LatentError(f"{path} holds {total} latents: row {row} is out of range ({valid})")
    for entry in index["shards"]:
        if row < entry["rows"]:
            return _load_shard(path, entry, verify=True)[0][row]
        row -= entry["rows"]
    raise LatentError(f"{path}: {INDEX_NAME} does not add up; encode the folder again")  # pragma: no cover


def load_latents(path: str | os.PathLike[str]) -> tuple[torch.Tensor, dict[str, str]]:
    """Tensor ``latents`` [N, D] and the metadata of a latents ``.safetensors`` file or a sharded folder.

    A folder's shards are checked against their sha256 and joined in order; its metadata holds ``files``
    (JSON, every row's source), ``model``, ``weights_sha256``, ``working_dir`` (where relative sources start
    from) and ``skipped`` as a single file's does.
    """
    from safetensors import safe_open

    source = Path(path)
    if source.is_dir() and not is_sharded(source):
        raise LatentError(
            f"{source} is a folder without {INDEX_NAME}: not a sharded latents folder (an unfinished or foreign "
            "one); pass a latents .safetensors file or a folder written by `dcvae encode IMAGES -o DIR`"
        )
    if not is_sharded(source):
        with safe_open(str(source), framework="pt") as f:
            names = list(f.keys())
            if "latents" not in names:
                raise LatentError(
                    f"{source} holds no tensor named 'latents' (it has {tensor_names(names)}); "
                    "write latents with `dcvae encode`"
                )
            return f.get_tensor("latents"), dict(f.metadata() or {})
    index = read_index(source)
    parts, files = [], []
    for latents, names in iter_shards(source):
        parts.append(latents)
        files.extend(names)
    latents = torch.cat(parts) if parts else torch.empty(0, int(index["latent_dim"]))
    metadata = {
        "files": json.dumps(files),
        "model": str(index["model"]["name"]),
        "skipped": json.dumps(index["skipped"]),
    }
    recorded = {"weights_sha256": index["model"].get("weights_sha256"), "working_dir": index.get("working_dir")}
    for key, value in recorded.items():
        if isinstance(value, str) and value:  # absent from folders written before these were recorded
            metadata[key] = value
    return latents, metadata
