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

And the upload protocol of ``HfApi.create_repo`` / ``upload_folder`` / ``preupload_lfs_files`` /
``create_commit`` (Git LFS "basic" transfers; the client must not use Xet: set ``HF_HUB_DISABLE_XET``, or
``huggingface_hub.constants.HF_HUB_DISABLE_XET = True`` once the client is imported):

* ``POST /api/repos/create``: a new model repo with a first commit holding ``.gitattributes`` (as the Hub
  makes one); 409 when it exists (``exist_ok=True`` turns that into success).
* ``POST /api/validate-yaml``: parses the model card's YAML front matter; 400 with ``errors`` if malformed.
* ``POST /api/models/{repo_id}/preupload/{revision}``: ``uploadMode`` per file (``lfs`` for `LFS_SUFFIXES`,
  else ``regular``) and the ``oid`` of the file already at that revision, if any.
* ``POST /{repo_id}.git/info/lfs/objects/batch``: upload (and verify) actions per object, none for an
  object the repo already holds. The actions point at ``PUT {endpoint}/__lfs/{repo_id}/{oid}`` (the body
  must hash to ``oid``) and ``POST {endpoint}/__lfs/{repo_id}/{oid}/verify``.
* ``POST /api/models/{repo_id}/commit/{branch}``: the client's NDJSON body (``header``, ``file`` in base64,
  ``lfsFile`` by sha256, ``deletedFile``, ``deletedFolder``) becomes a new commit on the branch, which the
  download endpoints then serve; ``parentCommit`` must be the branch's head.

Errors are 404s carrying the Hub's ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``) so that the client raises its matching exceptions (write errors use 400/401/409/412).
No ``X-Xet-*`` header is ever sent, so the client always falls back to a plain HTTP download.

For tests of failures, ``LocalHub.failures`` maps an endpoint name (``create``, ``validate-yaml``,
``preupload``, ``lfs-batch``, ``lfs-upload``, ``lfs-verify``, ``commit``) to the HTTP status it then answers
with, changing nothing; ``LocalHub.write_token`` makes every write but the LFS upload URL demand that token,
``LocalHub.read_token`` every read (401 otherwise, as the Hub answers an invalid token), and
``LocalHub.cut_downloads`` maps a file name to the number of its bytes a GET sends before the connection closes
(a download cut half-way).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
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
    lfs: dict[str, Path] = field(default_factory=dict)  # uploaded LFS objects by sha256
    private: bool = False


class _HubError(Exception):
    """A Hub-style error answer: HTTP status plus ``X-Error-Code`` (and optionally ``X-Repo-Commit``)."""

    def __init__(
        self,
        code: str,
        message: str,
        commit: str | None = None,
        status: int = HTTPStatus.NOT_FOUND,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.commit = commit
        self.status = status
        self.extra = extra or {}  # more fields of the JSON error body


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

    def do_POST(self) -> None:
        """Answer a POST request (repo creation, preupload, LFS batch and verify, commit)."""
        self.server.hub._handle(self, "POST")

    def do_PUT(self) -> None:
        """Answer a PUT request (an LFS object upload)."""
        self.server.hub._handle(self, "PUT")


class LocalHub:
    """Serves model repos over HTTP on 127.0.0.1 with the Hub's headers, for tests.

    Attributes:
        requests: ``(method, path)`` of every request received, in order. ``path`` is the raw request
            target as sent by the client (percent-encoded, query string included).
        authorizations: each request's ``Authorization`` header (None without one), in the order of ``requests``.
        lfs_suffixes: file name endings served with LFS-style headers (see `LFS_SUFFIXES`), and uploaded
            through LFS.
        failures: endpoint name -> HTTP status that endpoint answers with instead of doing its work (see the
            module docstring for the names); empty by default.
        write_token: when set, the write endpoints demand ``Authorization: Bearer {write_token}`` (401 otherwise).
        read_token: when set, every read (file downloads and the API) demands ``Authorization: Bearer {read_token}``.
        cut_downloads: file name -> how many of its bytes a GET sends before closing the connection.
        tamper: file path -> bytes that a commit made over HTTP stores instead of the pushed content of that
            path (a server that corrupts what it receives); empty by default.
    """

    def __init__(self, root: Path, lfs_suffixes: tuple[str, ...] = LFS_SUFFIXES) -> None:
        """Create a hub that stores the files of its revisions under ``root`` (e.g. a tmp dir)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lfs_suffixes = tuple(lfs_suffixes)
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header, in the same order
        self.failures: dict[str, int] = {}
        self.write_token: str | None = None
        self.read_token: str | None = None
        self.cut_downloads: dict[str, int] = {}
        self.tamper: dict[str, bytes] = {}
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
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo())
            return self._store_commit(repo_id, repo, files, branch)

    def _store_commit(self, repo_id: str, repo: _Repo, files: dict[str, bytes], branch: str) -> str:
        """Store ``files`` (path in repo -> bytes) as a new commit and point ``branch`` at it (lock held)."""
        repo.counter += 1
        digest = hashlib.sha1()
        digest.update(f"repo {repo_id}\0counter {repo.counter}\0".encode())
        for name in sorted(files):
            digest.update(f"{name}\0{len(files[name])}\0".encode())
            digest.update(files[name])
        commit = digest.hexdigest()
        commit_dir = self.root / repo_id.replace("/", "--") / commit
        stored: dict[str, Path] = {}
        for name in sorted(files):
            target = commit_dir.joinpath(*PurePosixPath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[name])
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

    def head(self, repo_id: str, branch: str = "main") -> str:
        """The commit ``branch`` of ``repo_id`` points at. Raises `KeyError` for an unknown repo or branch."""
        with self._lock:
            return self._repos[repo_id].refs[branch]

    def read_file(self, repo_id: str, revision: str, filename: str) -> bytes:
        """The bytes of one file at a revision (a branch name or a commit id), as the server holds them."""
        with self._lock:
            try:
                return self._lookup_file(repo_id, revision, filename)[1].read_bytes()
            except _HubError as error:
                raise KeyError(error.message) from None

    def files(self, repo_id: str, revision: str = "main") -> list[str]:
        """The file paths of ``repo_id`` at ``revision``, sorted."""
        with self._lock:
            try:
                repo, commit = self._lookup_commit(repo_id, revision)
            except _HubError as error:
                raise KeyError(error.message) from None
            return sorted(repo.commits[commit])

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
            self.authorizations.append(handler.headers.get("Authorization"))
        split = urlsplit(raw_path)
        segments = split.path.lstrip("/").split("/")
        try:
            if method in ("POST", "PUT"):
                self._handle_write(handler, method, segments, parse_qs(split.query))
                return
            if self.read_token is not None and handler.headers.get("Authorization") != f"Bearer {self.read_token}":
                raise _HubError("Unauthorized", "Invalid credentials in Authorization header",
                                status=HTTPStatus.UNAUTHORIZED)
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
            if method == "GET" and filename in self.cut_downloads:
                self._send_cut(handler, headers, data, self.cut_downloads[filename])
                return
            self._send_file(handler, method, headers, data)
        except _HubError as error:
            headers = {"X-Error-Code": error.code, "X-Error-Message": error.message}
            if error.commit is not None:
                headers["X-Repo-Commit"] = error.commit
            body = json.dumps({"error": error.message, **error.extra}).encode()
            headers["Content-Type"] = "application/json"
            self._send(handler, error.status, headers, body, method)
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
                "private": repo.private,
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

    # ------------------------------------------------------------------ HTTP: the upload protocol

    def _handle_write(
        self, handler: _Handler, method: str, segments: list[str], query: dict[str, list[str]]
    ) -> None:
        """Route one POST/PUT of the upload protocol, after reading its whole body."""
        body = _read_body(handler)
        route = _write_route(method, segments)
        if route is None:
            raise _HubError("NotFound", f"LocalHub has no {method} endpoint at /{'/'.join(segments)}")
        name, repo_id, rest = route
        if name != "lfs-upload":  # the upload URL stands for a pre-signed storage URL: no Hub token
            self._check_token(handler)
        if name in self.failures:
            message = f"{name} failed on purpose (LocalHub.failures)"
            raise _HubError("InjectedFailure", message, status=self.failures[name])
        endpoints = {
            "create": self._create_repo,
            "validate-yaml": self._validate_yaml,
            "preupload": self._preupload,
            "lfs-batch": self._lfs_batch,
            "lfs-upload": self._lfs_upload,
            "lfs-verify": self._lfs_verify,
            "commit": self._commit,
        }
        status, payload = endpoints[name](repo_id, rest, body, query)
        self._send(handler, status, {"Content-Type": "application/json"}, json.dumps(payload).encode(), method)

    def _check_token(self, handler: _Handler) -> None:
        if self.write_token is not None and handler.headers.get("Authorization") != f"Bearer {self.write_token}":
            message = "Invalid credentials in Authorization header"
            raise _HubError("Unauthorized", message, status=HTTPStatus.UNAUTHORIZED)

    def _create_repo(self, _repo_id: str, _rest: list[str], body: bytes, _query: object) -> tuple[int, object]:
        """``POST /api/repos/create``: a new model repo whose first commit holds ``.gitattributes``."""
        payload = _json_object(body)
        name, organization = payload.get("name"), payload.get("organization")
        if payload.get("type", "model") != "model":
            raise _bad_request("LocalHub serves model repos only")
        if not _is_repo_part(name) or not (organization is None or _is_repo_part(organization)):
            raise _bad_request(f"invalid repo name {organization}/{name}")
        repo_id = f"{organization}/{name}" if organization else str(name)
        with self._lock:
            if repo_id in self._repos:
                raise _HubError(
                    "Conflict", "You already created this model repo", status=HTTPStatus.CONFLICT,
                    extra={"url": f"{self.endpoint}/{repo_id}"},
                )
            repo = self._repos[repo_id] = _Repo(private=payload.get("visibility") == "private")
            self._store_commit(repo_id, repo, {".gitattributes": self._gitattributes()}, "main")
        return HTTPStatus.OK, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id}

    def _gitattributes(self) -> bytes:
        return "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in self.lfs_suffixes).encode()

    def _validate_yaml(self, _repo_id: str, _rest: list[str], body: bytes, _query: object) -> tuple[int, object]:
        """``POST /api/validate-yaml``: the model card's front matter must be a YAML mapping (with a
        well-formed ``model-index`` if it has one)."""
        errors = _front_matter_errors(_json_object(body).get("content"))
        status = HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK
        return status, {"errors": [{"message": error} for error in errors], "warnings": []}

    def _preupload(self, repo_id: str, rest: list[str], body: bytes, query: dict[str, list[str]]) -> tuple[int, object]:
        """``POST /api/models/{repo_id}/preupload/{revision}``: how each file is to be sent, and the oid of
        the file already at that path (sha256 for LFS files, git blob sha1 otherwise)."""
        if query.get("create_pr"):
            raise _bad_request("LocalHub does not do pull requests")
        files = _json_object(body).get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise _bad_request("'files' must be a list of objects")
        answer = []
        with self._lock:
            repo, commit = self._lookup_commit(repo_id, unquote("/".join(rest)))
            existing = repo.commits[commit]
            for item in files:
                path = _clean_path(item.get("path"))
                mode = "lfs" if self.is_lfs(path) else "regular"
                oid = None
                if path in existing:
                    data = existing[path].read_bytes()
                    oid = sha256_hex(data) if mode == "lfs" else git_blob_sha1(data)
                answer.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return HTTPStatus.OK, {"files": answer, "commitOid": commit}

    def _lfs_batch(self, repo_id: str, _rest: list[str], body: bytes, _query: object) -> tuple[int, object]:
        """``POST /{repo_id}.git/info/lfs/objects/batch``: upload and verify URLs for each object the repo lacks."""
        payload = _json_object(body)
        if payload.get("operation") != "upload":
            raise _bad_request("LocalHub's LFS batch endpoint takes uploads only")
        objects = payload.get("objects")
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise _bad_request("'objects' must be a list of objects")
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                raise _HubError("RepoNotFound", f"Repository {repo_id} not found")
            stored = set(repo.lfs)
        return HTTPStatus.OK, {"transfer": "basic", "objects": [self._lfs_action(repo_id, o, stored) for o in objects]}

    def _lfs_action(self, repo_id: str, obj: dict, stored: set[str]) -> dict[str, object]:
        oid, size = obj.get("oid"), obj.get("size")
        if not (isinstance(oid, str) and _SHA256_RE.match(oid)) or not (isinstance(size, int) and size >= 0):
            error = {"code": 422, "message": "oid must be a sha256 in hex and size a byte count"}
            return {"oid": str(oid), "size": size if isinstance(size, int) else 0, "error": error}
        if oid in stored:
            return {"oid": oid, "size": size}  # no actions: the client skips the upload
        href = f"{self.endpoint}/__lfs/{repo_id}/{oid}"
        actions = {"upload": {"href": href, "header": {}}, "verify": {"href": f"{href}/verify", "header": {}}}
        return {"oid": oid, "size": size, "authenticated": True, "actions": actions}

    def _lfs_upload(self, repo_id: str, rest: list[str], body: bytes, _query: object) -> tuple[int, object]:
        """``PUT {endpoint}/__lfs/{repo_id}/{oid}``: store the object if its bytes hash to ``oid``."""
        oid = rest[0]
        if sha256_hex(body) != oid:
            raise _bad_request(f"the uploaded content hashes to {sha256_hex(body)}, not to {oid}")
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                raise _HubError("RepoNotFound", f"Repository {repo_id} not found")
            path = self.root / "lfs" / repo_id.replace("/", "--") / oid
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            repo.lfs[oid] = path
        return HTTPStatus.OK, {}

    def _lfs_verify(self, repo_id: str, rest: list[str], body: bytes, _query: object) -> tuple[int, object]:
        """``POST {endpoint}/__lfs/{repo_id}/{oid}/verify``: the object is stored, with the announced size."""
        payload = _json_object(body)
        with self._lock:
            repo = self._repos.get(repo_id)
            path = repo.lfs.get(rest[0]) if repo is not None else None
            if path is None or payload.get("oid") != rest[0] or payload.get("size") != path.stat().st_size:
                raise _HubError("LfsObjectNotFound", f"LFS object {rest[0]} was not uploaded as announced")
        return HTTPStatus.OK, {}

    def _commit(self, repo_id: str, rest: list[str], body: bytes, query: dict[str, list[str]]) -> tuple[int, object]:
        """``POST /api/models/{repo_id}/commit/{branch}``: apply the NDJSON operations to the branch's head
        and store the result as a new commit (all or nothing)."""
        if query.get("create_pr"):
            raise _bad_request("LocalHub does not do pull requests")
        branch = unquote("/".join(rest))
        header, operations = _commit_payload(body)
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                raise _HubError("RepoNotFound", f"Repository {repo_id} not found")
            head = repo.refs.get(branch)
            if head is None:
                raise _HubError("RevisionNotFound", f"Invalid rev id: {branch} (commits go to a branch)")
            parent = header.get("parentCommit")
            if parent is not None and not (isinstance(parent, str) and parent and head.startswith(parent)):
                raise _HubError(
                    "PreconditionFailed", f"parent commit {parent} is not the head of {branch} ({head})",
                    status=HTTPStatus.PRECONDITION_FAILED,
                )
            files = {name: path.read_bytes() for name, path in repo.commits[head].items()}
            for key, value in operations:
                _apply_operation(repo, files, key, value)
            files.update({path: data for path, data in self.tamper.items() if path in files})
            commit = self._store_commit(repo_id, repo, files, branch)
        url = f"{self.endpoint}/{repo_id}/commit/{commit}"
        return HTTPStatus.OK, {"success": True, "commitOid": commit, "commitUrl": url, "hookOutput": ""}

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

    @staticmethod
    def _send_cut(handler: _Handler, headers: dict[str, str], data: bytes, sent: int) -> None:
        """Announce the whole file, send its first ``sent`` bytes, and close the connection."""
        handler.send_response(HTTPStatus.OK)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:sent])
        handler.wfile.flush()
        handler.close_connection = True

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


# ---------------------------------------------------------------------- upload protocol helpers

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REPO_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FRONT_MATTER_RE = re.compile(r"\A---\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def _read_body(handler: _Handler) -> bytes:
    """The request body, sent with ``Content-Length`` or ``Transfer-Encoding: chunked``."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _write_route(method: str, segments: list[str]) -> tuple[str, str, list[str]] | None:
    """``(endpoint name, repo id, the path after it)`` of an upload-protocol request; None if unknown."""
    if method == "POST" and segments == ["api", "repos", "create"]:
        return "create", "", []
    if method == "POST" and segments == ["api", "validate-yaml"]:
        return "validate-yaml", "", []
    if method == "POST" and segments[:2] == ["api", "models"]:
        repo_id, rest = _split_repo_path(segments[2:], ("preupload", "commit"))
        if repo_id is not None and len(rest) >= 2:
            return rest[0], repo_id, rest[1:]
    if method == "POST" and segments[-4:] == ["info", "lfs", "objects", "batch"] and segments[-5].endswith(".git"):
        repo_parts = [*segments[:-5], segments[-5].removesuffix(".git")]
        if 1 <= len(repo_parts) <= 2 and all(repo_parts):
            return "lfs-batch", "/".join(repo_parts), []
    if segments[:1] == ["__lfs"] and len(segments) >= 3:
        if method == "PUT":
            return "lfs-upload", "/".join(segments[1:-1]), segments[-1:]
        if method == "POST" and segments[-1] == "verify" and len(segments) >= 4:
            return "lfs-verify", "/".join(segments[1:-2]), segments[-2:-1]
    return None


def _bad_request(message: str) -> _HubError:
    return _HubError("BadRequest", message, status=HTTPStatus.BAD_REQUEST)


def _json_object(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _bad_request(f"the body is not JSON ({error})") from error
    if not isinstance(payload, dict):
        raise _bad_request("the body must be a JSON object")
    return payload


def _is_repo_part(value: object) -> bool:
    return isinstance(value, str) and bool(_REPO_PART_RE.match(value)) and ".." not in value


def _clean_path(value: object) -> str:
    """A file path in a repo: relative, ``/``-separated, without empty, ``.`` or ``..`` parts."""
    if not isinstance(value, str) or not value or value.startswith("/") or "\\" in value:
        raise _bad_request(f"invalid path in repo: {value!r}")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise _bad_request(f"invalid path in repo: {value!r}")
    return value


def _front_matter_errors(content: object) -> list[str]:
    """What is wrong with a model card's YAML front matter (none for a card without one)."""
    import yaml  # PyYAML comes with huggingface_hub

    if not isinstance(content, str):
        return ["'content' must be the text of README.md"]
    if not content.startswith("---\n"):
        return []
    match = _FRONT_MATTER_RE.match(content)
    if match is None:
        return ["the YAML front matter is not closed by a '---' line"]
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        return [f"the YAML front matter does not parse: {' '.join(str(error).split())}"]
    if meta is None:
        return []
    if not isinstance(meta, dict):
        return ["the YAML front matter must be a mapping"]
    return _model_index_errors(meta.get("model-index"))


def _model_index_errors(model_index: object) -> list[str]:
    """The Hub's shape of ``model-index``: models with results, each a task type, a dataset (name and type)
    and metrics (type and value)."""
    if model_index is None:
        return []
    if not isinstance(model_index, list):
        return ["model-index must be a list"]
    errors = []
    for model in model_index:
        results = model.get("results") if isinstance(model, dict) else None
        if not isinstance(model, dict) or not model.get("name") or not isinstance(results, list):
            errors.append("each model-index entry needs a name and a list of results")
            continue
        for result in results:
            task, dataset = (result.get(k) if isinstance(result, dict) else None for k in ("task", "dataset"))
            metrics = result.get("metrics") if isinstance(result, dict) else None
            if not isinstance(task, dict) or not task.get("type"):
                errors.append("each model-index result needs task.type")
            if not isinstance(dataset, dict) or not dataset.get("name") or not dataset.get("type"):
                errors.append("each model-index result needs dataset.name and dataset.type")
            if not isinstance(metrics, list) or not all(
                isinstance(m, dict) and m.get("type") and "value" in m for m in metrics
            ):
                errors.append("each model-index metric needs a type and a value")
    return errors


def _commit_payload(body: bytes) -> tuple[dict, list[tuple[str, dict]]]:
    """The header and the ``(key, value)`` operations of a commit's NDJSON body."""
    try:
        lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _bad_request(f"the commit body is not NDJSON ({error})") from error
    if not lines or not all(isinstance(line, dict) and isinstance(line.get("value"), dict) for line in lines):
        raise _bad_request("every commit line must be an object with a 'key' and an object 'value'")
    if lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
        raise _bad_request("the commit must start with a header carrying a non-empty summary")
    return lines[0]["value"], [(line.get("key"), line["value"]) for line in lines[1:]]


def _apply_operation(repo: _Repo, files: dict[str, bytes], key: object, value: dict) -> None:
    """Apply one commit operation to ``files`` (path -> bytes); raises `_HubError` if it cannot be applied."""
    if key == "deletedFolder":
        prefix = _clean_path(str(value.get("path", "")).rstrip("/")) + "/"
        doomed = [name for name in files if name.startswith(prefix)]
        if not doomed:
            raise _HubError("EntryNotFound", f"A folder with this name doesn't exist: {prefix}")
        for name in doomed:
            del files[name]
        return
    path = _clean_path(value.get("path"))
    if key == "file":
        if value.get("encoding") != "base64" or not isinstance(value.get("content"), str):
            raise _bad_request(f"{path}: a 'file' operation carries base64 'content'")
        try:
            files[path] = base64.b64decode(value["content"], validate=True)
        except binascii.Error as error:
            raise _bad_request(f"{path}: bad base64 content ({error})") from error
    elif key == "lfsFile":
        stored = repo.lfs.get(value.get("oid")) if isinstance(value.get("oid"), str) else None
        if stored is None or value.get("algo", "sha256") != "sha256":
            raise _HubError("LfsObjectNotFound", f"{path}: LFS object {value.get('oid')} was never uploaded",
                            status=HTTPStatus.UNPROCESSABLE_ENTITY)
        data = stored.read_bytes()
        if value.get("size", len(data)) != len(data):
            raise _bad_request(f"{path}: size {value.get('size')} does not match the uploaded object ({len(data)})")
        files[path] = data
    elif key == "deletedFile":
        if files.pop(path, None) is None:
            raise _HubError("EntryNotFound", f"A file with this name doesn't exist: {path}")
    else:
        raise _bad_request(f"unknown commit operation {key!r}")
