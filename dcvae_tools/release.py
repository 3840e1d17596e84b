"""The release format: one folder with config.json, model.safetensors, attributes.safetensors (optional),
latent_stats.safetensors (optional), latent_prior.safetensors (optional) and README.md.

The same layout is used on disk, inside the wheel and on the Hub. Weights are safetensors (never pickle);
spectral norm is already folded into the stored encoder weights and the decoder is the EMA decoder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file

from .config import ModelConfig
from .editing.stats import LATENT_STATS_NAME, latent_stats_from_bytes, max_latent_stats_bytes, save_latent_stats
from .errors import (
    ChecksumError,
    ConfigError,
    DCVAEError,
    ModelNotFoundError,
    NonFiniteWeightsError,
    outside_package_stacklevel,
)
from .fast import resolve_dtype
from .io_utils import (
    atomic_write_bytes,
    check_size,
    git_blob_sha1,
    missing_folders,
    remove_empty_folders,
    safetensors_bytes,
    safetensors_header,
)
from .model import DCVAE, AttributeVector
from .prior import LATENT_PRIOR_NAME, latent_prior_from_bytes, max_latent_prior_bytes, save_latent_prior

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ATTRIBUTES_NAME = "attributes.safetensors"
CARD_NAME = "README.md"
RELEASE_FILES = (CONFIG_NAME, WEIGHTS_NAME, ATTRIBUTES_NAME, LATENT_STATS_NAME, LATENT_PRIOR_NAME, CARD_NAME)
OPTIONAL_FILES = (ATTRIBUTES_NAME, LATENT_STATS_NAME, LATENT_PRIOR_NAME, CARD_NAME)
"""Release files a folder may lack."""


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


def save_attributes(
    attributes: Mapping[str, AttributeVector] | Iterable[AttributeVector], path: str | Path
) -> None:
    """Write attribute directions to an attributes ``.safetensors`` file (atomically), with their counts and
    provenance in its metadata: the format of a release's attributes.safetensors and of ``dcvae attribute -o``,
    so ``dcvae edit -a FILE:NAME`` and :func:`load_attributes` read it back.

    ``attributes``: a mapping {name: AttributeVector} (``model.attributes``) or AttributeVectors, stored under
    their own names.
    """
    usage = "save_attributes takes a mapping {name: AttributeVector} or AttributeVectors"
    if isinstance(attributes, AttributeVector):
        attributes = [attributes]
    if not isinstance(attributes, Mapping):
        vectors = list(attributes)
        if not all(isinstance(a, AttributeVector) for a in vectors):
            raise DCVAEError(usage)
        names = [a.name for a in vectors]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DCVAEError(f"two attributes are named {repeated[0]!r}; give each a name of its own")
        attributes = dict(zip(names, vectors, strict=True))
    for name, vector in attributes.items():
        if not isinstance(vector, AttributeVector):
            raise DCVAEError(f"{usage}; {name!r} is a {type(vector).__name__}")
        direction = vector.direction
        if not isinstance(direction, torch.Tensor) or direction.ndim != 1 or not direction.is_floating_point():
            shown = tuple(direction.shape) if isinstance(direction, torch.Tensor) else type(direction).__name__
            raise DCVAEError(f"attribute {name!r}: its direction must be a float tensor [D], got {shown}")
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
    metadata = {"format": "pt", "attributes": json.dumps(meta, sort_keys=True)}
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata))


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8")
"""How PNG, JPEG and GIF files begin. Read as a safetensors header length these bytes give over 900 MB, which no
safetensors file has, so no such file is mistaken for an image (BMP's "BM" could be a real header length)."""


def load_attributes(path: str | Path, latent_dim: int | None = None) -> dict[str, AttributeVector]:
    """Read an attributes ``.safetensors`` file (a release's, ``dcvae attribute -o``'s or
    :func:`save_attributes`'s): {name: AttributeVector}. With ``latent_dim`` (``model.latent_dim``), each
    direction must have that many entries. Use them as ``model.edit(z, {vectors["sleeves"]: 1.5})``."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
    return attributes_from_bytes(data, latent_dim, Path(path))


def attributes_from_bytes(data: bytes, latent_dim: int | None, source: Path) -> dict[str, AttributeVector]:
    """Parse the bytes of an attributes.safetensors file (see :func:`load_attributes`)."""
    make = "make directions with `dcvae attribute -p POSITIVE -n NEGATIVE --name NAME -o attrs.safetensors`"
    if data.startswith(_IMAGE_MAGIC):
        raise ConfigError(f"{source} is an image, not an attributes file; {make}")
    try:
        meta = json.loads(safetensors_metadata(data, source).get("attributes", "{}"))
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, json.JSONDecodeError, TypeError) as err:  # TypeError: non-string 'attributes'
        raise ConfigError(f"{source} is not a readable attributes.safetensors file ({err})") from err
    latents = tensors.get("latents")
    if latents is not None and latents.ndim == 2:
        raise ConfigError(f"{source} is a latents file ({latents.shape[0]} rows, as `dcvae encode` writes), not an "
                          f"attributes file; {make}")
    if not isinstance(meta, dict):
        raise ConfigError(f"{source}: its 'attributes' metadata is not a JSON object")
    out = {}
    for name, direction in sorted(tensors.items()):  # the file's own order differs from one process to the next
        if direction.ndim != 1 or (latent_dim is not None and tuple(direction.shape) != (latent_dim,)):
            expected = f"({latent_dim},)" if latent_dim is not None else "one dimension"
            raise ConfigError(f"{source}: attribute {name!r} has shape {tuple(direction.shape)}, expected {expected}")
        if not direction.is_floating_point():
            raise ConfigError(f"{source}: attribute {name!r} has dtype {direction.dtype}; expected floating point")
        direction = direction.float()
        if not bool(direction.isfinite().all()):
            raise ConfigError(f"{source}: attribute {name!r} contains NaN or infinite values")
        if not bool(direction.any()):  # older versions wrote these; skip it so the file's others stay usable
            warnings.warn(
                f"{source}: attribute {name!r} has length 0 and would edit nothing, so it is left out; remake it "
                "with `dcvae attribute` from positives that show it and negatives that lack it",
                stacklevel=outside_package_stacklevel(),
            )
            continue
        info = meta.get(name, {})
        counts = [info.get(key, 0) if isinstance(info, dict) else None for key in ("num_positive", "num_negative")]
        extra = info.get("metadata", {}) if isinstance(info, dict) else None
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts) or not isinstance(
            extra, dict
        ):
            raise ConfigError(
                f"{source}: the metadata of attribute {name!r} is malformed (expected an object with integer "
                "num_positive/num_negative and an object 'metadata')"
            )
        out[name] = AttributeVector(
            name=name,
            direction=direction,
            num_positive=int(counts[0]),
            num_negative=int(counts[1]),
            normalized=bool(info.get("normalized", False)),
            metadata=dict(extra),
        )
    return out


def save_pretrained(model: DCVAE, folder: str | Path, model_card: str | None = None) -> Path:
    """Write ``model`` in the release format to ``folder`` (created, or replaced as a whole); returns it.

    Everything is written into a temporary folder beside ``folder``, which is then renamed into place: a
    failure at any point leaves ``folder`` as it was (absent, or the previous checkpoint), and no temporary
    folder or newly made parent folder behind. A symlink to a folder has the folder it points to replaced (the
    link stays). Where a folder cannot be renamed (the working directory or a folder holding it, a mount point)
    the finished files are moved into it one by one instead. An existing ``folder`` may hold only release files
    (and a training state, which is kept); anything else there is refused rather than deleted.
    """
    from .card import render_model_card
    from .manifest import TRAINING_STATE_NAME

    model = _unwrap(model)
    folder = Path(os.path.abspath(folder))
    keep = (TRAINING_STATE_NAME,)
    if folder.exists():
        if not folder.is_dir():
            raise DCVAEError(f"{folder} exists and is not a folder; choose another output folder")
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in (*RELEASE_FILES, *keep))
        if foreign:
            raise DCVAEError(
                f"{folder} holds files that are not part of a checkpoint ({', '.join(foreign[:5])}); save into a "
                "new or empty folder (an existing checkpoint folder is replaced as a whole)"
            )
    given = folder
    if folder.is_symlink() and folder.exists():
        folder = folder.resolve()  # replace the folder it points to as a whole; the link keeps pointing there
    in_place = folder.exists() and (os.path.ismount(folder) or _holds_cwd(folder))
    staging_parent = folder if in_place else folder.parent
    created = missing_folders(staging_parent)
    staging_parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=staging_parent, prefix=f".{folder.name}.tmp-"))
    except BaseException:
        remove_empty_folders(created)
        raise
    old: Path | None = None
    saved = False
    try:
        (tmp / CONFIG_NAME).write_text(model.config.to_json(), encoding="utf-8")
        save_file(state_dict_for_release(model), str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        if model.attributes:
            save_attributes(model.attributes, tmp / ATTRIBUTES_NAME)
        if getattr(model, "latent_stats", None) is not None:
            save_latent_stats(model.latent_stats, tmp / LATENT_STATS_NAME)
        if getattr(model, "latent_prior", None) is not None:
            save_latent_prior(model.latent_prior, tmp / LATENT_PRIOR_NAME)
        card = model_card if model_card is not None else render_model_card(
            model.config, model.attributes, latent_prior=getattr(model, "latent_prior", None))
        (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        tmp.chmod(0o755)  # temporary folders are created private; a checkpoint is meant to be shared
        for item in tmp.iterdir():
            item.chmod(0o644)
        if in_place:
            _move_into(tmp, folder)
            saved = True
            return given
        for name in keep:
            if (folder / name).is_file():
                try:
                    os.link(folder / name, tmp / name)  # same file system: a hard link, no copy
                except OSError:
                    shutil.copy2(folder / name, tmp / name)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
        os.replace(tmp, folder)
        saved = True
    except BaseException:
        if old is not None and not folder.exists():
            os.replace(old, folder)  # put the previous checkpoint back
            old = None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if not saved:
            remove_empty_folders(created)  # the parents this call made for a checkpoint it did not write
    return given


def _holds_cwd(folder: Path) -> bool:
    """Whether the working directory is ``folder`` or inside it (renaming it would pull it from under us)."""
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    target = folder.resolve()
    return cwd == target or target in cwd.parents


def _move_into(staged: Path, folder: Path) -> None:
    """Move finished release files into ``folder`` (one rename each) and drop release files not rewritten."""
    written = {item.name for item in staged.iterdir()}
    for item in sorted(staged.iterdir()):
        os.replace(item, folder / item.name)
    for name in RELEASE_FILES:
        if name not in written:
            (folder / name).unlink(missing_ok=True)


# ------------------------------------------------------------------ loading


def verify_files(folder: Path, expected: Mapping[str, str]) -> None:
    """Check each named file's hash (sha256, or git blob sha1 for 40 hex digits) against ``expected``."""
    for name, want in expected.items():
        read_verified(folder / name, want)


def read_verified(path: Path, expected: str | None) -> bytes:
    """Read ``path`` once and, when a hash is expected, check exactly those bytes: what is hashed is what is loaded."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelNotFoundError(
            f"{path} is missing" + (f"; the manifest lists it (hash {expected})" if expected else "")
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
    if expected is not None:
        got = hashlib.sha256(data).hexdigest() if len(expected) == 64 else git_blob_sha1(data)
        if got != expected:
            raise ChecksumError(
                f"{path.name} in {path.parent} failed verification: its hash is {got}, expected {expected}. "
                "The file is corrupt or was tampered with; it was not loaded. If it came with the package, "
                "reinstall dcvae-tools; if it was downloaded, delete it so it is downloaded again."
            )
    return data


def safetensors_metadata(
    data: bytes, source: Path, fix: str = "replace it with an intact copy"
) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file held in memory ({} when it has none), or ConfigError naming
    ``source`` and ``fix`` when its header cannot be read (see :func:`dcvae_tools.io_utils.safetensors_header`)."""
    header = safetensors_header(data, source, fix, limit=len(data))
    meta = header.get("__metadata__", {})
    return meta if isinstance(meta, dict) else {}


def load_release(
    folder: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    expected_sha256: Mapping[str, str] | None = None,
    read_derived: bool = True,
) -> DCVAE:
    """Load a release folder (config first, validated before any tensor exists; then weights, strictly).

    The weights' names, shapes and kinds are checked against the networks the config describes (built as
    shapes only, on the meta device) before the model is allocated, so a config asking for absurd sizes
    costs nothing; non-finite weights are refused.

    With ``expected_sha256`` (file name -> sha256, or git blob sha1) every file is read once and exactly the
    bytes that are loaded are checked; files it lists that are not loaded (the model card) are checked too.
    The config and weights must be listed, and an optional file it does not list is not read at all, even
    when the folder has one: nothing unverified is loaded.
    ``read_derived=False`` leaves the files derived from the training latents, latent_stats.safetensors and
    latent_prior.safetensors, unread (to recompute them, whatever their state).
    """
    folder = Path(folder)
    verified = expected_sha256 is not None
    expected = dict(expected_sha256 or {})
    if verified and (unlisted := [name for name in (CONFIG_NAME, WEIGHTS_NAME) if name not in expected]):
        raise ChecksumError(
            f"{folder}: no expected hash is given for {' or '.join(unlisted)}, so it cannot be verified; "
            "the manifest entry of this model is incomplete"
        )
    if not (folder / CONFIG_NAME).exists():
        raise ModelNotFoundError(f"{folder} has no {CONFIG_NAME}: not a dcvae-tools checkpoint folder")
    if not (folder / WEIGHTS_NAME).exists():
        raise ModelNotFoundError(f"{folder} has no {WEIGHTS_NAME}: the checkpoint is incomplete")
    for name in set(expected) - {CONFIG_NAME, WEIGHTS_NAME, ATTRIBUTES_NAME, LATENT_STATS_NAME, LATENT_PRIOR_NAME}:
        read_verified(folder / name, expected[name])
    check_config_size(folder / CONFIG_NAME)
    config_bytes = read_verified(folder / CONFIG_NAME, expected.get(CONFIG_NAME))
    config = ModelConfig.from_bytes(config_bytes, source=str(folder / CONFIG_NAME))
    weights = read_verified(folder / WEIGHTS_NAME, expected.get(WEIGHTS_NAME))
    try:
        tensors = load_safetensors_bytes(weights)
    except (SafetensorError, OSError) as err:
        raise ConfigError(f"{folder / WEIGHTS_NAME} is not a readable safetensors file ({err})") from err
    # the networks the config describes, as shapes only: a config asking for absurd sizes is refused here,
    # against the tensors the file really holds, before a single parameter is allocated
    _check_tensors(_skeleton_state(config), tensors, folder / WEIGHTS_NAME)
    model = DCVAE(config)
    model.load_state_dict(dict(tensors), strict=True)  # names, shapes, kinds and values checked above

    def present(name: str) -> bool:  # an optional file is read when listed; unlisted ones only unverified
        return name in expected if verified else (folder / name).exists()

    if present(ATTRIBUTES_NAME):
        data = read_verified(folder / ATTRIBUTES_NAME, expected.get(ATTRIBUTES_NAME))
        model.attributes = attributes_from_bytes(data, config.latent_dim, folder / ATTRIBUTES_NAME)
    # the derived files: each refused by size before it is read, then checked against the manifest and parsed
    derived = ((LATENT_STATS_NAME, max_latent_stats_bytes, latent_stats_from_bytes, "latent_stats", "recompute"),
               (LATENT_PRIOR_NAME, max_latent_prior_bytes, latent_prior_from_bytes, "latent_prior", "refit"))
    for name, max_bytes, parse, attribute, verb in derived if read_derived else ():
        if not present(name):
            continue
        check_size(folder / name, max_bytes(config.latent_dim), f"a {name} for {config.latent_dim}-dimensional latents",
                   f"{verb} it with `dcvae-train latent-stats` (or delete it: the file is optional)")
        data = read_verified(folder / name, expected.get(name))
        setattr(model, attribute, parse(data, config.latent_dim, folder / name))
    model.eval()
    if device is not None:
        model.to(device)
    if dtype is not None:
        model.compute_dtype = resolve_dtype(dtype)
    return model


MAX_CONFIG_BYTES = 1 << 20
"""config.json files larger than this (1 MiB; a real one is about 1 kB) are refused before they are read."""


def check_config_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it reports the problem
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is {size} bytes; a config.json is at most {MAX_CONFIG_BYTES} bytes")


def _skeleton_state(config: ModelConfig) -> dict[str, torch.Tensor]:
    """The state dict of the networks ``config`` describes, on the meta device (shapes, no memory)."""
    return _skeleton_of(config.to_json())


@functools.lru_cache(maxsize=8)
def _skeleton_of(config_json: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"), _NoRandomInit():
        return DCVAE(ModelConfig.from_dict(json.loads(config_json))).state_dict()


class _NoRandomInit(torch.overrides.TorchFunctionMode):
    """Skips the random initialisation of parameters while a skeleton is built on the meta device.

    It would not allocate anything there either, but torch implements some of those ops for meta tensors in
    Python behind an import of torch._dynamo, which would add more than a second to every first load.
    """

    _SKIPPED = frozenset({"normal_", "uniform_", "trunc_normal_", "bernoulli_", "random_", "exponential_"})

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in self._SKIPPED:
            return args[0] if args else next(iter(kwargs.values()))
        return func(*args, **kwargs)


def load_state_dict_strict(model: DCVAE, tensors: Mapping[str, torch.Tensor], source: Any) -> None:
    """Load every tensor, refusing missing, unexpected, wrongly shaped, non-float (where the model holds
    floats) or non-finite ones with a message naming them."""
    _check_tensors(model.state_dict(), tensors, source)
    model.load_state_dict(dict(tensors), strict=True)


def _check_tensors(expected: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor], source: Any) -> None:
    """Raise ConfigError unless ``tensors`` match ``expected`` in names, shapes and kinds, and are finite."""
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
    kinds = [
        f"{k} ({tensors[k].dtype})"
        for k, v in expected.items()
        if v.is_floating_point() and not tensors[k].is_floating_point()
    ]
    if kinds:
        raise ConfigError(f"{source}: tensors are not floating point where the model needs floats: {', '.join(kinds)}")
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if broken:
        raise NonFiniteWeightsError(
            f"{source}: tensors contain NaN or infinite values: {', '.join(sorted(broken)[:5])}"
        )


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

    The repo is created if needed and the commit holds exactly this release (see
    :func:`dcvae_tools.publish.upload_release`). To make it a released model, use
    :func:`dcvae_tools.publish.publish` (or ``dcvae-train release --push``), which also downloads the commit,
    checks every file and pins it in weights_manifest.json.
    """
    from .publish import upload_release

    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        return upload_release(
            tmp, repo_id, token=token, endpoint=endpoint, private=private, commit_message=commit_message
        )
