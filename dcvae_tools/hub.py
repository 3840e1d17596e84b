"""Resolving a model name to a verified local folder: local paths, manifest names, Hub repos.

Downloads go through huggingface_hub (its cache, ``HF_HUB_OFFLINE``, ``local_files_only``, tokens).
Every file is verified before use: against the manifest's sha256 for released checkpoints, and for
any other Hub repo against the hash the Hub itself names the cached blob after (sha256 for LFS files,
the git blob sha1 for small files).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ChecksumError, ConfigError, ModelNotFoundError, OfflineError
from .io_utils import sha256_file
from .manifest import GIT_SHA1, SHA256_HEX, TRAINING_STATE_NAME, ManifestEntry, load_manifest
from .release import ATTRIBUTES_NAME, CARD_NAME, CONFIG_NAME, WEIGHTS_NAME

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ResolvedModel:
    """A checkpoint folder ready to load, and how it was found."""

    folder: Path
    source: str  # "local", "bundled", "hub"
    name: str
    revision: str | None = None
    expected_sha256: dict[str, str] | None = None  # files still to verify at load time


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _discard_cached(path: Path) -> None:
    """Remove a bad cached file (the snapshot link and the blob it points to) so a retry downloads again."""
    blob = path.resolve()
    for p in {path, blob}:
        with contextlib.suppress(OSError):
            p.unlink()


def verify_against_blob_name(path: Path) -> None:
    """Hub cache files are named after their hash (sha256 for LFS files, git sha1 otherwise): check it."""
    blob = path.resolve()
    name = blob.name
    if SHA256_HEX.match(name):
        got = sha256_file(blob)
    elif GIT_SHA1.match(name):
        got = _git_blob_sha1(blob)
    else:  # a cache without symlinks (e.g. some Windows setups): nothing to compare against
        return
    if got != name:
        _discard_cached(path)
        raise ChecksumError(
            f"{path.name} failed verification: its content hashes to {got}, the Hub announced {name}. "
            "The download was corrupted or tampered with; it was removed from the cache. Try again."
        )


def _download(repo_id: str, filename: str, revision: str | None, *, cache_dir: str | Path | None,
              local_files_only: bool, token: str | bool | None, endpoint: str | None,
              optional: bool = False) -> Path | None:
    """hf_hub_download with our error messages; returns None for a missing optional file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision or 'main'}"
    try:
        return Path(
            hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                            local_files_only=local_files_only, token=token, endpoint=endpoint)
        )
    except RepositoryNotFoundError as err:
        raise ModelNotFoundError(
            f"no model repo {repo_id!r} on the Hub (or it is private: log in with `hf auth login` "
            "or pass a token)"
        ) from err
    except RevisionNotFoundError as err:
        raise ModelNotFoundError(f"repo {repo_id!r} has no revision {revision!r}") from err
    except RemoteEntryNotFoundError as err:
        if optional:
            return None
        raise ModelNotFoundError(f"{where} has no file {filename!r}: it is not a dcvae-tools checkpoint") from err
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        if optional and local_files_only:
            return None
        raise OfflineError(
            f"{filename} of {where} is not in the local cache and cannot be downloaded "
            f"({'offline mode is on' if _offline_requested(local_files_only) else 'the Hub is unreachable'}). "
            f"Run `dcvae download {repo_id}` once while online"
            + (", without --offline / local_files_only" if local_files_only else ", with HF_HUB_OFFLINE unset")
            + "."
        ) from err
    except OSError as err:  # connection refused, DNS, timeouts
        raise OfflineError(
            f"could not download {filename} of {where}: {err}. Check the network (or HF_ENDPOINT), "
            f"or load a local folder."
        ) from err


@contextlib.contextmanager
def hub_offline_mode(enabled: bool) -> Iterator[None]:
    """Switch huggingface_hub's own offline flag on for the duration when ``enabled``.

    ``local_files_only`` alone is not enough: huggingface_hub builds its request headers even for a cache
    lookup, and doing so can fetch a registry from the Hub unless its ``HF_HUB_OFFLINE`` constant is on.
    """
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def _offline_requested(local_files_only: bool) -> bool:
    return local_files_only or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _resolve_manifest(entry: ManifestEntry, revision: str | None, **kw) -> ResolvedModel:
    expected = {name: f.sha256 for name, f in entry.files.items() if name != TRAINING_STATE_NAME}
    if entry.bundled and entry.bundled_dir.is_dir() and revision in (None, entry.revision):
        return ResolvedModel(entry.bundled_dir, "bundled", entry.name, entry.revision, expected)
    if entry.revision is None:
        raise ModelNotFoundError(
            f"{entry.name!r} is not published on the Hub yet and this installation has no bundled copy; "
            "install the dcvae-tools wheel that bundles it, or load a local folder"
        )
    if revision not in (None, entry.revision):
        raise ModelNotFoundError(
            f"{entry.name!r} is pinned to revision {entry.revision}; to load revision {revision!r} "
            f"pass the repo id {entry.repo_id!r} instead of the name"
        )
    folder = None
    for filename, file_entry in entry.files.items():
        if filename == TRAINING_STATE_NAME:
            continue  # only training needs it (resolve_training_state); inference never downloads it
        path = _download_verified(entry, filename, file_entry.sha256, **kw)
        folder = path.parent
    assert folder is not None
    return ResolvedModel(folder, "hub", entry.name, entry.revision, None)


def _download_verified(entry: ManifestEntry, filename: str, sha256: str, **kw) -> Path:
    """Download one file of a released model at its pinned revision and check it against the manifest."""
    path = _download(entry.repo_id, filename, entry.revision, **kw)
    assert path is not None
    got = sha256_file(path)
    if got != sha256:
        _discard_cached(path)
        raise ChecksumError(
            f"{filename} of {entry.repo_id}@{entry.revision} failed verification: sha256 is {got}, "
            f"the manifest expects {sha256}. The file was not loaded and was removed from "
            "the cache; download again, and report it if it persists."
        )
    return path


def _known_absent(repo_id: str, filename: str, commit: str, cache_dir: str | Path | None) -> bool:
    """Whether the Hub cache recorded that ``filename`` does not exist at ``commit`` (commits never change)."""
    from huggingface_hub import _CACHED_NO_EXIST, try_to_load_from_cache

    return try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=commit) is _CACHED_NO_EXIST


def _resolve_repo(repo_id: str, revision: str | None, **kw) -> ResolvedModel:
    folder = None
    for filename in (CONFIG_NAME, WEIGHTS_NAME, ATTRIBUTES_NAME, CARD_NAME):
        optional = filename in (ATTRIBUTES_NAME, CARD_NAME)
        if optional and folder is not None and _known_absent(repo_id, filename, folder.name, kw["cache_dir"]):
            continue  # no need to ask the Hub again (it may be unreachable: the client would retry ~20 s)
        path = _download(repo_id, filename, revision, optional=optional, **kw)
        if path is None:
            continue
        verify_against_blob_name(path)
        if filename == CONFIG_NAME:
            from .config import ModelConfig

            ModelConfig.from_file(path)  # reject a malformed config before fetching the weights
            revision = path.parent.name  # pin the other files to the config's commit, even if the branch moves
        folder = path.parent
    assert folder is not None
    return ResolvedModel(folder, "hub", repo_id, folder.name, None)


def resolve(name_or_path: str | os.PathLike, *, revision: str | None = None, cache_dir: str | Path | None = None,
            local_files_only: bool = False, token: str | bool | None = None,
            endpoint: str | None = None) -> ResolvedModel:
    """Find a checkpoint: a local folder or file, else a manifest name, else an ``org/name`` Hub repo."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        folder = path if path.is_dir() else path.parent
        return ResolvedModel(folder, "local", str(path), None, None)
    with hub_offline_mode(local_files_only):
        return _resolve_remote(text, revision, cache_dir, local_files_only, token, endpoint)


def _resolve_remote(text: str, revision: str | None, cache_dir: str | Path | None, local_files_only: bool,
                    token: str | bool | None, endpoint: str | None) -> ResolvedModel:
    manifest = load_manifest()
    kw = {"cache_dir": cache_dir, "local_files_only": local_files_only, "token": token, "endpoint": endpoint}
    entry = manifest.get(text)
    if entry is not None:
        return _resolve_manifest(entry, revision, **kw)
    if _REPO_ID.match(text):
        return _resolve_repo(text, revision, **kw)
    names = ", ".join(sorted(manifest.models)) or "none in this version"
    raise ModelNotFoundError(
        f"no model {text!r}: not an existing file or folder, not a released model name ({names}), "
        "and not a Hub repo id of the form 'org/name'"
    )


def resolve_training_state(name_or_path: str | os.PathLike, *, revision: str | None = None,
                           cache_dir: str | Path | None = None, local_files_only: bool = False,
                           token: str | bool | None = None, endpoint: str | None = None) -> Path | None:
    """The verified ``training_state.safetensors`` of a release, or None when the release has none.

    A local folder's file is taken as it is; a released name's file is checked against the manifest's
    sha256 (and removed from the cache on a mismatch); another Hub repo's against its blob name.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        candidate = (path if path.is_dir() else path.parent) / TRAINING_STATE_NAME
        return candidate if candidate.is_file() else None
    kw = {"cache_dir": cache_dir, "local_files_only": local_files_only, "token": token, "endpoint": endpoint}
    with hub_offline_mode(local_files_only):
        entry = load_manifest().get(text)
        if entry is not None:
            file_entry = entry.files.get(TRAINING_STATE_NAME)
            if file_entry is None or entry.revision is None:
                return None
            return _download_verified(entry, TRAINING_STATE_NAME, file_entry.sha256, **kw)
        if not _REPO_ID.match(text):
            resolve(text, revision=revision, **kw)  # raises the usual "no model ..." error
        config = _download(text, CONFIG_NAME, revision, **kw)  # pins the commit, as loading does
        assert config is not None
        commit = config.parent.name
        if local_files_only and _known_absent(text, TRAINING_STATE_NAME, commit, cache_dir):
            return None
        try:
            found = _download(text, TRAINING_STATE_NAME, commit, optional=not local_files_only, **kw)
        except OfflineError as err:  # offline and not cached: not the same as "the repo has none"
            raise OfflineError(
                f"{TRAINING_STATE_NAME} of {text}@{commit} is not in the local cache; resume once while online "
                "(it is downloaded then), or resume without --offline"
            ) from err
        if found is not None:
            verify_against_blob_name(found)
        return found


def default_model_name() -> str:
    """The manifest's default model (the one the CLI uses when --model is not given)."""
    name = load_manifest().default_model
    if name is None:
        raise ConfigError("this dcvae-tools version has no default model; pass --model PATH_OR_REPO")
    return name
