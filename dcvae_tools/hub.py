"""Resolving a model name to a verified local folder: local paths, manifest names, Hub repos.

Downloads go through huggingface_hub (its cache, ``HF_HUB_OFFLINE``, ``local_files_only``, tokens).
Every file is verified before use: against the manifest's sha256 for released checkpoints, and for
any other Hub repo against the hash the Hub itself names the cached blob after (sha256 for LFS files,
the git blob sha1 for small files).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ChecksumError, ConfigError, ModelNotFoundError, OfflineError, one_line
from .io_utils import git_blob_sha1, sha256_file
from .manifest import GIT_SHA1, REPO_ID, SHA256_HEX, TRAINING_STATE_NAME, ManifestEntry, load_manifest
from .release import CONFIG_NAME, OPTIONAL_FILES, RELEASE_FILES, check_config_size


@dataclass(frozen=True)
class ResolvedModel:
    """A checkpoint folder ready to load, and how it was found."""

    folder: Path
    source: str  # "local", "bundled", "hub"
    name: str
    revision: str | None = None
    expected_sha256: dict[str, str] | None = None  # hash of each file (sha256, or git sha1 for small Hub
    # files): the loader checks exactly the bytes it loads against them

    @property
    def recorded_name(self) -> str:
        """How files made with this model name it: a released or Hub name as it is, a local folder as its absolute
        path (a name typed relative to one working folder means nothing from another)."""
        return str(Path(self.folder).resolve()) if self.source == "local" else self.name


def _git_blob_sha1(path: Path) -> str:
    return git_blob_sha1(path.read_bytes())  # small, non-LFS files only


def _discard_cached(path: Path) -> None:
    """Remove a bad cached file (the snapshot link and the blob it points to) so a retry downloads again."""
    blob = path.resolve()
    for p in {path, blob}:
        with contextlib.suppress(OSError):
            p.unlink()


def _hash_like(path: Path, expected: str) -> str:
    """``path``'s hash of the kind ``expected`` is: sha256 (64 hex digits) or git blob sha1 (40)."""
    return sha256_file(path) if SHA256_HEX.match(expected) else _git_blob_sha1(path)


def _check_cached(path: Path, expected: str, what: str) -> str:
    """Compare a cached file with the hash the Hub gave for it; remove it from the cache on a mismatch."""
    got = _hash_like(path, expected)
    if got != expected:
        _discard_cached(path)
        raise ChecksumError(
            f"{path.name} failed verification: its content hashes to {got}, {what} {expected}. "
            "The download was corrupted or tampered with; it was removed from the cache. Try again."
        )
    return expected


def verify_cached_file(path: Path, repo_id: str, revision: str, *, local_files_only: bool,
                       token: str | bool | None, endpoint: str | None) -> str:
    """Check a cached Hub file against the hash the Hub names it by, and return that hash.

    A cache with symlinks stores each file as a blob named after its hash (sha256 for LFS files, the git
    blob sha1 otherwise). A cache without symlinks (Windows without developer mode, some file systems)
    keeps plain copies with no hash in their name: the hash is then asked from the Hub (one HEAD request),
    and offline such a file cannot be verified, so it is refused.
    """
    name = path.resolve().name
    if SHA256_HEX.match(name) or GIT_SHA1.match(name):
        return _check_cached(path, name, "the Hub announced")
    if _offline_requested(local_files_only):
        raise ChecksumError(
            f"cannot verify {path.name} of {repo_id}@{revision} offline: this Hub cache keeps plain copies "
            "without their hashes (no symlinks). Load it once online (it is checked against the Hub then), or "
            "copy the files to a folder of your own and load that folder"
        )
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, path.name, revision=revision, endpoint=endpoint)
    etag = (get_hf_file_metadata(url, token=token).etag or "").strip('"').removeprefix("W/").strip('"')
    if not (SHA256_HEX.match(etag) or GIT_SHA1.match(etag)):
        raise ChecksumError(f"the Hub gave no usable hash for {path.name} of {repo_id}@{revision} ({etag!r})")
    return _check_cached(path, etag, "the Hub announced")


def _download(repo_id: str, filename: str, revision: str | None, *, cache_dir: str | Path | None,
              local_files_only: bool, token: str | bool | None, endpoint: str | None,
              optional: bool = False, download_name: str | None = None) -> Path | None:
    """hf_hub_download with our error messages; returns None for a missing optional file. ``download_name`` is what
    the offline advice tells to ``dcvae download`` (a released name, which fetches its pinned commit; default the
    repo id)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
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
        if optional and _offline_requested(local_files_only):
            # e.g. latent_prior.safetensors, which a cache filled by an older dcvae-tools never asked for
            return None
        raise OfflineError(
            f"{filename} of {where} is not in the local cache and cannot be downloaded "
            f"({'offline mode is on' if _offline_requested(local_files_only) else 'the Hub is unreachable'}). "
            "It has to come from the network once: "
            + (f"unset {variable} and run `dcvae download {download_name or repo_id}`"
               if (variable := _offline_variable()) else
               f"run `dcvae download {download_name or repo_id}`"
               + (" without --offline / local_files_only" if _offline_requested(local_files_only) else ""))
            + " where the Hub is reachable; later loads work offline from the cache."
        ) from err
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise ModelNotFoundError(
                f"the Hub refused access to {filename} of {where} ({status}): the token is invalid, expired or not "
                "allowed to read this repo. Log in again with `hf auth login`, pass another token, or (for a public "
                "repo) unset HF_TOKEN"
            ) from err
        raise OfflineError(f"could not download {filename} of {where}: {one_line(err)}. Try again later, or check "
                           "HF_ENDPOINT") from err
    except Exception as err:  # connection refused or cut, DNS, timeouts: OSError, or the HTTP client's own errors
        if not isinstance(err, (OSError, *_transport_errors())):
            raise
        raise OfflineError(
            f"could not download {filename} of {where}: {one_line(err) or type(err).__name__}. Check the network "
            "(or HF_ENDPOINT) and run again (a cut download is not kept), or load a local folder."
        ) from err


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The network errors of the HTTP client huggingface_hub uses (``httpx``, or ``httpx2`` in newer releases),
    which are not ``OSError``."""
    import importlib

    errors = []
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


@contextlib.contextmanager
def hub_offline_mode(enabled: bool) -> Iterator[None]:
    """Switch huggingface_hub's own offline flag on for the duration when ``enabled``.

    ``local_files_only`` alone is not enough: huggingface_hub builds its request headers even for a cache
    lookup, and doing so can fetch a registry from the Hub unless its ``HF_HUB_OFFLINE`` constant is on.
    The flag is the client's, one for the process: overlapping uses (threads of a server) are counted, the
    first saves the client's value and the last puts it back, so it never stays on after them all.
    """
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    global _offline_users, _offline_saved
    with _offline_lock:
        if _offline_users == 0:
            _offline_saved = constants.HF_HUB_OFFLINE
        _offline_users += 1
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        with _offline_lock:
            _offline_users -= 1
            if _offline_users == 0:
                constants.HF_HUB_OFFLINE = _offline_saved


_offline_lock = threading.Lock()
_offline_users = 0  # hub_offline_mode blocks now running, in any thread
_offline_saved = False  # the client's flag before the first of them


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # huggingface_hub honours both


def _offline_variable() -> str | None:
    """The environment variable that asks for offline mode, if any, by huggingface_hub's rule: the first of
    ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` that is set and not empty decides (so ``HF_HUB_OFFLINE=0``
    keeps the Hub on whatever ``TRANSFORMERS_OFFLINE`` says).

    Read at each call, not once at import as huggingface_hub reads it: a variable set after that import
    (in a notebook, by a test) still counts, and :func:`hub_offline_mode` passes it on to the client.
    """
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name)
        if value:
            return name if value.upper() in ("1", "ON", "YES", "TRUE") else None
    return None


def _offline_requested(local_files_only: bool) -> bool:
    return local_files_only or _offline_variable() is not None


def _check_revision(entry: ManifestEntry, revision: str | None) -> None:
    """Refuse a revision the release cannot have (the manifest alone decides: no network needed)."""
    if revision not in (None, entry.revision):
        if entry.revision is None:
            raise ModelNotFoundError(
                f"{entry.name!r} is not published on the Hub yet, so it has no revision {revision!r}; drop "
                "--revision (revision=) to load the release this installation knows"
            )
        raise ModelNotFoundError(
            f"{entry.name!r} is pinned to revision {entry.revision}; to load revision {revision!r} "
            f"pass the repo id {entry.repo_id!r} instead of the name"
        )


def _resolve_manifest(entry: ManifestEntry, revision: str | None, **kw) -> ResolvedModel:
    expected = {name: f.sha256 for name, f in entry.files.items() if name != TRAINING_STATE_NAME}
    _check_revision(entry, revision)
    if _bundled(entry, revision):
        return ResolvedModel(entry.bundled_dir, "bundled", entry.name, entry.revision, expected)
    if entry.revision is None:
        raise ModelNotFoundError(
            f"{entry.name!r} is not published on the Hub yet and this installation has no bundled copy; "
            "install the dcvae-tools wheel that bundles it, or load a local folder"
        )
    folder = None
    for filename, file_entry in entry.files.items():
        if filename == TRAINING_STATE_NAME:
            continue  # only training needs it (resolve_training_state); inference never downloads it
        path = _download_verified(entry, filename, file_entry.sha256, **kw)
        folder = path.parent
    assert folder is not None
    return ResolvedModel(folder, "hub", entry.name, entry.revision, expected)


def _download_verified(entry: ManifestEntry, filename: str, sha256: str, **kw) -> Path:
    """Download one file of a released model at its pinned revision and check it against the manifest (its size
    first, so a wrong file is not hashed whole)."""
    path = _download(entry.repo_id, filename, entry.revision, download_name=entry.name, **kw)
    assert path is not None
    expected_size = entry.files[filename].size
    if (size := path.stat().st_size) != expected_size:
        _discard_cached(path)
        raise ChecksumError(
            f"{filename} of {entry.repo_id}@{entry.revision} failed verification: it is {size} bytes, the manifest "
            f"expects {expected_size}. The file was not loaded and was removed from the cache; download again, and "
            "report it if it persists."
        )
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
    hashes: dict[str, str] = {}
    for filename in RELEASE_FILES:
        optional = filename in OPTIONAL_FILES
        if optional and folder is not None and _known_absent(repo_id, filename, folder.name, kw["cache_dir"]):
            continue  # no need to ask the Hub again (it may be unreachable: the client would retry ~20 s)
        path = _download(repo_id, filename, revision, optional=optional, **kw)
        if path is None:
            continue
        if filename == CONFIG_NAME:
            check_config_size(path)  # before it is read whole, and before the weights are fetched
        hashes[filename] = verify_cached_file(
            path, repo_id, path.parent.name, local_files_only=kw["local_files_only"], token=kw["token"],
            endpoint=kw["endpoint"],
        )
        if filename == CONFIG_NAME:
            from .config import ModelConfig

            ModelConfig.from_file(path)  # reject a malformed config before fetching the weights
            revision = path.parent.name  # pin the other files to the config's commit, even if the branch moves
        folder = path.parent
    assert folder is not None
    return ResolvedModel(folder, "hub", repo_id, folder.name, hashes)


_LOCAL_REVISION = ("{text!r} is a local file or folder, which has no revisions; drop --revision (revision=), or, "
                   "for the Hub repo of that name, run from a folder where no such path exists")


def is_explicit_path(text: str) -> bool:
    """Whether a model argument is written as a path (``./x``, ``../x``, ``/x``, ``~/x``, ``x/``), which always
    means a local folder, never a released name or a Hub repo."""
    seps = tuple(sep for sep in (os.sep, os.altsep) if sep)
    return (
        os.path.isabs(text)
        or text.startswith(("~", *(f".{sep}" for sep in seps), *(f"..{sep}" for sep in seps)))
        or text.endswith(seps)
        or text in (".", "..")
    )


def resolve(name_or_path: str | os.PathLike, *, revision: str | None = None, cache_dir: str | Path | None = None,
            local_files_only: bool = False, token: str | bool | None = None,
            endpoint: str | None = None, allow_local: bool = True) -> ResolvedModel:
    """Find a checkpoint, in this order:

    1. an argument written as a path (``./x``, ``/x``, ``~/x``, ``x/``): that local folder (or a file's folder);
    2. a released name from the manifest: always the verified release, even if a folder of that name exists
       in the working directory;
    3. any other existing file or folder: loaded as the user's own files;
    4. an ``org/name`` Hub repo.

    With ``allow_local=False`` (a server taking names from its visitors) 1 and 3 are skipped: the file system is
    never consulted for the name, and a name written as a path is refused.
    """
    text = os.fspath(name_or_path)
    if not text.strip():
        raise ModelNotFoundError("the model name is empty; give a released name (`dcvae models` lists them), a Hub "
                                 "repo id (org/name) or a model folder")
    explicit = is_explicit_path(text) or not isinstance(name_or_path, str)  # a Path object is always a path
    if not allow_local:
        if explicit:
            raise ModelNotFoundError(f"{text!r}: files and folders are not loaded here; give a released model name "
                                     "or a Hub repo id (org/name)")
    else:
        local = _local(Path(text).expanduser(), explicit=explicit)
        if local is not None and (explicit or load_manifest().get(text) is None):
            if revision is not None:
                raise ModelNotFoundError(_LOCAL_REVISION.format(text=text))
            _refuse_other_files(Path(text).expanduser())
            return local
    with hub_offline_mode(_offline_requested(local_files_only)):
        return _resolve_remote(text, revision, cache_dir, local_files_only, token, endpoint)


def _refuse_other_files(path: Path) -> None:
    """A file stands for its folder only when it is one of a release's files (``model/config.json``); any other
    (``z.safetensors`` run inside a model folder) would silently load the folder's model."""
    if path.is_dir() or path.name in (*RELEASE_FILES, TRAINING_STATE_NAME):
        return
    raise ModelNotFoundError(f"{path} is a file, not a model: give the folder that holds {CONFIG_NAME} and the "
                             f"weights (or one of its files: {', '.join(RELEASE_FILES)})")


def _local(path: Path, *, explicit: bool) -> ResolvedModel | None:
    """The local checkpoint at ``path``; None when there is none (an explicit path that does not exist raises)."""
    if path.exists():
        return ResolvedModel(path if path.is_dir() else path.parent, "local", str(path), None, None)
    if explicit:
        raise ModelNotFoundError(f"{path}: no such file or folder (given as a path, so it is not looked up "
                                 "as a released name or a Hub repo)")
    return None


def _resolve_remote(text: str, revision: str | None, cache_dir: str | Path | None, local_files_only: bool,
                    token: str | bool | None, endpoint: str | None) -> ResolvedModel:
    manifest = load_manifest()
    entry = manifest.get(text)
    if entry is None and not REPO_ID.match(text):
        names = ", ".join(sorted(manifest.models)) or "none in this version"
        raise ModelNotFoundError(
            f"no model {text!r}: not an existing file or folder, not a released model name ({names}), "
            "and not a Hub repo id of the form 'org/name'"
        )
    if entry is not None:
        _check_revision(entry, revision)  # before any network probe: a wrong revision is known at once
    # a bundled release, or an unpublished one (whose only copy is the bundled one), never needs the Hub
    local_only = entry is not None and (entry.revision is None or _bundled(entry, revision))
    offline = _offline_requested(local_files_only)
    unreachable = _unreachable(endpoint) if not offline and not local_only else None
    kw = {"cache_dir": cache_dir, "local_files_only": offline or unreachable is not None, "token": token,
          "endpoint": endpoint}
    try:
        with hub_offline_mode(unreachable is not None):
            if entry is not None:
                return _resolve_manifest(entry, revision, **kw)
            return _resolve_repo(text, revision, **kw)
    except OfflineError as err:
        if unreachable is None:
            raise
        raise OfflineError(
            f"could not reach the Hub ({unreachable}) and {text} is not in the local cache. Check the network "
            "connection and HF_ENDPOINT, or load a cached model or a local folder (--offline uses only the cache)"
        ) from err


def _bundled(entry: ManifestEntry, revision: str | None) -> bool:
    return entry.bundled and entry.bundled_dir.is_dir() and revision in (None, entry.revision)


def _unreachable(endpoint: str | None, timeout: float = 3.0) -> str | None:
    """Why the Hub cannot be reached, or None when a connection to it opens.

    One TCP connection with a short timeout, so an unreachable Hub fails in seconds instead of the client's
    ~25 s of retries. Behind an HTTP(S) proxy the proxy decides, so no probe is made.
    """
    import socket
    import urllib.request
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = endpoint or constants.ENDPOINT
    parsed = urlparse(url)
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return None  # a malformed endpoint: let the client report it
    if not parsed.hostname:
        return None
    proxies = {scheme: proxy for scheme, proxy in urllib.request.getproxies().items() if scheme != "no"}
    if proxies and not urllib.request.proxy_bypass(parsed.hostname):
        return None  # environment or system proxy settings: the proxy decides, not a direct probe
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as err:
        return f"{url}: {err.strerror or err}"


def resolve_training_state(name_or_path: str | os.PathLike, *, revision: str | None = None,
                           cache_dir: str | Path | None = None, local_files_only: bool = False,
                           token: str | bool | None = None, endpoint: str | None = None) -> Path | None:
    """The verified ``training_state.safetensors`` of a release, or None (see :func:`locate_training_state`)."""
    found = locate_training_state(name_or_path, revision=revision, cache_dir=cache_dir,
                                  local_files_only=local_files_only, token=token, endpoint=endpoint)
    return None if found is None else found[0]


def locate_training_state(name_or_path: str | os.PathLike, *, revision: str | None = None,
                          cache_dir: str | Path | None = None, local_files_only: bool = False,
                          token: str | bool | None = None,
                          endpoint: str | None = None) -> tuple[Path, str | None] | None:
    """A release's ``training_state.safetensors`` and its expected hash, or None when the release has none.

    A local folder's file is taken as it is (hash None); a released name's file is checked against the
    manifest's sha256 (and removed from the cache on a mismatch); another Hub repo's against the Hub's hash.
    The hash is returned so that the reader checks exactly the bytes it loads
    (``training.state_file.load_training_state(path, expected_hash=...)``).
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    explicit = is_explicit_path(text) or not isinstance(name_or_path, str)
    local = _local(path, explicit=explicit)
    if local is not None and (explicit or load_manifest().get(text) is None):
        if revision is not None:
            raise ModelNotFoundError(_LOCAL_REVISION.format(text=text))
        candidate = local.folder / TRAINING_STATE_NAME
        return (candidate, None) if candidate.is_file() else None  # the user's own file: nothing to check
    # HF_HUB_OFFLINE counts as local_files_only: offline, a file missing from the cache must not read as "the
    # release has no training state" (a resume would silently start over)
    offline = _offline_requested(local_files_only)
    kw = {"cache_dir": cache_dir, "local_files_only": offline, "token": token, "endpoint": endpoint}
    with hub_offline_mode(offline):
        entry = load_manifest().get(text)
        if entry is not None:
            _check_revision(entry, revision)
            file_entry = entry.files.get(TRAINING_STATE_NAME)
            if file_entry is None or entry.revision is None:
                return None
            return _download_verified(entry, TRAINING_STATE_NAME, file_entry.sha256, **kw), file_entry.sha256
        if not REPO_ID.match(text):
            resolve(text, revision=revision, **kw)  # raises the usual "no model ..." error
        config = _download(text, CONFIG_NAME, revision, **kw)  # pins the commit, as loading does
        assert config is not None
        commit = config.parent.name
        if offline and _known_absent(text, TRAINING_STATE_NAME, commit, cache_dir):
            return None
        try:
            found = _download(text, TRAINING_STATE_NAME, commit, optional=not offline, **kw)
        except OfflineError as err:  # offline and not cached: not the same as "the repo has none"
            raise OfflineError(
                f"{TRAINING_STATE_NAME} of {text}@{commit} is not in the local cache; resume once while online "
                "(it is downloaded then), or resume without --offline"
            ) from err
        if found is None:
            return None
        expected = verify_cached_file(found, text, commit, local_files_only=offline, token=token, endpoint=endpoint)
        return found, expected


def default_model_name() -> str:
    """The manifest's default model (the one the CLI uses when --model is not given)."""
    name = load_manifest().default_model
    if name is None:
        raise ConfigError("this dcvae-tools version has no default model; pass --model PATH_OR_REPO")
    return name
