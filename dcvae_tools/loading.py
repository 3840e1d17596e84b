"""``load_model``: the one function most users need."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .arguments import check_device
from .hub import resolve
from .model import DCVAE
from .release import load_release


def load_model(
    name_or_path: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
    allow_local: bool = True,
) -> DCVAE:
    """Load a DC-VAE checkpoint, verified, in eval mode.

    ``name_or_path`` is resolved in this order: an argument written as a path (``./x``, ``/x``, ``~/x``,
    ``x/``, or a ``Path`` object) is that local folder; a released model name from ``weights_manifest.json``
    is always the release (the bundled copy if this installation has it, else exactly the manifest's Hub
    revision), each file checked against its sha256, even if a folder of that name exists; any other existing
    folder is loaded as it is; any other ``org/name`` is a Hub repo in the release format, each file checked
    against the Hub's hash. ``None`` loads the default model.

    Args:
        revision: Hub branch, tag or commit (repo ids only; manifest names are pinned).
        device: where to put the model (``"cpu"``, ``"cuda"``, ...); default CPU.
        dtype: compute precision, ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``; batches that
            give non-finite values in half precision are recomputed in float32.
        cache_dir, local_files_only, token, endpoint: passed to huggingface_hub. ``local_files_only``
            (or ``HF_HUB_OFFLINE=1``) never touches the network.
        allow_local: ``False`` loads only a released name or a Hub repo id, never a file or folder of this
            machine, however the name is written (for a server that takes names from its visitors).

    Raises:
        ModelNotFoundError, OfflineError, ChecksumError, ConfigError (all DCVAEError) with the fix; a
        DCVAEError for a device this machine does not have.
    """
    if device is not None:
        check_device(device)
    if name_or_path is None:
        from .hub import default_model_name

        name_or_path = default_model_name()
    resolved = resolve(
        name_or_path,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        endpoint=endpoint,
        allow_local=allow_local,
    )
    model = load_release(
        resolved.folder, device=device, dtype=dtype, expected_sha256=resolved.expected_sha256
    )
    model.source = resolved  # where it came from, for `dcvae info`
    return model
