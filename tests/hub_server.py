"""A small local HTTP server that speaks the Hugging Face Hub's download protocol, for tests.

`LocalHub` serves model repos from a temporary folder so that the real ``huggingface_hub`` client
(``hf_hub_download``, ``snapshot_download``, ``HfApi.model_info``) can be exercised end to end without
any network access: pass ``endpoint=hub.endpoint`` to the client calls.

What it answers (model repos only):

* ``HEAD`` / ``GET {endpoint}/{repo_id}/resolve/{revision}/{filename}``: the file, served directly (no
  redirect), with ``X-Repo-Commit``, ``ETag`` and, for Git LFS-style files, ``X-Linked-Etag`` and
  ``X-Linked-Size``. ``GET`` honours a single ``Range: bytes=N-`` / ``bytes=N-M`` header (206).
* ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}``: a minimal
  model-info JSON (``id``, ``sha``, ``siblings``).
* ``GET /api/models/{repo_id}/tree/{revision}[/{path}]``: the tree listing used by ``snapshot_download``.

Errors are 404s carrying the Hub's ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``) so that the client raises its matching exceptions. No ``X-Xet-*`` header is ever sent,
so the client always falls back to a plain HTTP download.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["LFS_SUFFIXES", "LocalHub", "git_blob_sha1", "lfs_pointer", "sha256_hex"]

#: File name endings that the Hub would store with Git LFS (weights and other binaries). These get the
#: LFS-style headers: ``ETag`` / ``X-Linked-Etag`` = sha256 of the content, ``X-Linked-Size`` = its size.
LFS_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".npz", ".png", ".gif")

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHORT_COMMIT_RE = re.compile(r"^[0-9a-f]{7,39}$")


def sha256_hex(data: bytes) -> str:
    """Return the sha256 hex digest of ``data`` (the Hub's ETag for an LFS file)."""
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """Return the git blob id of ``data`` (the Hub's ETag for a regular, non-LFS git file)."""
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """Return the Git LFS pointer file that git would store in place of ``data``."""
    return (
        b"version https://git-lfs.github.com/spec/v1\n"
        + f"oid sha256:{sha256_hex(data)}\n".encode()
        + f"size {len(data)}\n".encode()
    )


@dataclass
class _Repo:
    """In-memory index of one repo: its commits (file name -> path on disk) and its refs."""

    commits: dict[str, dict[str, Path]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    counter: int = 0


class _HubError(Exception):
    """A Hub-style error answer: HTTP status plus ``X-Error-Code`` (and optionally ``X-Repo-Commit``)."""

    def __init__(self, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.commit = commit


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its `LocalHub`."""

    daemon_threads = True
    hub: LocalHub

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore clients that hang up mid-answer; report anything else as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    """Request handler: every connection is closed after one response (HTTP/1.0), which keeps
    shutdown simple and avoids stale keep-alive connections in the client's pool."""

    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "LocalHub/1.0"

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default per-request stderr logging."""

    def do_HEAD(self) -> None:
        """Answer a HEAD request."""
        self.server.hub._handle(self, "HEAD")

    def do_GET(self) -> None:
        """Answer a GET request."""
        self.server.hub._handle(self, "GET")


class LocalHub:
    """Serves model repos over HTTP on 127.0.0.1 with the Hub's headers, for tests.

    Attributes:
        requests: ``(method, path)`` of every request received, in order. ``path`` is the raw request
            target as sent by the client (percent-encoded, query string included).
        lfs_suffixes: file name endings served with LFS-style headers (see `LFS_SUFFIXES`).
    """

    def __init__(self, root: Path, lfs_suffixes: tuple[str, ...] = LFS_SUFFIXES) -> None:
        """Create a hub that stores the files of its revisions under ``root`` (e.g. a tmp dir)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lfs_suffixes = tuple(lfs_suffixes)
        self.requests: list[tuple[str, str]] = []
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalHub:
        """Start serving on 127.0.0.1 on a random free port, from a daemon thread. Returns ``self``."""
        if self._server is not None:
            raise RuntimeError("LocalHub is already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.hub = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="LocalHub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; afterwards connections are refused. Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalHub:
        """Start the server (context-manager form)."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    @property
    def endpoint(self) -> str:
        """Base URL to pass as ``endpoint=`` to the client, e.g. ``"http://127.0.0.1:PORT"``."""
        if self._port is None:
            raise RuntimeError("LocalHub is not started")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ content management

    def add_revision(self, repo_id: str, folder: Path, branch: str = "main") -> str:
        """Copy every file of ``folder`` (recursively) as a new commit of ``repo_id``.

        The repo is created if needed, ``branch`` is pointed at the new commit, and the commit id is
        returned: 40 lowercase hex characters, deterministic (sha1 of the repo id, a per-repo counter and
        the sorted file names and contents). Older commits stay downloadable by their id.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise NotADirectoryError(folder)
        files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo())
            repo.counter += 1
            digest = hashlib.sha1()
            digest.update(f"repo {repo_id}\0counter {repo.counter}\0".encode())
            for name, path in files:
                data = path.read_bytes()
                digest.update(f"{name}\0{len(data)}\0".encode())
                digest.update(data)
            commit = digest.hexdigest()
            commit_dir = self.root / repo_id.replace("/", "--") / commit
            stored: dict[str, Path] = {}
            for name, path in files:
                target = commit_dir.joinpath(*PurePosixPath(name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                stored[name] = target
            repo.commits[commit] = stored
            repo.refs[branch] = commit
        return commit

    def set_ref(self, repo_id: str, ref: str, commit: str) -> None:
        """Point branch or tag ``ref`` of ``repo_id`` at an existing ``commit``."""
        with self._lock:
            repo = self._repos[repo_id]
            if commit not in repo.commits:
                raise KeyError(f"unknown commit {commit} of {repo_id}")
            repo.refs[ref] = commit

    def replace_file(self, repo_id: str, revision: str, filename: str, data: bytes) -> None:
        """Overwrite one file's bytes in an existing revision (a branch name or a commit id).

        Headers (ETag, sizes) are computed from the new bytes, as a compromised or changed server would
        do, while the commit id stays the same. Raises `KeyError` for an unknown repo, revision or file.
        """
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                raise KeyError(f"unknown repo {repo_id}")
            commit = self._resolve(repo, revision)
            if commit is None:
                raise KeyError(f"unknown revision {revision} of {repo_id}")
            path = repo.commits[commit].get(filename)
            if path is None:
                raise KeyError(f"unknown file {filename} in {repo_id}@{commit}")
            path.write_bytes(data)

    def file_headers(self, repo_id: str, revision: str, filename: str) -> dict[str, str]:
        """Return the headers a HEAD on the file would carry (for assertions in tests)."""
        with self._lock:
            commit, path = self._lookup_file(repo_id, revision, filename)
            data = path.read_bytes()
        return self._file_headers(commit, filename, data)

    def is_lfs(self, filename: str) -> bool:
        """Whether ``filename`` is served with LFS-style headers (by its name ending)."""
        return filename.lower().endswith(self.lfs_suffixes)

    # ------------------------------------------------------------------ lookups (call with the lock held)

    @staticmethod
    def _resolve(repo: _Repo, revision: str) -> str | None:
        """Resolve a branch/tag name, a full commit id or a unique abbreviated commit id."""
        if revision in repo.refs:
            return repo.refs[revision]
        if _COMMIT_RE.match(revision):
            return revision if revision in repo.commits else None
        if _SHORT_COMMIT_RE.match(revision):
            matches = [c for c in repo.commits if c.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _lookup_commit(self, repo_id: str, revision: str) -> tuple[_Repo, str]:
        repo = self._repos.get(repo_id)
        if repo is None:
            raise _HubError("RepoNotFound", f"Repository {repo_id} not found")
        commit = self._resolve(repo, revision)
        if commit is None:
            raise _HubError("RevisionNotFound", f"Invalid rev id: {revision}")
        return repo, commit

    def _lookup_file(self, repo_id: str, revision: str, filename: str) -> tuple[str, Path]:
        repo, commit = self._lookup_commit(repo_id, revision)
        path = repo.commits[commit].get(filename)
        if path is None:
            raise _HubError("EntryNotFound", f"{filename} does not exist on {revision}", commit=commit)
        return commit, path

    def _file_headers(self, commit: str, filename: str, data: bytes) -> dict[str, str]:
        headers = {
            "X-Repo-Commit": commit,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{PurePosixPath(filename).name}"',
        }
        if self.is_lfs(filename):
            etag = sha256_hex(data)
            headers["ETag"] = f'"{etag}"'
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        return headers

    def _entry(self, name: str, data: bytes) -> dict[str, object]:
        """One file entry of a tree listing / model-info ``siblings``, as the Hub writes it."""
        if self.is_lfs(name):
            pointer = lfs_pointer(data)
            return {
                "type": "file",
                "oid": git_blob_sha1(pointer),
                "size": len(data),
                "path": name,
                "lfs": {"oid": sha256_hex(data), "size": len(data), "pointerSize": len(pointer)},
            }
        return {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": name}

    def _sibling(self, name: str, data: bytes) -> dict[str, object]:
        """One ``siblings`` entry of a model-info answer (with the ``?blobs=true`` extras)."""
        entry = self._entry(name, data)
        sibling: dict[str, object] = {"rfilename": name, "size": len(data), "blobId": entry["oid"]}
        if "lfs" in entry:
            lfs = entry["lfs"]
            assert isinstance(lfs, dict)
            sibling["lfs"] = {"size": lfs["size"], "sha256": lfs["oid"], "pointerSize": lfs["pointerSize"]}
        return sibling

    # ------------------------------------------------------------------ HTTP

    def _handle(self, handler: _Handler, method: str) -> None:
        """Route one request and write the answer."""
        raw_path = handler.path
        with self._lock:
            self.requests.append((method, raw_path))
        split = urlsplit(raw_path)
        segments = split.path.lstrip("/").split("/")
        try:
            if segments[:2] == ["api", "models"] and len(segments) > 2:
                if method != "GET":
                    self._send(handler, HTTPStatus.METHOD_NOT_ALLOWED, {}, b"", method)
                    return
                self._handle_api(handler, segments[2:], parse_qs(split.query))
                return
            repo_id, rest = _split_repo_path(segments, ("resolve",))
            if repo_id is None or len(rest) < 3 or rest[0] != "resolve":
                raise _HubError("RepoNotFound", f"Unknown path {split.path}")
            revision = unquote(rest[1])
            filename = unquote("/".join(rest[2:]))
            with self._lock:
                commit, path = self._lookup_file(repo_id, revision, filename)
                data = path.read_bytes()
            headers = self._file_headers(commit, filename, data)
            self._send_file(handler, method, headers, data)
        except _HubError as error:
            headers = {"X-Error-Code": error.code, "X-Error-Message": error.message}
            if error.commit is not None:
                headers["X-Repo-Commit"] = error.commit
            body = json.dumps({"error": error.message}).encode()
            headers["Content-Type"] = "application/json"
            self._send(handler, HTTPStatus.NOT_FOUND, headers, body, method)
        except Exception as error:  # a bug in the test server: answer 500 rather than drop the connection
            body = json.dumps({"error": f"{type(error).__name__}: {error}"}).encode()
            self._send(
                handler, HTTPStatus.INTERNAL_SERVER_ERROR, {"Content-Type": "application/json"}, body, method
            )

    def _handle_api(self, handler: _Handler, segments: list[str], query: dict[str, list[str]]) -> None:
        """Answer ``/api/models/{repo_id}[/revision/{rev} | /tree/{rev}[/{path}]]``."""
        repo_id, rest = _split_repo_path(segments, ("revision", "tree"))
        if repo_id is None:
            raise _HubError("RepoNotFound", "Unknown repository")
        kind = rest[0] if rest else "revision"
        revision = unquote(rest[1]) if len(rest) > 1 else "main"
        with self._lock:
            repo, commit = self._lookup_commit(repo_id, revision)
            files = {name: path.read_bytes() for name, path in sorted(repo.commits[commit].items())}
        if kind == "revision":
            payload: object = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": commit,
                "private": False,
                "disabled": False,
                "gated": False,
                "tags": [],
                "siblings": [self._sibling(name, data) for name, data in files.items()],
            }
        else:
            prefix = unquote("/".join(rest[2:])).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            payload = self._tree(files, prefix, recursive)
            if prefix and not payload:
                raise _HubError("EntryNotFound", f"{prefix} does not exist on {revision}", commit=commit)
        body = json.dumps(payload).encode()
        self._send(
            handler, HTTPStatus.OK, {"Content-Type": "application/json", "X-Repo-Commit": commit}, body, "GET"
        )

    def _tree(self, files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict[str, object]]:
        """Tree listing under ``prefix`` (directories first at each level, like the Hub)."""
        base = f"{prefix}/" if prefix else ""
        dirs: dict[str, list[str]] = {}
        entries: list[dict[str, object]] = []
        for name, data in files.items():
            if not name.startswith(base):
                continue
            parts = name[len(base) :].split("/")
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                dir_path = base + "/".join(parts[:depth])
                dirs.setdefault(dir_path, []).append(f"{name} {git_blob_sha1(data)}")
            if len(parts) == 1 or recursive:
                entries.append(self._entry(name, data))
        dir_entries: list[dict[str, object]] = [
            {
                "type": "directory",
                "oid": hashlib.sha1("\n".join(items).encode()).hexdigest(),
                "size": 0,
                "path": path,
            }
            for path, items in sorted(dirs.items())
        ]
        return dir_entries + entries

    @staticmethod
    def _send(handler: _Handler, status: int, headers: dict[str, str], body: bytes, method: str) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(body)

    def _send_file(self, handler: _Handler, method: str, headers: dict[str, str], data: bytes) -> None:
        """Send the file's bytes, honouring a single-range ``Range`` header on GET."""
        range_header = handler.headers.get("Range")
        if method == "GET" and range_header:
            parsed = _parse_range(range_header, len(data))
            if parsed is None:
                headers = {**headers, "Content-Range": f"bytes */{len(data)}"}
                self._send(handler, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, headers, b"", method)
                return
            start, end = parsed
            headers = {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"}
            self._send(handler, HTTPStatus.PARTIAL_CONTENT, headers, data[start : end + 1], method)
            return
        self._send(handler, HTTPStatus.OK, headers, data, method)


def _split_repo_path(segments: list[str], markers: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """Split URL path segments into ``(repo_id, rest)``.

    ``repo_id`` is ``namespace/name`` (or a legacy bare ``name``) and ``rest`` starts with the marker
    segment (one of ``markers``, e.g. ``resolve``, ``revision``, ``tree``). A path that ends right after the
    repo id gives an empty ``rest``. Returns ``(None, [])`` when no repo id can be found.
    """
    if len(segments) >= 3 and segments[2] in markers and all(segments[:2]):
        return f"{segments[0]}/{segments[1]}", segments[2:]
    if len(segments) >= 2 and segments[1] in markers and segments[0]:
        return segments[0], segments[1:]
    if len(segments) in (1, 2) and all(segments):
        return "/".join(segments), []
    return None, []


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """Parse ``bytes=N-``, ``bytes=N-M`` or ``bytes=-K`` into an inclusive ``(start, end)``; None if
    unsatisfiable or malformed."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    if not match.group(1):
        suffix = int(match.group(2))
        if suffix == 0:
            return None
        return max(size - suffix, 0), size - 1
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return None
    return start, end
