"""weights_manifest.json: every released checkpoint, where it lives, and the sha256 of each file."""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConfigError, one_line

TRAINING_STATE_NAME = "training_state.safetensors"
"""A release's optional training state (discriminator, optimizer moments, queues, random state), listed in
the manifest with its sha256 like every other file but downloaded only to continue training."""

_PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_WEIGHTS_DIR = _PACKAGE_DIR / "weights"
"""Where checkpoints bundled in the wheel live, one folder per manifest name."""

GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")
"""A git object hash: a commit (a pinned Hub revision) or a blob (a small file in the Hub cache)."""
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
"""A sha256 digest in lowercase hex (also the name of an LFS blob in the Hub cache)."""
REPO_ID = re.compile(
    r"^(?!.*(?:--|\.\.))"  # the Hub refuses '--' and '..' anywhere
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?/"
    r"(?=[^/]{1,96}\Z)[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?(?<!\.git)\Z"
)
"""A Hub repo id, ``org/name``, as the Hub accepts it: letters, digits, ``.``, ``_``, ``-``, starting with a letter or
digit and not ending with ``-`` or ``.``, no ``--`` or ``..``, a name of at most 96 characters not ending in ``.git``
(anything else is refused by huggingface_hub with its own exception)."""
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""A model or file name that is one plain path component (no separators, no leading dot, so no ``..``)."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a released checkpoint."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ManifestEntry:
    """One released checkpoint.

    ``revision`` is the exact Hub commit the sha256s describe; ``None`` until the checkpoint is
    pushed, in which case only the bundled copy can be loaded.
    """

    name: str
    repo_id: str
    revision: str | None
    files: dict[str, FileEntry]
    dataset: str
    resolution: int
    channels: int
    latent_dim: int
    architecture: str
    preset: str
    bundled: bool
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def bundled_dir(self) -> Path:
        return BUNDLED_WEIGHTS_DIR / self.name


@dataclass(frozen=True)
class Manifest:
    default_model: str | None
    models: dict[str, ManifestEntry]

    def get(self, name: str) -> ManifestEntry | None:
        return self.models.get(name)


MANIFEST_ENV = "DCVAE_MANIFEST"
"""Environment variable naming another manifest file to use instead of the shipped one: the trust root of
released names moves to that file, so it is meant for testing a release before it ships (and for the tests).
Every use is announced with a warning naming the file. ``load_manifest`` reads once: call
``load_manifest.cache_clear()`` after changing it."""


def manifest_path() -> Path:
    """``$DCVAE_MANIFEST`` if set (with a warning: it replaces the trust root of released names), else the
    manifest inside the installed wheel, else the one at the source checkout's root."""
    override = os.environ.get(MANIFEST_ENV)
    if override:
        path = Path(override).expanduser()
        warnings.warn(
            f"{MANIFEST_ENV} is set: released model names resolve and verify through {path}, not the manifest "
            "shipped with dcvae-tools; unset it to use the shipped one",
            UserWarning,
            stacklevel=2,
        )
        return path
    inside = _PACKAGE_DIR / "weights_manifest.json"
    return inside if inside.is_file() else _PACKAGE_DIR.parent / "weights_manifest.json"


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):  # bool("false") is True
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def parse_manifest(data: Any, source: str = "weights_manifest.json") -> Manifest:
    """Validate and parse the manifest's JSON structure."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"{source}: expected an object with a 'models' object")
    models: dict[str, ManifestEntry] = {}
    for name, raw in data["models"].items():
        where = f"{source}: models.{name}"
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            raise ConfigError(f"{source}: model name {name!r} must be one plain name (letters, digits, . _ -)")
        try:
            files = {}
            for fname, f in raw["files"].items():
                if not SAFE_NAME.match(fname):
                    raise ConfigError(f"{where}: file name {fname!r} must be one plain name, not a path")
                if not SHA256_HEX.match(f["sha256"]):
                    raise ConfigError(f"{where}.files.{fname}.sha256 is not 64 lowercase hex digits")
                files[fname] = FileEntry(sha256=f["sha256"], size=int(f["size"]))
            if not isinstance(raw["repo_id"], str) or not REPO_ID.match(raw["repo_id"]):
                raise ConfigError(f"{where}.repo_id must be a Hub repo id 'org/name', got {raw['repo_id']!r}")
            revision = raw.get("revision")
            if revision is not None and not GIT_SHA1.match(revision):
                raise ConfigError(f"{where}.revision must be a 40-hex commit id or null, got {revision!r}")
            models[name] = ManifestEntry(
                name=name,
                repo_id=raw["repo_id"],
                revision=revision,
                files=files,
                dataset=raw["dataset"],
                resolution=int(raw["resolution"]),
                channels=int(raw["channels"]),
                latent_dim=int(raw["latent_dim"]),
                architecture=raw["architecture"],
                preset=raw["preset"],
                bundled=_flag(raw.get("bundled", False), f"{where}.bundled"),
                description=raw.get("description", ""),
                metrics=dict(raw.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"{where} is malformed ({type(err).__name__}: {err})") from err
    default = data.get("default_model")
    if default is not None and default not in models:
        raise ConfigError(f"{source}: default_model {default!r} is not one of the models")
    return Manifest(default_model=default, models=models)


@cache
def load_manifest() -> Manifest:
    """The manifest shipped with this version of dcvae-tools (read once)."""
    path = manifest_path()
    if not path.is_file():
        if os.environ.get(MANIFEST_ENV):
            raise ConfigError(f"{MANIFEST_ENV}={path}: no such file; point it at a weights_manifest.json, or unset it "
                              "to use the manifest shipped with dcvae-tools")
        return Manifest(default_model=None, models={})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{path}: cannot read the weights manifest ({one_line(err)})") from None
    return parse_manifest(data, str(path))
