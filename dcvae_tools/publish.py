"""Publishing a release: push it to the Hub, download exactly the pushed commit and check every file, and only
then pin that commit and the files' sha256 in weights_manifest.json.

Each step that can fail is named in the error (:class:`PublishError`), and the manifest is written last and
atomically: a push that fails anywhere leaves the manifest byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ChecksumError, ConfigError, DCVAEError
from .io_utils import atomic_write_text, sha256_file
from .manifest import REPO_ID, SAFE_NAME, TRAINING_STATE_NAME, FileEntry, parse_manifest
from .release import CONFIG_NAME, RELEASE_FILES, WEIGHTS_NAME

if TYPE_CHECKING:
    from .model import DCVAE

logger = logging.getLogger("dcvae_tools")

PUBLISHED_FILES = (*RELEASE_FILES, TRAINING_STATE_NAME)
"""The files a release may carry on the Hub; any other file of the repo is left alone and not listed."""

Progress = Callable[[str], None]


class PublishError(DCVAEError):
    """Publishing stopped at ``step`` (e.g. "uploading"); the manifest was not changed."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class PublishResult:
    """What was published: the pinned commit, the files' sha256 and sizes, and the manifest entry written."""

    name: str
    repo_id: str
    revision: str
    files: dict[str, FileEntry]
    manifest_path: Path
    entry: dict[str, Any]


# ------------------------------------------------------------------ the whole path


def publish(
    model_or_folder: DCVAE | str | Path,
    repo_id: str,
    *,
    name: str,
    manifest_path: str | Path,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = False,
    commit_message: str = "Publish DC-VAE checkpoint",
    training_state: Path | None = None,
    bundled: bool | None = None,
    extra: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Push a model (or a release folder) to ``repo_id`` and pin the pushed commit as ``name`` in the manifest.

    The release files (and ``training_state`` as ``training_state.safetensors``, if given; a folder's own
    training state is not pushed otherwise) are uploaded through huggingface_hub as one commit. Every file
    is then downloaded at exactly that commit into a fresh cache and its sha256 compared with the local
    file's; only then is ``name``'s entry (repo, commit, sha256 and size of each file, the config's data,
    sizes and metrics) written into ``manifest_path``, atomically. Other entries and ``default_model`` stay
    as they are; an existing entry keeps its ``bundled`` flag unless ``bundled`` is given, and its other keys
    (``training_iterations``, ...) when the weights are the same. ``extra`` adds keys to the entry.

    Raises:
        PublishError: naming the step that failed ("creating the repo", "uploading", "committing",
            "verifying the pushed files", "writing the manifest"); the manifest is then unchanged.
        DCVAEError: bad arguments, caught before anything is pushed.
    """
    say = progress or logger.info
    manifest_path = Path(manifest_path)
    old_entry = _check_arguments(name, repo_id, manifest_path)
    with tempfile.TemporaryDirectory(prefix="dcvae-publish-") as tmp:
        folder = _stage(model_or_folder, Path(tmp) / "release", training_state)
        entry = manifest_entry(folder, repo_id=repo_id, revision=None, bundled=False)
        entry = _merge_entry(entry, old_entry, bundled, extra)
        _check_bundled_copy(name, entry)
        note = f"; {manifest_path} was not changed"
        commit = upload_release(folder, repo_id, token=token, endpoint=endpoint, private=private,
                                commit_message=commit_message, progress=say, note=note)
        _verify_pushed(folder, repo_id, commit, cache_dir=Path(tmp) / "cache", token=token, endpoint=endpoint,
                       progress=say, note=note)
        entry["revision"] = commit
        say(f"writing the manifest: {name} -> {repo_id}@{commit} in {manifest_path}")
        with _step("writing the manifest", f"publishing {repo_id}", note):
            _write_entry(manifest_path, name, entry)
    files = {f: FileEntry(sha256=e["sha256"], size=e["size"]) for f, e in entry["files"].items()}
    return PublishResult(name, repo_id, commit, files, manifest_path, entry)


def upload_release(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = False,
    commit_message: str = "Upload DC-VAE checkpoint",
    progress: Progress | None = None,
    note: str = "",
) -> str:
    """Upload a release folder's files to ``repo_id`` as one commit on ``main`` and return the commit id.

    The repo is created if needed. Release files the repo holds but the folder lacks (a stale training
    state, say) are deleted in the same commit, so the commit is exactly this release; other files of the
    repo are left alone. The commit is made on top of the head that was read, so a concurrent push makes
    it fail rather than mix two releases.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    say = progress or logger.info
    folder = Path(folder)
    names = [n for n in PUBLISHED_FILES if (folder / n).is_file()]
    where = f"publishing {repo_id}"
    api = HfApi(endpoint=endpoint, token=token)
    say(f"creating the repo {repo_id} (if needed)")
    with _step("creating the repo", where, note):
        api.create_repo(repo_id, private=private, exist_ok=True)
        head, remote = _head_and_files(api, repo_id)
    additions = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(folder / n)) for n in names]
    deletions = [CommitOperationDelete(path_in_repo=n) for n in sorted(remote) if n in PUBLISHED_FILES
                 and n not in names]
    size = sum((folder / n).stat().st_size for n in names)
    say(f"uploading {len(names)} files ({size / 1e6:.1f} MB): {', '.join(names)}")
    with _step("uploading", where, note):
        api.preupload_lfs_files(repo_id, additions=additions)
    say("committing" + (f" (and deleting {', '.join(d.path_in_repo for d in deletions)})" if deletions else ""))
    with _step("committing", where, note):
        info = api.create_commit(repo_id, operations=[*additions, *deletions], commit_message=commit_message,
                                 parent_commit=head)
    say(f"committed {info.oid}")
    return info.oid


# ------------------------------------------------------------------ the manifest entry


def manifest_entry(
    folder: str | Path,
    *,
    repo_id: str,
    revision: str | None = None,
    bundled: bool = False,
    description: str | None = None,
) -> dict[str, Any]:
    """The weights_manifest.json entry of a release folder: sha256 and size of every release file, and the
    config's data, sizes and metrics."""
    from .config import ModelConfig

    folder = Path(folder)
    config = ModelConfig.from_file(folder / CONFIG_NAME)
    files = {
        name: {"sha256": sha256_file(folder / name), "size": (folder / name).stat().st_size}
        for name in PUBLISHED_FILES
        if (folder / name).is_file()
    }
    return {
        "repo_id": repo_id,
        "revision": revision,
        "files": files,
        "dataset": config.dataset,
        "resolution": config.image_size,
        "channels": config.channels,
        "latent_dim": config.latent_dim,
        "architecture": config.architecture,
        "preset": config.preset,
        "bundled": bundled,
        "description": description or config.description or "",
        "metrics": config.metrics,
    }


def _merge_entry(entry: dict[str, Any], old: Mapping[str, Any] | None, bundled: bool | None,
                 extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The new entry, keeping ``old``'s bundled flag (unless ``bundled`` is given), and its other keys and
    description when it describes the same weights."""
    old = dict(old or {})
    same_weights = old.get("files", {}).get(WEIGHTS_NAME, {}).get("sha256") == entry["files"][WEIGHTS_NAME]["sha256"]
    merged = {k: v for k, v in old.items() if k not in entry} if same_weights else {}
    merged.update(entry)
    if same_weights and not entry["description"]:
        merged["description"] = old.get("description", "")
    merged["bundled"] = bool(old.get("bundled", False)) if bundled is None else bundled
    merged.update(extra or {})
    return merged


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest's JSON (a new, empty one if the file does not exist), checked to parse."""
    if not path.exists():
        return {"format_version": 1, "default_model": None, "models": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read the manifest {path}: {err}") from err
    parse_manifest(data, str(path))
    return data


def _write_entry(path: Path, name: str, entry: Mapping[str, Any]) -> None:
    """Replace ``name``'s entry in the manifest as it is now on disk, atomically; nothing else changes."""
    data = _read_manifest(path)
    data["models"][name] = dict(entry)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    parse_manifest(json.loads(text), str(path))
    atomic_write_text(path, text)


# ------------------------------------------------------------------ steps


def _check_arguments(name: str, repo_id: str, manifest_path: Path) -> dict[str, Any] | None:
    """Refuse bad arguments before anything is pushed; return the manifest's current entry for ``name``."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise DCVAEError(f"model name {name!r} must be one plain name (letters, digits, . _ -)")
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id):
        raise DCVAEError(f"{repo_id!r} is not a Hub repo id of the form 'org/name'")
    return _read_manifest(manifest_path)["models"].get(name)


def _stage(model_or_folder: DCVAE | str | Path, staging: Path, training_state: Path | None) -> Path:
    """Copy exactly what will be pushed into ``staging``: the release files of a folder (checked to load),
    or ``model`` saved in the release format; plus the training state if given."""
    from .release import load_release, save_pretrained

    if isinstance(model_or_folder, str | Path):
        source = Path(model_or_folder)
        if not (source / CONFIG_NAME).is_file():
            raise DCVAEError(f"{source} is not a release folder (no {CONFIG_NAME}); export the run first")
        staging.mkdir(parents=True)
        for name in RELEASE_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, staging / name)
        load_release(staging)  # config valid, weights match it: refuse a broken release before pushing it
    else:
        save_pretrained(model_or_folder, staging)
    if training_state is not None:
        if not Path(training_state).is_file():
            raise DCVAEError(f"training state {training_state} does not exist")
        shutil.copy2(training_state, staging / TRAINING_STATE_NAME)
    return staging


def _check_bundled_copy(name: str, entry: Mapping[str, Any]) -> None:
    """A bundled entry must describe the bundled copy's files: the loader checks that copy against them."""
    from .manifest import BUNDLED_WEIGHTS_DIR

    bundled_dir = BUNDLED_WEIGHTS_DIR / name
    if not entry["bundled"] or not bundled_dir.is_dir():
        return
    differ = sorted(
        f for f, e in entry["files"].items()
        if f != TRAINING_STATE_NAME and (not (bundled_dir / f).is_file() or sha256_file(bundled_dir / f) != e["sha256"])
    )
    if differ:
        raise DCVAEError(
            f"{name} is bundled in {bundled_dir}, whose {', '.join(differ)} differ from what would be published; "
            f"publish that folder, or write the new checkpoint there first (dcvae-train release RUN --name {name} "
            "--bundle)"
        )


def _head_and_files(api: Any, repo_id: str) -> tuple[str | None, set[str]]:
    """The head commit of ``main`` and the files there (None and nothing for a repo without commits)."""
    from huggingface_hub.errors import RevisionNotFoundError

    try:
        info = api.model_info(repo_id, revision="main")
    except RevisionNotFoundError:
        return None, set()
    return info.sha, {s.rfilename for s in info.siblings or []}


def _verify_pushed(folder: Path, repo_id: str, commit: str, *, cache_dir: Path, token: str | None,
                   endpoint: str | None, progress: Progress, note: str) -> None:
    """Download every release file of ``commit`` into a fresh cache and compare it with the local file."""
    from huggingface_hub import HfApi, hf_hub_download

    local = {n: sha256_file(folder / n) for n in PUBLISHED_FILES if (folder / n).is_file()}
    progress(f"verifying the pushed files: downloading {repo_id}@{commit} into a fresh cache")
    with _step("verifying the pushed files", f"publishing {repo_id}", note):
        info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=commit)
        remote = {s.rfilename for s in info.siblings or []} & set(PUBLISHED_FILES)
        if info.sha != commit or remote != set(local):
            raise ChecksumError(
                f"commit {commit} holds the release files {sorted(remote)} (as {info.sha}), expected {sorted(local)}"
            )
        for name, want in local.items():
            path = Path(hf_hub_download(repo_id, name, revision=commit, cache_dir=cache_dir, token=token,
                                        endpoint=endpoint))
            got = sha256_file(path)
            if path.parent.name != commit or got != want:
                raise ChecksumError(
                    f"{name} downloaded at {path.parent.name} hashes to {got}; the pushed file is {want} at {commit}"
                )


@contextlib.contextmanager
def _step(step: str, where: str, note: str = "") -> Iterator[None]:
    """Turn any failure inside into a one-line PublishError naming ``step``."""
    try:
        yield
    except PublishError:
        raise
    except Exception as err:
        raise PublishError(step, f"{where} failed while {step}: {_describe(err)}{note}") from err


def _describe(err: BaseException) -> str:
    """An exception and its causes on one line (the Hub client wraps the real reason, e.g. an HTTP error)."""
    parts: list[str] = []
    current: BaseException | None = err
    while current is not None and len(parts) < 4:
        text = _MDN_LINK.sub("", " ".join(str(current).split())) or type(current).__name__
        if not any(text in part for part in parts):
            parts.append(text)
        current = current.__cause__
    return ": ".join(parts)


_MDN_LINK = re.compile(r"\s*For more information check: \S+")
"""The HTTP client's pointer to a page explaining status codes: noise in a one-line error."""
