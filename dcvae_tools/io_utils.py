"""Small file helpers: atomic writes (a failure never leaves a partial file) and sha256 checksums."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "sha256_file"]

StrPath = str | os.PathLike[str]


def _current_umask() -> int:
    """Return the process umask without changing it where the platform allows that."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it is to set it ...
    os.umask(mask)  # ... and put it straight back
    return mask


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush a file (or a folder's entry list) to disk; best effort, errors are ignored."""
    if directory and sys.platform == "win32":
        return
    flags = os.O_RDONLY if directory else os.O_RDWR
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: StrPath, *, fsync: bool = True) -> Iterator[Path]:
    """Write ``path`` all at once: yield a temporary path to write to, then move it onto ``path``.

    The temporary file lives in the same folder (so the final ``os.replace`` is atomic) and is
    named ``.{name}.tmp-XXXXXXXX{suffix}``: hidden, and ending with the real suffix so that
    libraries that pick a format from the file name (Pillow, safetensors, ...) still do so.
    Missing parent folders are created. If the body raises, the temporary file is deleted, the folders
    this call created are removed again, and ``path`` is left untouched (an existing file keeps its old
    content). On success the new file
    gets the permissions of the file it replaces, or the usual ones for a new file (0o666 minus
    the umask) rather than the private 0o600 of temporary files.

    Args:
        path: the file to create or replace.
        fsync: flush the data to disk before the rename, so that a power cut cannot leave an
            empty file in place of the old one.

    Yields:
        The temporary path; write the whole content there (it exists and is empty at first).
    """
    target = Path(path)
    created = missing_folders(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # a long name is cut in the temporary's so that a name the file system takes fits with the ".tmp-" around it
        encoded = target.name.encode()
        stem = target.name if len(encoded) <= 200 else encoded[:64].decode(errors="ignore")  # bytes, not characters
        fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.tmp-", suffix=target.suffix, dir=target.parent)
    except OSError as err:  # a read-only folder, a name too long: say it of the file asked for, not the temporary
        remove_empty_folders(created)
        raise _about(err, target) from err
    except BaseException:
        remove_empty_folders(created)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    done = False
    try:
        try:
            yield tmp
        except OSError as err:
            if err.filename is not None and Path(err.filename) == tmp:
                raise _about(err, target) from err
            raise
        try:
            mode = target.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_current_umask()
        with contextlib.suppress(OSError):
            os.chmod(tmp, mode)
        if fsync:
            _fsync_path(tmp)
        try:
            os.replace(tmp, target)
        except OSError as err:  # e.g. a name longer than the file system takes
            raise _about(err, target) from err
        done = True
        if fsync:
            _fsync_path(target.parent, directory=True)
    finally:
        if not done:
            with contextlib.suppress(OSError):
                tmp.unlink()
            remove_empty_folders(created)


def _about(err: OSError, target: Path) -> OSError:
    """``err`` said of ``target``: the temporary's name means nothing to the caller."""
    return type(err)(err.errno, err.strerror, str(target))


def missing_folders(folder: Path) -> list[Path]:
    """The folders of ``folder``'s path that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove the folders a failed write created, deepest first, stopping at the first that is not empty
    (another writer may have put a file there meanwhile; ``rmdir`` never removes one that holds anything)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def atomic_write_bytes(path: StrPath, data: bytes, *, fsync: bool = True) -> Path:
    """Atomically replace ``path`` with ``data`` (see :func:`atomic_write`); return the path."""
    with atomic_write(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: StrPath, text: str, *, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Atomically replace ``path`` with ``text`` encoded as ``encoding``; return the path.

    Newlines are written exactly as they appear in ``text`` (no platform translation).
    """
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def sha256_file(path: StrPath, chunk: int = 1 << 20) -> str:
    """Return the lowercase hex sha256 of a file, read ``chunk`` bytes at a time."""
    if chunk <= 0:
        raise ValueError(f"chunk must be a positive number of bytes, got {chunk}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file with content ``data`` (how the Hub names its small, non-LFS files)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def read_bounded(path: StrPath, limit: int, what: str, fix: str) -> bytes:
    """The bytes of ``path``, refused (ConfigError naming the file, ``what`` it should be and ``fix``) when it is
    larger than ``limit`` bytes, before anything is read into memory."""
    from .errors import ConfigError

    try:
        size = Path(path).stat().st_size
        if size > limit:
            raise ConfigError(f"{path} is {size} bytes, more than {what} can be; {fix}")
        return Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err


def check_size(path: StrPath, limit: int, what: str, fix: str) -> None:
    """Refuse (ConfigError) an existing file at ``path`` larger than ``limit`` bytes; a missing one passes (reading
    it reports that)."""
    from .errors import ConfigError

    path = Path(path)
    if path.is_file() and path.stat().st_size > limit:
        raise ConfigError(f"{path} is {path.stat().st_size} bytes, more than {what} can be; {fix}")


def safetensors_header(data: bytes, source: StrPath, fix: str, limit: int = 1 << 20) -> dict:
    """The JSON header of safetensors ``data`` (at most ``limit`` bytes), or ConfigError naming ``source`` and
    ``fix``: read by hand so a file's names, dtypes and shapes can be checked before any tensor is built (and
    without torch, which safetensors' own reader imports)."""
    import json

    from .errors import ConfigError

    if len(data) < 8:
        raise ConfigError(f"{source} is not a readable safetensors file (only {len(data)} bytes); {fix}")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, limit):
        raise ConfigError(f"{source} is not a readable safetensors file (its header claims {size} bytes); {fix}")
    try:
        header = json.loads(data[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ConfigError(f"{source} is not a readable safetensors file (bad header: {err}); {fix}") from err
    if not isinstance(header, dict):
        raise ConfigError(f"{source} is not a readable safetensors file (header is not an object); {fix}")
    return header


def safetensors_bytes(tensors: dict, metadata: dict[str, str] | None = None) -> bytes:
    """``tensors`` and ``metadata`` as the bytes of a safetensors file, the same bytes on every run.

    safetensors keeps the metadata in a hash map, so its keys come out in an order that changes from process to
    process and the same content hashed differently (a release's sha256 changed when nothing in it had). The
    header is written again with the metadata's keys sorted; it has the same length, so nothing else moves.
    """
    import json

    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    size = int.from_bytes(data[:8], "little")
    padded = data[8 : 8 + size]
    text = padded.rstrip(b" ")
    header = json.loads(text)
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        ordered = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(ordered) == len(text):  # the same header re-serialised; a different escaping would change the length
            return data[:8] + ordered + padded[len(text) :] + data[8 + size :]
    return data
