"""A training checkpoint as ``training_state.safetensors``: the release's optional, pickle-free training state.

``checkpoint.pt`` in a run folder is a nested dict of tensors, numbers and strings (networks, optimizer
moments, queues, loader position, random states). This module writes the same dict to one safetensors file:
every tensor becomes an entry named by its path in the dict, and the rest of the structure (dict keys with
their types, lists, numbers, strings) goes into the file's metadata as JSON. Reading it back gives a dict
equal to the original, tensor for tensor, without unpickling anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from dcvae_tools.io_utils import atomic_write
from dcvae_tools.manifest import TRAINING_STATE_NAME  # noqa: F401 (the file name belongs with its format)

FORMAT = "dcvae-training-state"
VERSION = "1"


class TrainingDivergedError(RuntimeError):
    """The networks' weights hold NaN or infinite values: the run stopped without overwriting its checkpoint."""


class TrainingStateError(ValueError):
    """The file is not a training state this version can read; the message names the file."""


def _flatten(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        if path in tensors:  # e.g. keys 0 and "0", or a key with "/", in one dict
            raise TypeError(f"{path}: two entries of the state map to the same tensor name")
        tensors[path] = obj.detach().cpu().contiguous()
        return {"t": path}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise TypeError(f"{path or 'state'}: keys must be str or int, got {key!r}")
            items.append([key, _flatten(value, f"{path}/{key}" if path else str(key), tensors)])
        return {"d": items}
    if isinstance(obj, list | tuple):
        return {"l": [_flatten(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)], "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"v": obj}
    raise TypeError(f"{path or 'state'}: cannot store a {type(obj).__name__} in a training state")


def _unflatten(node: Any, tensors: dict[str, torch.Tensor], source: Path) -> Any:
    if not isinstance(node, dict) or len(set(node) - {"tuple"}) != 1:
        raise TrainingStateError(f"{source}: malformed structure entry {str(node)[:80]!r}")
    if "t" in node:
        try:
            return tensors[node["t"]]
        except KeyError:
            raise TrainingStateError(f"{source}: the structure names a missing tensor {node['t']!r}") from None
    if "d" in node:
        return {key: _unflatten(value, tensors, source) for key, value in node["d"]}
    if "l" in node:
        items = [_unflatten(v, tensors, source) for v in node["l"]]
        return tuple(items) if node.get("tuple") else items
    return node["v"]


def save_training_state(state: dict[str, Any], path: str | Path) -> Path:
    """Write a training checkpoint dict to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    structure = _flatten(state, "", tensors)
    metadata = {"format": FORMAT, "version": VERSION, "structure": json.dumps(structure)}
    # atomic_write: the file gets the usual permissions of its siblings, not a temporary file's private ones
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_training_state(path: str | Path, expected_hash: str | None = None) -> dict[str, Any]:
    """Read a file written by :func:`save_training_state` (tensors on the CPU).

    The file is read once; with ``expected_hash`` (sha256, or a git blob sha1 for 40 hex digits) exactly those
    bytes are checked before they are parsed.
    """
    from safetensors.torch import load as load_safetensors_bytes

    from dcvae_tools.release import read_verified, safetensors_metadata

    path = Path(path)
    data = read_verified(path, expected_hash)
    try:
        metadata = safetensors_metadata(data, path)
        tensors = load_safetensors_bytes(data)
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise TrainingStateError(f"{path}: cannot read as safetensors ({err})") from err
    if metadata.get("format") != FORMAT:
        raise TrainingStateError(f"{path}: not a dcvae-tools training state (format {metadata.get('format')!r})")
    if metadata.get("version") != VERSION:
        raise TrainingStateError(
            f"{path}: training state version {metadata.get('version')!r}; this version reads {VERSION!r}"
        )
    try:
        structure = json.loads(metadata["structure"])
    except (KeyError, json.JSONDecodeError) as err:
        raise TrainingStateError(f"{path}: the structure metadata is missing or not JSON") from err
    state = _unflatten(structure, tensors, path)
    if not isinstance(state, dict):
        raise TrainingStateError(f"{path}: the stored state is not a dict")
    return state
