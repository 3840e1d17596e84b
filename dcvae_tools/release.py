"""The release format: one folder with config.json, model.safetensors, attributes.safetensors and README.md.

The same layout is used on disk, inside the wheel and on the Hub. Weights are safetensors (never pickle);
spectral norm is already folded into the stored encoder weights and the decoder is the EMA decoder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ModelConfig
from .errors import ChecksumError, ConfigError, DCVAEError, ModelNotFoundError
from .fast import resolve_dtype
from .io_utils import sha256_file
from .model import DCVAE, AttributeVector

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ATTRIBUTES_NAME = "attributes.safetensors"
CARD_NAME = "README.md"
RELEASE_FILES = (CONFIG_NAME, WEIGHTS_NAME, ATTRIBUTES_NAME, CARD_NAME)


# ------------------------------------------------------------------ saving


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """Strip DDP's ``.module`` and torch.compile's ``_orig_mod`` wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def state_dict_for_release(model: DCVAE) -> dict[str, torch.Tensor]:
    """Encoder and decoder tensors, contiguous float32 on the CPU, keyed ``encoder.*`` / ``decoder.*``."""
    model = _unwrap(model)
    tensors = {}
    for key, value in model.state_dict().items():
        if "parametrizations" in key:
            raise DCVAEError(
                f"{key}: spectral norm is not folded; call dcvae_tools.networks.layers.fold_spectral_norm first"
            )
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    return tensors


def save_attributes(attributes: Mapping[str, AttributeVector], path: Path) -> None:
    """Write named attribute directions with their counts and provenance in the safetensors metadata."""
    tensors = {name: a.direction.detach().float().cpu().contiguous() for name, a in attributes.items()}
    meta = {
        name: {
            "num_positive": a.num_positive,
            "num_negative": a.num_negative,
            "normalized": a.normalized,
            **({"metadata": a.metadata} if a.metadata else {}),
        }
        for name, a in attributes.items()
    }
    save_file(tensors, str(path), metadata={"format": "pt", "attributes": json.dumps(meta, sort_keys=True)})


def load_attributes(path: Path, latent_dim: int) -> dict[str, AttributeVector]:
    """Read attributes.safetensors, checking each direction has ``latent_dim`` entries."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("attributes", "{}"))
            out = {}
            for name in f.keys():  # noqa: SIM118 (safe_open is not a Mapping)
                direction = f.get_tensor(name)
                if tuple(direction.shape) != (latent_dim,):
                    raise ConfigError(
                        f"{path}: attribute {name!r} has shape {tuple(direction.shape)}, expected ({latent_dim},)"
                    )
                info = meta.get(name, {})
                out[name] = AttributeVector(
                    name=name,
                    direction=direction.float(),
                    num_positive=int(info.get("num_positive", 0)),
                    num_negative=int(info.get("num_negative", 0)),
                    normalized=bool(info.get("normalized", False)),
                    metadata=dict(info.get("metadata", {})),
                )
            return out
    except (SafetensorError, json.JSONDecodeError, OSError) as err:
        raise ConfigError(f"{path} is not a readable attributes.safetensors file ({err})") from err


def save_pretrained(model: DCVAE, folder: str | Path, model_card: str | None = None) -> Path:
    """Write ``model`` in the release format to ``folder`` (created if needed; files replaced).

    The files are first written to a temporary folder next to ``folder`` and then moved in, so a
    failure leaves no half-written checkpoint. Returns the folder.
    """
    from .card import render_model_card

    model = _unwrap(model)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.tmp-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / CONFIG_NAME).write_text(model.config.to_json(), encoding="utf-8")
        save_file(state_dict_for_release(model), str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        if model.attributes:
            save_attributes(model.attributes, tmp / ATTRIBUTES_NAME)
        card = model_card if model_card is not None else render_model_card(model.config, model.attributes)
        (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        folder.mkdir(exist_ok=True)
        stale = folder / ATTRIBUTES_NAME
        if stale.exists() and not model.attributes:
            stale.unlink()
        for item in tmp.iterdir():
            item.chmod(0o644)  # temporary files are created private; a checkpoint is meant to be shared
            shutil.move(str(item), str(folder / item.name))
    return folder


# ------------------------------------------------------------------ loading


def verify_files(folder: Path, expected: Mapping[str, str]) -> None:
    """Check each named file's sha256 against ``expected`` before anything reads it."""
    for name, want in expected.items():
        path = folder / name
        if not path.is_file():
            raise ModelNotFoundError(f"{path} is missing; the manifest lists it (sha256 {want})")
        got = sha256_file(path)
        if got != want:
            raise ChecksumError(
                f"{name} in {folder} failed verification: sha256 is {got}, the manifest expects {want}. "
                "The file is corrupt or was tampered with; it was not loaded. Delete it and download again."
            )


def load_release(
    folder: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    expected_sha256: Mapping[str, str] | None = None,
) -> DCVAE:
    """Load a release folder (config first, validated before any tensor exists; then weights, strictly)."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelNotFoundError(f"{folder} has no {CONFIG_NAME}: not a dcvae-tools checkpoint folder")
    if not (folder / WEIGHTS_NAME).is_file():
        raise ModelNotFoundError(f"{folder} has no {WEIGHTS_NAME}: the checkpoint is incomplete")
    if expected_sha256:
        verify_files(folder, expected_sha256)
    config = ModelConfig.from_file(folder / CONFIG_NAME)
    model = DCVAE(config)
    try:
        tensors = load_file(str(folder / WEIGHTS_NAME))
    except (SafetensorError, OSError) as err:
        raise ConfigError(f"{folder / WEIGHTS_NAME} is not a readable safetensors file ({err})") from err
    load_state_dict_strict(model, tensors, folder / WEIGHTS_NAME)
    if (folder / ATTRIBUTES_NAME).is_file():
        model.attributes = load_attributes(folder / ATTRIBUTES_NAME, config.latent_dim)
    model.eval()
    if device is not None:
        model.to(device)
    if dtype is not None:
        model.compute_dtype = resolve_dtype(dtype)
    return model


def load_state_dict_strict(model: DCVAE, tensors: Mapping[str, torch.Tensor], source: Any) -> None:
    """Load every tensor, refusing missing, unexpected or wrongly shaped ones with a message naming them."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if wrong:
        problems.append(f"wrong shapes ({'; '.join(wrong[:5])})")
    if problems:
        raise ConfigError(f"{source} does not match its config.json: " + ", ".join(problems))
    model.load_state_dict(dict(tensors), strict=True)


def push_to_hub(
    model: DCVAE,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload DC-VAE checkpoint",
    endpoint: str | None = None,
) -> str:
    """Save ``model`` in the release format and upload it to ``repo_id``; returns the commit id.

    Record that commit id and the files' sha256 in weights_manifest.json to make it a released model.
    """
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return info.oid
