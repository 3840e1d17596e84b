"""load_model through the real huggingface_hub client against a local Hub server (tests/hub_server.py):
download and cache, offline use, revision pinning, error mapping, manifest checksums and tampering.

Nothing of dcvae-tools or of the Hub client is mocked. Every call passes ``endpoint=`` and ``cache_dir=``
explicitly; a stopped server is only ever asked for files that are cached (or with
``local_files_only=True``), since the client retries for ~20 s on files it has not cached.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hub_server import LocalHub
from huggingface_hub import constants as hf_constants
from safetensors.torch import load_file, save_file

from dcvae_tools import load_model, save_pretrained
from dcvae_tools.config import ModelConfig
from dcvae_tools.errors import ChecksumError, ConfigError, DCVAEError, ModelNotFoundError, OfflineError
from dcvae_tools.manifest import MANIFEST_ENV, load_manifest
from dcvae_tools.model import DCVAE, AttributeVector

pytestmark = [
    pytest.mark.skipif(
        bool(getattr(hf_constants, "HF_HUB_OFFLINE", False)),
        reason="HF_HUB_OFFLINE is set: the client refuses any request, even to the local test server",
    ),
    pytest.mark.usefixtures("one_thread"),
]

LATENT = 16
REPO = "dcvae-test/tiny"
FILES = ("config.json", "model.safetensors", "attributes.safetensors", "README.md")


def make_model(seed: int = 0, attributes: bool = True) -> DCVAE:
    torch.manual_seed(seed)
    model = DCVAE(
        ModelConfig(
            architecture="autogan32",
            image_size=32,
            channels=3,
            latent_dim=LATENT,
            architecture_args={"gf_dim": 16, "df_dim": 16},
            dataset="unit-test",
        )
    )
    if attributes:
        direction = torch.randn(LATENT, generator=torch.Generator().manual_seed(seed + 1))
        model.attributes = {"smile": AttributeVector("smile", direction, 20, 20, metadata={"seed": seed})}
    return model


def _outputs(model: DCVAE) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(2))
    return model.encode(x), model.decode(z)


def assert_same_model(expected: DCVAE, got: DCVAE) -> None:
    e1, d1 = _outputs(expected)
    e2, d2 = _outputs(got)
    assert torch.equal(e1, e2)
    assert torch.equal(d1, d2)
    assert sorted(expected.attributes) == sorted(got.attributes)
    for name, attr in expected.attributes.items():
        assert torch.equal(attr.direction, got.attributes[name].direction)
        assert got.attributes[name].metadata == attr.metadata


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[DCVAE, Path]:
    model = make_model()
    folder = save_pretrained(model, tmp_path_factory.mktemp("tiny") / "release")
    return model, folder


def _load(hub: LocalHub, cache: Path, name: str = REPO, **kw) -> DCVAE:
    return load_model(name, endpoint=hub.endpoint, cache_dir=cache, **kw)


def _storage(cache: Path, repo: str = REPO) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


# ----------------------------------------------------------------------------- download, cache, offline


def test_download_then_offline(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    model, folder = tiny
    commit = local_hub.add_revision(REPO, folder)
    cache = tmp_path / "cache"

    loaded = _load(local_hub, cache)
    assert_same_model(model, loaded)
    assert loaded.source.source == "hub" and loaded.source.revision == commit
    fetched = {path.rsplit("/", 1)[-1] for method, path in local_hub.requests if method == "GET"}
    assert fetched == set(FILES)  # every file came through the server
    assert (_storage(cache) / "snapshots" / commit / "model.safetensors").is_file()

    # offline while the server still runs: it must not be asked anything
    before = len(local_hub.requests)
    offline = _load(local_hub, cache, local_files_only=True)
    assert_same_model(model, offline)
    assert len(local_hub.requests) == before

    local_hub.stop()
    assert_same_model(model, _load(local_hub, cache, local_files_only=True))
    start = time.monotonic()
    unreachable = _load(local_hub, cache)  # not asked to be offline, but the Hub is down: use the cache
    # not a speed target: the client's own retries against a refused port take 23 s (1+2+4+8+8 s of backoff)
    assert time.monotonic() - start < 10.0, "the load retried the unreachable Hub instead of using the cache"
    assert_same_model(model, unreachable)
    assert len(local_hub.requests) == before


def test_cached_model_without_attributes_loads_while_hub_is_down(local_hub: LocalHub, tmp_path: Path) -> None:
    """The optional attributes file is absent from the repo: once the cache knows that, a load with
    the Hub unreachable must not wait for (or fail on) that file."""
    model = make_model(seed=4, attributes=False)
    local_hub.add_revision(REPO, save_pretrained(model, tmp_path / "release"))
    cache = tmp_path / "cache"
    assert_same_model(model, _load(local_hub, cache))
    assert_same_model(model, _load(local_hub, cache, local_files_only=True))
    local_hub.stop()
    start = time.monotonic()
    loaded = _load(local_hub, cache)
    assert time.monotonic() - start < 10.0, "the load retried the unreachable Hub (23 s of backoff) for a file"
    assert_same_model(model, loaded)
    assert loaded.attributes == {}


def test_revision_pinning(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    first, folder = tiny
    second = make_model(seed=9)
    commit1 = local_hub.add_revision(REPO, folder)
    commit2 = local_hub.add_revision(REPO, save_pretrained(second, tmp_path / "second"))
    assert commit1 != commit2
    cache = tmp_path / "cache"
    assert_same_model(second, _load(local_hub, cache))  # main moved on
    old = _load(local_hub, cache, revision=commit1)
    assert_same_model(first, old)
    assert old.source.revision == commit1
    assert any(f"/resolve/{commit1}/model.safetensors" in path for _, path in local_hub.requests)
    local_hub.stop()
    assert_same_model(first, _load(local_hub, cache, revision=commit1, local_files_only=True))
    assert_same_model(second, _load(local_hub, cache, revision=commit2, local_files_only=True))


# ----------------------------------------------------------------------------- errors


def test_unknown_repo(local_hub: LocalHub, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="dcvae-test/nothing-here"):
        _load(local_hub, tmp_path / "cache", "dcvae-test/nothing-here")


def test_unknown_revision(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    local_hub.add_revision(REPO, tiny[1])
    with pytest.raises(ModelNotFoundError, match="no-such-branch"):
        _load(local_hub, tmp_path / "cache", revision="no-such-branch")
    with pytest.raises(ModelNotFoundError, match="0123456789abcdef0123456789abcdef01234567"):
        _load(local_hub, tmp_path / "cache", revision="0123456789abcdef0123456789abcdef01234567")


def test_repo_without_weights(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("config.json", "README.md"):
        (src / name).write_bytes((tiny[1] / name).read_bytes())
    local_hub.add_revision(REPO, src)
    with pytest.raises(ModelNotFoundError, match=r"model\.safetensors"):
        _load(local_hub, tmp_path / "cache")


def test_malformed_config_stops_before_weights(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in FILES:
        (src / name).write_bytes((tiny[1] / name).read_bytes())
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    config["latent_dim"] = "sixteen"
    (src / "config.json").write_text(json.dumps(config), encoding="utf-8")
    local_hub.add_revision(REPO, src)
    with pytest.raises(ConfigError, match="latent_dim"):
        _load(local_hub, tmp_path / "cache")
    paths = [path for _, path in local_hub.requests]
    assert any(p.endswith("/config.json") for p in paths)
    assert not any("model.safetensors" in p for p in paths)


def test_offline_without_cache_says_how_to_fix(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    local_hub.add_revision(REPO, tiny[1])
    with pytest.raises(OfflineError) as info:
        _load(local_hub, tmp_path / "empty-cache", local_files_only=True)
    message = str(info.value)
    assert REPO in message
    assert "has to come from the network once" in message
    assert f"run `dcvae download {REPO}` without --offline / local_files_only where the Hub is reachable" in message
    assert local_hub.requests == []


@pytest.mark.parametrize(("environment", "expected"), [
    ({}, None), ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"), ({"TRANSFORMERS_OFFLINE": "yes"}, "TRANSFORMERS_OFFLINE"),
    ({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"}, None),  # the first one set decides, as in huggingface_hub
    ({"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "1"}, "TRANSFORMERS_OFFLINE"),
])
def test_offline_variables_follow_huggingface_hubs_rule(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str | None
) -> None:
    from dcvae_tools.hub import OFFLINE_VARIABLES, _offline_variable

    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert _offline_variable() == expected


def test_overlapping_offline_blocks_put_the_clients_flag_back() -> None:
    """Two requests of a server overlap (the first ends before the second): the flag stays on until the last
    ends, then is the client's again, not left on for good."""
    from dcvae_tools.hub import hub_offline_mode

    before = hf_constants.HF_HUB_OFFLINE
    first, second = hub_offline_mode(True), hub_offline_mode(True)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert hf_constants.HF_HUB_OFFLINE is True  # the second is still inside
    second.__exit__(None, None, None)
    assert before == hf_constants.HF_HUB_OFFLINE


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_by_variable_without_cache_names_that_variable(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    local_hub.add_revision(REPO, tiny[1])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "1")  # set after huggingface_hub was imported
    with pytest.raises(OfflineError) as info:
        _load(local_hub, tmp_path / "empty-cache")
    assert f"unset {variable} and run `dcvae download {REPO}` where the Hub is reachable" in str(info.value)
    assert local_hub.requests == []


def test_an_unreachable_hub_fails_fast_with_one_message(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path
) -> None:
    local_hub.add_revision(REPO, tiny[1])
    local_hub.stop()  # nothing listens on its port any more
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        _load(local_hub, tmp_path / "empty-cache")
    assert time.monotonic() - start < 10.0, "retried: the client alone retries a refused port for 23 s"
    message = str(info.value)
    assert "could not reach the Hub" in message and local_hub.endpoint in message and REPO in message
    assert "HF_ENDPOINT" in message and "--offline" in message


# ----------------------------------------------------------------------------- cache tampering (no manifest)


def _blob(cache: Path, commit: str, filename: str) -> Path:
    return (_storage(cache) / "snapshots" / commit / filename).resolve()


@pytest.mark.parametrize("filename", ["model.safetensors", "config.json"])
def test_tampered_cache_blob_is_refused_and_removed(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, filename: str
) -> None:
    model, folder = tiny
    commit = local_hub.add_revision(REPO, folder)
    cache = tmp_path / "cache"
    _load(local_hub, cache)
    blob = _blob(cache, commit, filename)
    announced = blob.name  # the cache names blobs after the hash the Hub announced
    data = bytearray(blob.read_bytes())
    data[-2] ^= 0x01  # a one-bit change at the end (JSON whitespace / a weight's low bits)
    blob.write_bytes(bytes(data))
    tampered_hash = (
        hashlib.sha256(data).hexdigest()
        if len(announced) == 64
        else hashlib.sha1(b"blob %d\0" % len(data) + bytes(data)).hexdigest()
    )

    with pytest.raises(ChecksumError) as info:
        _load(local_hub, cache, local_files_only=True)
    message = str(info.value)
    assert filename in message and announced in message and tampered_hash in message
    assert not (_storage(cache) / "snapshots" / commit / filename).exists()
    assert not blob.exists()

    # the next online load downloads the file again and works
    assert_same_model(model, _load(local_hub, cache))


# ----------------------------------------------------------------------------- manifest


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Write a weights manifest into tmp and point dcvae-tools at it (DCVAE_MANIFEST)."""
    path = tmp_path / "weights_manifest.json"

    def write(models: dict) -> None:
        path.write_text(json.dumps({"format_version": 1, "default_model": None, "models": models}), encoding="utf-8")
        load_manifest.cache_clear()
        with pytest.warns(UserWarning, match=MANIFEST_ENV):  # the swapped trust root is announced (once: cached)
            load_manifest()

    monkeypatch.setenv(MANIFEST_ENV, str(path))
    write({})
    yield write
    load_manifest.cache_clear()
    monkeypatch.delenv(MANIFEST_ENV)
    load_manifest.cache_clear()


def _entry(repo_id: str, commit: str, folder: Path) -> dict:
    return {
        "repo_id": repo_id,
        "revision": commit,
        "files": {name: {"sha256": _sha256(folder / name), "size": (folder / name).stat().st_size} for name in FILES},
        "dataset": "unit-test",
        "resolution": 32,
        "channels": 3,
        "latent_dim": LATENT,
        "architecture": "autogan32",
        "preset": "tiny",
        "bundled": False,
    }


def test_manifest_name_loads_the_pinned_revision(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, manifest
) -> None:
    model, folder = tiny
    commit = local_hub.add_revision(REPO, folder)
    manifest({"tiny-test": _entry(REPO, commit, folder)})
    local_hub.add_revision(REPO, save_pretrained(make_model(seed=5), tmp_path / "newer"))  # main moves on
    cache = tmp_path / "cache"

    loaded = _load(local_hub, cache, "tiny-test")
    assert_same_model(model, loaded)
    assert loaded.source.source == "hub" and loaded.source.revision == commit
    file_requests = [path for _, path in local_hub.requests if "/resolve/" in path]
    assert file_requests and all(f"/resolve/{commit}/" in path for path in file_requests)

    with pytest.raises(ModelNotFoundError, match=REPO):  # names are pinned; the repo id is the way out
        _load(local_hub, cache, "tiny-test", revision="main")
    local_hub.stop()
    assert_same_model(model, _load(local_hub, cache, "tiny-test", local_files_only=True))


def test_manifest_checksum_mismatch(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, manifest) -> None:
    _, folder = tiny
    bad = tmp_path / "tampered"
    bad.mkdir()
    for name in FILES:
        (bad / name).write_bytes((folder / name).read_bytes())
    tensors = load_file(str(bad / "model.safetensors"))
    tensors["decoder.stem.bias"] = tensors["decoder.stem.bias"] + 0.5  # same size, different bytes
    save_file(tensors, str(bad / "model.safetensors"), metadata={"format": "pt"})
    served, expected = _sha256(bad / "model.safetensors"), _sha256(folder / "model.safetensors")
    assert served != expected
    repo = "dcvae-test/tampered"
    commit = local_hub.add_revision(repo, bad)
    manifest({"tiny-tampered": _entry(repo, commit, folder)})  # sha256s of the genuine files
    cache = tmp_path / "cache"

    with pytest.raises(ChecksumError) as info:
        _load(local_hub, cache, "tiny-tampered")
    message = str(info.value)
    assert "model.safetensors" in message and served in message and expected in message
    snapshot_file = _storage(cache, repo) / "snapshots" / commit / "model.safetensors"
    assert not snapshot_file.exists()
    assert not (_storage(cache, repo) / "blobs" / served).exists()
    # and nothing usable is left behind: an offline load cannot pick the bad file up
    with pytest.raises(OfflineError):
        _load(local_hub, cache, "tiny-tampered", local_files_only=True)


def test_a_released_latent_prior_comes_through_the_hub_verified(
    local_hub: LocalHub, tmp_path: Path, manifest
) -> None:
    from dcvae_tools.prior import LATENT_PRIOR_NAME
    from training.latent_prior import fit_latent_prior

    model = make_model(seed=3)
    model.latent_prior = fit_latent_prior(torch.randn(200, LATENT, generator=torch.Generator().manual_seed(0)) + 3, 2)
    folder = save_pretrained(model, tmp_path / "with-prior")
    repo = "dcvae-test/with-prior"
    commit = local_hub.add_revision(repo, folder)
    entry = _entry(repo, commit, folder)
    entry["files"][LATENT_PRIOR_NAME] = {"sha256": _sha256(folder / LATENT_PRIOR_NAME),
                                         "size": (folder / LATENT_PRIOR_NAME).stat().st_size}
    genuine = dict(entry["files"][LATENT_PRIOR_NAME])
    entry["files"][LATENT_PRIOR_NAME]["sha256"] = "0" * 64
    manifest({"with-prior": {**entry, "files": {**entry["files"], LATENT_PRIOR_NAME: genuine}},
              "prior-tampered": entry})

    loaded = _load(local_hub, tmp_path / "cache", "with-prior")
    fetched = {path.rsplit("/", 1)[-1] for method, path in local_hub.requests if method == "GET"}
    assert LATENT_PRIOR_NAME in fetched
    assert loaded.latent_prior is not None
    expected = model.latent_prior.sample(5, torch.Generator().manual_seed(1))
    assert torch.allclose(loaded.random_latents(5, seed=1), expected, atol=1e-5)  # stored in float32
    with pytest.raises(ChecksumError, match=LATENT_PRIOR_NAME):
        _load(local_hub, tmp_path / "cache2", "prior-tampered")


@pytest.mark.parametrize(("variable", "before_import"), [
    ("HF_HUB_OFFLINE", True), ("HF_HUB_OFFLINE", False), ("TRANSFORMERS_OFFLINE", True),
    ("TRANSFORMERS_OFFLINE", False),
])
def test_a_cache_filled_before_latent_priors_existed_loads_under_hf_hub_offline(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    variable: str, before_import: bool,
) -> None:
    """An older dcvae-tools never asked for latent_prior.safetensors, so its cache has no record that the file
    is absent; with HF_HUB_OFFLINE=1 (and no local_files_only) that optional file is skipped, not an error.

    huggingface_hub also takes TRANSFORMERS_OFFLINE=1, and reads either once, at import: a variable set later
    (``before_import=False``) must still keep every request off the network."""
    model, folder = tiny
    commit = local_hub.add_revision(REPO, folder)
    cache = tmp_path / "cache"
    _load(local_hub, cache)
    marker = _storage(cache) / ".no_exist" / commit / "latent_prior.safetensors"
    assert marker.exists()  # the client recorded the 404
    marker.unlink()  # as an older dcvae-tools leaves the cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", before_import)
    before = len(local_hub.requests)
    loaded = _load(local_hub, cache)
    assert_same_model(model, loaded)
    assert loaded.latent_prior is None and len(local_hub.requests) == before


# ----------------------------------------------------------------------------- integrity


def _unlink_cache(cache: Path, repo: str = REPO) -> None:
    """Turn a symlinked Hub cache into the layout the client writes where symlinks are unavailable (Windows
    without developer mode): plain copies in the snapshot folder, no blobs named after their hash."""
    storage = _storage(cache, repo)
    for link in (storage / "snapshots").rglob("*"):
        if link.is_symlink():
            blob = link.resolve()
            link.unlink()
            link.write_bytes(blob.read_bytes())
            blob.unlink()
    assert not any((storage / "blobs").iterdir())


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_cache_without_symlinks_is_still_verified_every_time(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, manifest
) -> None:
    model, folder = tiny
    commit = local_hub.add_revision(REPO, folder)
    manifest({"tiny-test": _entry(REPO, commit, folder)})
    cache = tmp_path / "cache"
    _load(local_hub, cache)
    _unlink_cache(cache)
    weights = _storage(cache) / "snapshots" / commit / "model.safetensors"

    # intact plain copies load: a released name against the manifest even offline, a repo via the Hub's hashes
    assert_same_model(model, _load(local_hub, cache, "tiny-test", local_files_only=True))
    assert_same_model(model, _load(local_hub, cache))
    heads = [path for method, path in local_hub.requests if method == "HEAD"]
    assert heads  # the hashes were asked from the Hub
    # offline a repo's plain copy has nothing to be checked against: refused, with the way out
    with pytest.raises(ChecksumError, match=r"cannot verify .* offline"):
        _load(local_hub, cache, local_files_only=True)

    _flip_last_byte(weights)
    with pytest.raises(ChecksumError, match=r"model\.safetensors"):
        _load(local_hub, cache, "tiny-test", local_files_only=True)
    weights.write_bytes((folder / "model.safetensors").read_bytes())
    _flip_last_byte(weights)
    with pytest.raises(ChecksumError, match=r"model\.safetensors"):
        _load(local_hub, cache)
    local_hub.stop()


def test_a_local_folder_never_shadows_a_released_name(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, folder = tiny
    commit = local_hub.add_revision(REPO, folder)
    manifest({"tiny-test": _entry(REPO, commit, folder)})
    work = tmp_path / "work"
    impostor = make_model(seed=9)
    save_pretrained(impostor, work / "tiny-test")  # an unverified folder that happens to carry the name
    monkeypatch.chdir(work)
    cache = tmp_path / "cache"

    released = _load(local_hub, cache, "tiny-test")
    assert released.source.source == "hub"
    assert_same_model(model, released)
    for as_path in ("./tiny-test", "tiny-test/", str(work / "tiny-test")):
        local = _load(local_hub, cache, as_path)
        assert local.source.source == "local"
        assert_same_model(impostor, local)
    with pytest.raises(ModelNotFoundError, match="given as a path"):
        _load(local_hub, cache, "./not-here")
    # one of a release's files stands for its folder; any other file is not a model
    assert _load(local_hub, cache, "./tiny-test/config.json").source.source == "local"
    (work / "tiny-test" / "notes.txt").write_text("mine")
    with pytest.raises(ModelNotFoundError, match=r"notes\.txt is a file, not a model: give the folder"):
        _load(local_hub, cache, "./tiny-test/notes.txt")
    with pytest.raises(ModelNotFoundError, match="the model name is empty"):
        _load(local_hub, cache, "")
    (work / "tiny-test-notes").write_text("a file named like nothing released")
    with pytest.raises(ModelNotFoundError, match="is a file, not a model"):
        _load(local_hub, cache, "tiny-test-notes")
    # a file that happens to carry a released name never hides the release
    (work / "tiny-test").rename(work / "impostor")
    (work / "tiny-test").write_text("notes")
    assert _load(local_hub, cache, "tiny-test").source.source == "hub"
    local_hub.stop()


def test_loading_reads_each_file_once_and_checks_those_bytes(tiny: tuple[DCVAE, Path], tmp_path: Path) -> None:
    """The weights arrive through a pipe that can be read only once: hashing and loading must share one read."""
    import os
    import threading

    from dcvae_tools.release import load_release

    model, folder = tiny
    served = tmp_path / "served"
    served.mkdir()
    for name in FILES:
        if name != "model.safetensors":
            (served / name).write_bytes((folder / name).read_bytes())
    os.mkfifo(served / "model.safetensors")
    payload = (folder / "model.safetensors").read_bytes()

    def serve_once() -> None:
        with open(served / "model.safetensors", "wb") as pipe:
            pipe.write(payload)

    writer = threading.Thread(target=serve_once, daemon=True)
    writer.start()
    expected = {name: _sha256(folder / name) for name in FILES}
    assert_same_model(model, load_release(served, expected_sha256=expected))
    writer.join(timeout=5)
    assert not writer.is_alive()


def test_manifest_override_is_announced(tmp_path: Path, manifest) -> None:
    load_manifest.cache_clear()
    with pytest.warns(UserWarning, match=f"{MANIFEST_ENV} is set: released model names resolve"):
        load_manifest()


def test_a_manifest_override_that_is_missing_or_broken_is_named(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"models": {', encoding="utf-8")
    try:
        for path, words in ((tmp_path / "typo.json", "no such file"), (broken, "cannot read the weights manifest")):
            monkeypatch.setenv(MANIFEST_ENV, str(path))
            load_manifest.cache_clear()
            with pytest.raises(ConfigError, match=words) as info, pytest.warns(UserWarning, match=MANIFEST_ENV):
                load_manifest()
            assert path.name in str(info.value)
    finally:
        monkeypatch.delenv(MANIFEST_ENV)
        load_manifest.cache_clear()


def test_a_manifest_flag_must_be_a_boolean(tiny: tuple[DCVAE, Path]) -> None:
    from dcvae_tools.manifest import parse_manifest

    entry = {**_entry(REPO, "0" * 40, tiny[1]), "bundled": "false"}
    with pytest.raises(ConfigError, match="bundled must be true or false"):
        parse_manifest({"models": {"tiny": entry}})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "../escape", "model name"),
        ("file", "../../etc/passwd", "file name"),
        ("file", "sub/model.safetensors", "file name"),
        ("repo_id", "../../x", "repo_id"),
        ("repo_id", "a/b/c", "repo_id"),
    ],
)
def test_manifest_rejects_path_traversal(field: str, value: str, message: str, tiny: tuple[DCVAE, Path]) -> None:
    from dcvae_tools.manifest import parse_manifest

    _, folder = tiny
    entry = _entry(REPO, "0" * 40, folder)
    name = "tiny"
    if field == "name":
        name = value
    elif field == "file":
        entry["files"][value] = entry["files"].pop("config.json")
    else:
        entry["repo_id"] = value
    with pytest.raises(ConfigError, match=message):
        parse_manifest({"models": {name: entry}})


def test_the_reachability_probe_leaves_proxied_and_malformed_endpoints_to_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dcvae_tools.hub import _unreachable

    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert "Connection refused" in (_unreachable(closed) or "")
    monkeypatch.setenv("all_proxy", "http://127.0.0.1:3128")
    assert _unreachable(closed) is None  # behind a proxy the proxy decides
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert _unreachable(closed) is not None  # ...unless the host bypasses it
    assert _unreachable("http://example.invalid:99999") is None  # a bad port is the client's to report


def test_a_path_object_always_means_a_local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dcvae_tools.hub import resolve

    monkeypatch.chdir(tmp_path)
    save_pretrained(make_model(seed=4), tmp_path / "fashion-mnist-32")
    assert resolve(Path("fashion-mnist-32")).source == "local"
    assert resolve("fashion-mnist-32").source in ("bundled", "hub")


def test_allow_local_false_never_loads_a_file_or_folder_of_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For a server taking names from visitors: an existing folder spelled as a repo id is looked up on the Hub
    (offline here: not found in the cache), a name written as a path is refused, a released name loads."""
    monkeypatch.chdir(tmp_path)
    save_pretrained(make_model(seed=4), tmp_path / "runs" / "mine")
    assert load_model("runs/mine").source.source == "local"  # the default: the user's own folder
    with pytest.raises((OfflineError, ModelNotFoundError)) as info:
        load_model("runs/mine", allow_local=False, local_files_only=True, cache_dir=tmp_path / "cache")
    assert "runs/mine" in str(info.value)
    for written_as_a_path in ("./runs/mine", "runs/mine/", str(tmp_path / "runs" / "mine")):
        with pytest.raises(ModelNotFoundError, match="files and folders are not loaded here"):
            load_model(written_as_a_path, allow_local=False)
    with pytest.raises(ModelNotFoundError, match="files and folders are not loaded here"):
        load_model(Path("runs/mine"), allow_local=False)
    assert load_model("mnist-32", allow_local=False, local_files_only=True).config.preset == "mnist-32"


# ----------------------------------------------------------------------------- failures a user meets, named


def _copy_release(folder: Path, target: Path) -> Path:
    target.mkdir()
    for name in FILES:
        (target / name).write_bytes((folder / name).read_bytes())
    return target


def test_an_invalid_token_is_named_not_taken_for_a_network_problem(local_hub: LocalHub, tiny: tuple[DCVAE, Path],
                                                                   tmp_path: Path) -> None:
    local_hub.add_revision(REPO, tiny[1])
    local_hub.read_token = "hf_valid"
    with pytest.raises(DCVAEError) as info:
        _load(local_hub, tmp_path / "cache", token="hf_expired")
    message = str(info.value)
    assert "hf auth login" in message and "401" in message and "\n" not in message, message
    assert "network" not in message
    assert_same_model(tiny[0], _load(local_hub, tmp_path / "cache", token="hf_valid"))


def test_a_download_cut_half_way_says_to_run_again(local_hub: LocalHub, tiny: tuple[DCVAE, Path],
                                                   tmp_path: Path) -> None:
    local_hub.add_revision(REPO, tiny[1])
    local_hub.cut_downloads["model.safetensors"] = 1000
    with pytest.raises(OfflineError, match=r"could not download model\.safetensors .* run again") as info:
        _load(local_hub, tmp_path / "cache")
    assert "\n" not in str(info.value)
    del local_hub.cut_downloads["model.safetensors"]
    assert_same_model(tiny[0], _load(local_hub, tmp_path / "cache"))


def test_an_oversized_hub_config_is_refused_before_it_is_read_or_the_weights_fetched(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path
) -> None:
    src = _copy_release(tiny[1], tmp_path / "src")
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    config["description"] = "x" * (2 << 20)  # valid JSON, 2 MiB
    (src / "config.json").write_text(json.dumps(config), encoding="utf-8")
    local_hub.add_revision(REPO, src)
    with pytest.raises(ConfigError, match=r"a config\.json is at most"):
        _load(local_hub, tmp_path / "cache")
    assert not any("model.safetensors" in path for _, path in local_hub.requests)


@pytest.mark.parametrize("repo_id", ["org/name-", "a--b/c", "org/name.git", "org/" + "n" * 97, "org/.name"])
def test_repo_ids_the_hub_would_refuse_are_a_not_found_message(repo_id: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="not a Hub repo id"):
        load_model(repo_id, local_files_only=True)


def test_the_offline_advice_for_a_released_name_downloads_its_pinned_commit(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, manifest
) -> None:
    commit = local_hub.add_revision(REPO, tiny[1])
    manifest({"tiny-test": _entry(REPO, commit, tiny[1])})
    with pytest.raises(OfflineError) as info:
        _load(local_hub, tmp_path / "empty-cache", "tiny-test", local_files_only=True)
    assert "`dcvae download tiny-test`" in str(info.value)  # the repo id would fetch main, not the pinned commit


def test_a_wrong_size_is_refused_before_hashing(local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path,
                                               manifest) -> None:
    src = _copy_release(tiny[1], tmp_path / "src")
    (src / "README.md").write_bytes((src / "README.md").read_bytes() + b"\nappended by a mirror\n")
    commit = local_hub.add_revision(REPO, src)
    manifest({"tiny-test": _entry(REPO, commit, tiny[1])})
    with pytest.raises(ChecksumError, match=r"README.md of .* is \d+ bytes, the manifest expects \d+"):
        _load(local_hub, tmp_path / "cache", "tiny-test")


def test_a_revision_is_never_silently_dropped(tiny: tuple[DCVAE, Path], tmp_path: Path, manifest) -> None:
    from dcvae_tools.hub import locate_training_state

    with pytest.raises(ModelNotFoundError, match="has no revisions; drop --revision"):
        load_model(str(tiny[1]), revision="v2.0")
    with pytest.raises(ModelNotFoundError, match="has no revisions; drop --revision"):
        locate_training_state(str(tiny[1]), revision="v2.0")
    manifest({"tiny-test": _entry(REPO, "a" * 40, tiny[1])})
    with pytest.raises(ModelNotFoundError, match="pinned to revision"):
        locate_training_state("tiny-test", revision="b" * 40, local_files_only=True)


def test_hf_hub_offline_never_reads_a_missing_training_state_as_none(
    local_hub: LocalHub, tiny: tuple[DCVAE, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume offline must not start over because the training state was never downloaded."""
    from dcvae_tools.hub import locate_training_state

    src = _copy_release(tiny[1], tmp_path / "src")
    save_file({"step": torch.zeros(1)}, str(src / "training_state.safetensors"))
    local_hub.add_revision(REPO, src)
    cache = tmp_path / "cache"
    _load(local_hub, cache)  # the inference files only
    for offline in ({"local_files_only": True}, {}):
        if not offline:
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(OfflineError, match=r"training_state\.safetensors .* is not in the local cache"):
            locate_training_state(REPO, endpoint=local_hub.endpoint, cache_dir=cache, **offline)
