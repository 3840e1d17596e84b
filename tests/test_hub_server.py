"""Tests for tests/hub_server.py: the real huggingface_hub client against `LocalHub`, no mocks."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import huggingface_hub
import pytest
from hub_server import LocalHub, git_blob_sha1, sha256_hex
from huggingface_hub import HfApi, hf_hub_download, snapshot_download

try:  # huggingface_hub >= 0.26 moved the exceptions to huggingface_hub.errors
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
except ImportError:  # pragma: no cover - older clients
    from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

_offline = getattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
pytestmark = pytest.mark.skipif(
    bool(_offline), reason="HF_HUB_OFFLINE is set: the client refuses any request"
)

REPO = "dcvae/test-model"
CONFIG = b'{"latent_dim": 128, "image_size": 32}\n'
WEIGHTS = hashlib.sha256(b"seed").digest() * 64  # 2 KiB of binary "weights"


def _make_folder(path: Path, config: bytes = CONFIG, weights: bytes = WEIGHTS) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_bytes(config)
    (path / "model.safetensors").write_bytes(weights)
    (path / "README.md").write_text("# test model\n")
    (path / "samples").mkdir(exist_ok=True)
    (path / "samples" / "grid.png").write_bytes(b"\x89PNG fake")
    return path


def _download(hub: LocalHub, cache: Path, filename: str, **kwargs: object) -> Path:
    return Path(hf_hub_download(REPO, filename, endpoint=hub.endpoint, cache_dir=cache, **kwargs))


def _storage(cache: Path) -> Path:
    return cache / ("models--" + REPO.replace("/", "--"))


def test_download_config_and_weights(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    cache = tmp_path / "cache"

    config_path = _download(local_hub, cache, "config.json")
    weights_path = _download(local_hub, cache, "model.safetensors")

    assert config_path.read_bytes() == CONFIG
    assert weights_path.read_bytes() == WEIGHTS
    # Snapshot folder is named after the commit; blobs after the ETag (git sha1 / LFS sha256).
    assert config_path.parent == _storage(cache) / "snapshots" / commit
    assert weights_path.parent == _storage(cache) / "snapshots" / commit
    assert Path(os.path.realpath(config_path)).name == git_blob_sha1(CONFIG)
    assert Path(os.path.realpath(weights_path)).name == hashlib.sha256(WEIGHTS).hexdigest()
    assert sorted(p.name for p in (_storage(cache) / "blobs").iterdir()) == sorted(
        [git_blob_sha1(CONFIG), sha256_hex(WEIGHTS)]
    )
    assert (_storage(cache) / "refs" / "main").read_text() == commit


def test_nested_file_and_headers(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    path = _download(local_hub, tmp_path / "cache", "samples/grid.png")
    assert path.read_bytes() == b"\x89PNG fake"
    assert path == _storage(tmp_path / "cache") / "snapshots" / commit / "samples" / "grid.png"

    lfs = local_hub.file_headers(REPO, "main", "model.safetensors")
    assert lfs["X-Repo-Commit"] == commit
    assert lfs["ETag"] == lfs["X-Linked-Etag"] == f'"{sha256_hex(WEIGHTS)}"'
    assert lfs["X-Linked-Size"] == str(len(WEIGHTS))
    git = local_hub.file_headers(REPO, commit, "config.json")
    assert git["ETag"] == f'"{git_blob_sha1(CONFIG)}"'
    assert "X-Linked-Etag" not in git and "X-Linked-Size" not in git
    assert not any(key.lower().startswith("x-xet") for key in {**lfs, **git})


def test_revision_by_branch_and_commit(local_hub: LocalHub, tmp_path: Path) -> None:
    old = local_hub.add_revision(REPO, _make_folder(tmp_path / "v1"))
    new_config = b'{"latent_dim": 256}\n'
    new = local_hub.add_revision(REPO, _make_folder(tmp_path / "v2", config=new_config))
    assert new != old
    dev = local_hub.add_revision(REPO, _make_folder(tmp_path / "v3", config=b"{}"), branch="dev")
    cache = tmp_path / "cache"

    assert _download(local_hub, cache, "config.json").read_bytes() == new_config  # main moved
    assert _download(local_hub, cache, "config.json", revision="main").parent.name == new
    by_old = _download(local_hub, cache, "config.json", revision=old)
    assert by_old.read_bytes() == CONFIG and by_old.parent.name == old
    by_new = _download(local_hub, cache, "config.json", revision=new)
    assert by_new.read_bytes() == new_config
    by_dev = _download(local_hub, cache, "config.json", revision="dev")
    assert by_dev.read_bytes() == b"{}" and by_dev.parent.name == dev
    assert (_storage(cache) / "refs" / "dev").read_text() == dev
    # The same weights in both commits share one blob.
    _download(local_hub, cache, "model.safetensors", revision=old)
    _download(local_hub, cache, "model.safetensors", revision=new)
    assert sum(1 for _ in (_storage(cache) / "blobs").iterdir()) == 4


def test_add_revision_is_deterministic(tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "src")
    first = LocalHub(tmp_path / "a").add_revision(REPO, folder)
    second = LocalHub(tmp_path / "b").add_revision(REPO, folder)
    assert first == second
    assert LocalHub(tmp_path / "c").add_revision("other/repo", folder) != first


def test_branch_name_with_slash(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"), branch="refs/pr/1")
    path = _download(local_hub, tmp_path / "cache", "config.json", revision="refs/pr/1")
    assert path.read_bytes() == CONFIG and path.parent.name == commit
    assert ("HEAD", f"/{REPO}/resolve/refs%2Fpr%2F1/config.json") in local_hub.requests


def test_not_found_errors(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    cache = tmp_path / "cache"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "config.json", endpoint=local_hub.endpoint, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError):
        _download(local_hub, cache, "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        _download(local_hub, cache, "config.json", revision="f" * 40)
    with pytest.raises(EntryNotFoundError):
        _download(local_hub, cache, "missing.safetensors")
    # The EntryNotFound 404 carries X-Repo-Commit, which the client uses to cache the non-existence.
    assert (_storage(cache) / ".no_exist" / commit / "missing.safetensors").exists()


def test_cache_after_server_stops(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    cache = tmp_path / "cache"
    online = _download(local_hub, cache, "model.safetensors")
    endpoint = local_hub.endpoint
    local_hub.stop()

    with pytest.raises(OSError):  # the port is closed: connections are refused
        socket.create_connection(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), timeout=1).close()

    offline = _download(local_hub, cache, "model.safetensors", local_files_only=True)
    assert offline == online and offline.read_bytes() == WEIGHTS
    assert _download(local_hub, cache, "model.safetensors", revision=commit, local_files_only=True) == online
    # Server down, local_files_only=False: huggingface_hub 2.4.0 catches the ConnectError of the HEAD call
    # (no retry) and silently returns the cached file resolved through refs/main. For a file that is NOT
    # cached it instead retries the HEAD with backoff (1+2+4+8+8 s, ~23 s) and then raises
    # LocalEntryNotFoundError from httpx2.ConnectError, so that case is deliberately not exercised here.
    # The loader's offline fallback (tests/test_loading_hub.py) relies on this behaviour, so it is asserted.
    assert _download(local_hub, cache, "model.safetensors") == online


def test_requests_are_recorded(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    cache = tmp_path / "cache"
    _download(local_hub, cache, "config.json")
    assert local_hub.requests == [
        ("HEAD", f"/{REPO}/resolve/main/config.json"),
        ("GET", f"/{REPO}/resolve/main/config.json"),
    ]
    _download(local_hub, cache, "config.json")  # cached: HEAD only, no GET
    assert local_hub.requests[2:] == [("HEAD", f"/{REPO}/resolve/main/config.json")]
    _download(local_hub, cache, "config.json", revision=commit)  # cached commit: no request at all
    assert len(local_hub.requests) == 3


def test_replace_file_changes_served_bytes_and_headers(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    tampered = b"not the weights you are looking for"
    local_hub.replace_file(REPO, "main", "model.safetensors", tampered)

    headers = local_hub.file_headers(REPO, commit, "model.safetensors")
    assert headers["X-Linked-Etag"] == f'"{sha256_hex(tampered)}"'
    assert headers["X-Linked-Size"] == str(len(tampered))
    path = _download(local_hub, tmp_path / "cache", "model.safetensors", revision=commit)
    assert path.read_bytes() == tampered  # the client only checks the size, not the sha256
    assert Path(os.path.realpath(path)).name == sha256_hex(tampered)

    with pytest.raises(KeyError):
        local_hub.replace_file(REPO, "main", "absent.bin", b"")
    with pytest.raises(KeyError):
        local_hub.replace_file(REPO, "nope", "config.json", b"")


def test_snapshot_download_and_model_info(local_hub: LocalHub, tmp_path: Path) -> None:
    commit = local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    folder = Path(
        snapshot_download(REPO, revision="main", endpoint=local_hub.endpoint, cache_dir=tmp_path / "c")
    )
    assert folder.name == commit
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "config.json", "model.safetensors", "samples/grid.png"]
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS

    info = HfApi(endpoint=local_hub.endpoint).model_info(REPO, revision=commit, files_metadata=True)
    assert info.sha == commit
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(files)
    assert siblings["model.safetensors"].lfs is not None
    assert siblings["model.safetensors"].lfs.sha256 == sha256_hex(WEIGHTS)
    assert siblings["config.json"].lfs is None


def test_range_requests(local_hub: LocalHub, tmp_path: Path) -> None:
    local_hub.add_revision(REPO, _make_folder(tmp_path / "src"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"{local_hub.endpoint}/{REPO}/resolve/main/model.safetensors"

    with opener.open(urllib.request.Request(url, headers={"Range": "bytes=100-"})) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"
        assert response.read() == WEIGHTS[100:]
    with opener.open(urllib.request.Request(url, headers={"Range": "bytes=0-9"})) as response:
        assert response.status == 206 and response.read() == WEIGHTS[:10]
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        opener.open(urllib.request.Request(url, headers={"Range": f"bytes={len(WEIGHTS)}-"}))
    assert excinfo.value.code == 416

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        opener.open(f"{local_hub.endpoint}/api/models/{REPO}/revision/nope")
    assert excinfo.value.code == 404 and excinfo.value.headers["X-Error-Code"] == "RevisionNotFound"
    with opener.open(f"{local_hub.endpoint}/api/models/{REPO}") as response:
        assert json.loads(response.read())["id"] == REPO


# ----------------------------------------------------------------------------- uploads


@pytest.fixture
def lfs_uploads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server speaks Git LFS, not Xet: the client's own switch, set after its import."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)


def test_upload_folder_makes_a_commit_the_downloads_serve(local_hub: LocalHub, tmp_path: Path, lfs_uploads) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=local_hub.endpoint, token=False)
    assert api.create_repo(REPO) == f"{local_hub.endpoint}/{REPO}"
    api.create_repo(REPO, exist_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.create_repo(REPO)  # 409: it exists
    first = api.upload_folder(repo_id=REPO, folder_path=_make_folder(tmp_path / "v1"), commit_message="v1").oid
    assert first == local_hub.head(REPO)
    assert local_hub.files(REPO) == [".gitattributes", "README.md", "config.json", "model.safetensors",
                                     "samples/grid.png"]
    puts = [path for method, path in local_hub.requests if method == "PUT"]
    assert len(puts) == 2 and all(path.startswith(f"/__lfs/{REPO}/") for path in puts)  # weights and PNG by LFS
    cache = tmp_path / "cache"
    assert _download(local_hub, cache, "model.safetensors", revision=first).read_bytes() == WEIGHTS
    assert _download(local_hub, cache, "samples/grid.png", revision=first).read_bytes() == b"\x89PNG fake"

    second = api.upload_folder(
        repo_id=REPO, folder_path=_make_folder(tmp_path / "v2", config=b"{}"), commit_message="v2",
        delete_patterns="samples/*", allow_patterns=["*.json", "*.md", "*.safetensors"],
    ).oid
    assert second != first and local_hub.head(REPO) == second
    assert "samples/grid.png" not in local_hub.files(REPO) and "samples/grid.png" in local_hub.files(REPO, first)
    assert _download(local_hub, cache, "config.json").read_bytes() == b"{}"
    assert local_hub.read_file(REPO, first, "config.json") == CONFIG
    assert sum(1 for method, _ in local_hub.requests if method == "PUT") == 2  # the same weights: no new upload


def test_failed_or_stale_commits_change_nothing(local_hub: LocalHub, tmp_path: Path, lfs_uploads) -> None:
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=local_hub.endpoint, token=False)
    api.create_repo(REPO)
    head = local_hub.head(REPO)
    local_hub.failures["commit"] = 500
    with pytest.raises(HfHubHTTPError) as info:
        api.upload_folder(repo_id=REPO, folder_path=_make_folder(tmp_path / "v1"), commit_message="v1")
    assert info.value.response.status_code == 500
    assert local_hub.head(REPO) == head and local_hub.files(REPO) == [".gitattributes"]
    del local_hub.failures["commit"]
    with pytest.raises(HfHubHTTPError) as info:  # made on top of a commit that is no longer the head
        api.create_commit(REPO, operations=[CommitOperationAdd("x.json", b"{}")], commit_message="x",
                          parent_commit="0" * 40)
    assert info.value.response.status_code == 412 and local_hub.head(REPO) == head
    local_hub.write_token = "right"
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=local_hub.endpoint, token="wrong").create_commit(
            REPO, operations=[CommitOperationAdd("x.json", b"{}")], commit_message="x")
    assert local_hub.head(REPO) == head
