"""Publishing end to end: a model pushed through the real huggingface_hub upload path to the local Hub server
(tests/hub_server.py), the pushed commit downloaded and checked, then pinned in a manifest; the released name
then loads exactly that commit, whatever the repo's main branch does later. A push that fails leaves the
manifest byte for byte as it was. Nothing of dcvae-tools or of the Hub client is mocked.

The server speaks Git LFS, not Xet, so the client's own switch (``HF_HUB_DISABLE_XET``, read at import) is set
on its constants module for the duration of each test.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub import constants as hf_constants
from test_loading_hub import LATENT, assert_same_model

from dcvae_tools import load_model, push_to_hub, save_pretrained
from dcvae_tools.config import ModelConfig
from dcvae_tools.manifest import MANIFEST_ENV, TRAINING_STATE_NAME, load_manifest, parse_manifest
from dcvae_tools.model import DCVAE, AttributeVector
from dcvae_tools.publish import PublishError, publish

pytestmark = [
    pytest.mark.skipif(bool(hf_constants.HF_HUB_OFFLINE), reason="HF_HUB_OFFLINE is set: the client refuses requests"),
    pytest.mark.usefixtures("one_thread", "lfs_uploads"),
]

REPO = "dcvae-test/published"
RELEASE = ("README.md", "attributes.safetensors", "config.json", "model.safetensors")
OTHER = {  # an entry publishing must leave exactly as it is
    "repo_id": "dcvae-test/other",
    "revision": None,
    "files": {"config.json": {"sha256": "0" * 64, "size": 1}, "model.safetensors": {"sha256": "1" * 64, "size": 2}},
    "dataset": "elsewhere",
    "resolution": 32,
    "channels": 1,
    "latent_dim": 8,
    "architecture": "autogan32",
    "preset": "other",
    "bundled": False,
    "training_iterations": 7,
}


@pytest.fixture
def lfs_uploads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads go through Git LFS (the test server has no Xet storage): the client's documented switch."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A manifest with one unrelated entry and a default model, and DCVAE_MANIFEST pointing at it."""
    path = tmp_path / "weights_manifest.json"
    path.write_text(json.dumps({"format_version": 1, "default_model": "other", "models": {"other": OTHER}}, indent=2))
    monkeypatch.setenv(MANIFEST_ENV, str(path))
    load_manifest.cache_clear()
    yield path
    load_manifest.cache_clear()


def make_model(seed: int, attributes: bool = True) -> DCVAE:
    torch.manual_seed(seed)
    config = ModelConfig(
        architecture="autogan32",
        image_size=32,
        channels=3,
        latent_dim=LATENT,
        architecture_args={"gf_dim": 16, "df_dim": 16},
        dataset="unit-test",
        preset="tiny",
        metrics={"recon_mse_test": 0.05 + seed, "probe_linear_test": 0.5},
    )
    model = DCVAE(config)
    if attributes:
        direction = torch.randn(LATENT, generator=torch.Generator().manual_seed(seed + 1))
        model.attributes = {"smile": AttributeVector("smile", direction, 20, 20, metadata={"seed": seed})}
    return model


def _entries(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    parse_manifest(data, str(path))  # what publish wrote must be a valid manifest
    return data


def _load_released(hub, name: str, cache: Path) -> DCVAE:
    """Load a released name through the manifest now on disk (re-read: its override is announced again)."""
    load_manifest.cache_clear()
    with pytest.warns(UserWarning, match=MANIFEST_ENV):
        return load_model(name, endpoint=hub.endpoint, cache_dir=cache)


def _file_requests(hub) -> list[str]:
    return [path for _, path in hub.requests if "/resolve/" in path]


def test_publish_pins_the_pushed_commit_and_the_name_keeps_loading_it(local_hub, manifest: Path, tmp_path: Path):
    first = make_model(seed=0)
    result = publish(first, REPO, name="tiny-pub", manifest_path=manifest, endpoint=local_hub.endpoint)

    commit = local_hub.head(REPO)
    assert result.revision == commit and len(commit) == 40
    # it went through the real upload protocol: repo creation, preupload, an LFS PUT, the commit
    sent = {(method, path.split("?")[0]) for method, path in local_hub.requests}
    assert {("POST", "/api/repos/create"), ("POST", f"/api/models/{REPO}/preupload/main"),
            ("POST", f"/{REPO}.git/info/lfs/objects/batch"), ("POST", f"/api/models/{REPO}/commit/main")} <= sent
    assert any(method == "PUT" and path.startswith(f"/__lfs/{REPO}/") for method, path in sent)
    # ... and was then downloaded at exactly that commit
    assert _file_requests(local_hub) and all(f"/resolve/{commit}/" in p for p in _file_requests(local_hub))

    data = _entries(manifest)
    assert data["default_model"] == "other" and data["models"]["other"] == OTHER
    entry = data["models"]["tiny-pub"]
    assert entry["repo_id"] == REPO and entry["revision"] == commit and entry["bundled"] is False
    assert sorted(entry["files"]) == list(RELEASE) == [f for f in local_hub.files(REPO) if f != ".gitattributes"]
    for name, file in entry["files"].items():
        served = local_hub.read_file(REPO, commit, name)
        assert file == {"sha256": hashlib.sha256(served).hexdigest(), "size": len(served)}
    config = first.config
    assert (entry["dataset"], entry["resolution"], entry["channels"], entry["latent_dim"]) == (
        config.dataset, config.image_size, config.channels, config.latent_dim)
    assert (entry["architecture"], entry["preset"], entry["metrics"]) == ("autogan32", "tiny", config.metrics)
    assert result.files["model.safetensors"].sha256 == entry["files"]["model.safetensors"]["sha256"]

    card = ModelCard(local_hub.read_file(REPO, commit, "README.md").decode())  # valid Hub metadata
    assert card.data.pipeline_tag == "unconditional-image-generation" and card.data.library_name == "dcvae-tools"
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == set(config.metrics.items())

    local_hub.requests.clear()
    loaded = _load_released(local_hub, "tiny-pub", tmp_path / "cache-1")
    assert_same_model(first, loaded)
    assert loaded.source.source == "hub" and loaded.source.revision == commit
    assert _file_requests(local_hub) and all(f"/resolve/{commit}/" in p for p in _file_requests(local_hub))

    # main moves on: other weights, no attributes, a training state, under another name
    second = make_model(seed=1, attributes=False)
    from training.state_file import save_training_state

    state = save_training_state({"iteration": 2, "w": torch.ones(3)}, tmp_path / "state.safetensors")
    later = publish(second, REPO, name="tiny-pub-2", manifest_path=manifest, endpoint=local_hub.endpoint,
                    training_state=state)
    assert later.revision == local_hub.head(REPO) != commit
    # the stale attributes file of the first release is gone from the new commit, not from the old one
    assert "attributes.safetensors" not in local_hub.files(REPO) and TRAINING_STATE_NAME in local_hub.files(REPO)
    assert "attributes.safetensors" in local_hub.files(REPO, commit)
    data = _entries(manifest)
    assert data["models"]["tiny-pub"] == entry and data["models"]["other"] == OTHER
    assert data["models"]["tiny-pub-2"]["files"][TRAINING_STATE_NAME]["sha256"] == hashlib.sha256(
        state.read_bytes()).hexdigest()

    local_hub.requests.clear()
    pinned = _load_released(local_hub, "tiny-pub", tmp_path / "cache-2")  # a fresh cache: all from the server
    assert_same_model(first, pinned)
    assert _file_requests(local_hub) and all(f"/resolve/{commit}/" in p for p in _file_requests(local_hub))
    assert_same_model(second, _load_released(local_hub, "tiny-pub-2", tmp_path / "cache-2"))


@pytest.mark.parametrize(
    ("endpoint", "status", "step"),
    [("commit", 500, "committing"), ("lfs-upload", 403, "uploading"), ("create", 403, "creating the repo")],
)
def test_a_failed_push_leaves_the_manifest_byte_identical(local_hub, manifest: Path, endpoint: str, status: int,
                                                          step: str):
    before = manifest.read_bytes()
    local_hub.failures[endpoint] = status
    with pytest.raises(PublishError, match=f"failed while {step}: ") as info:
        publish(make_model(seed=2), REPO, name="tiny-pub", manifest_path=manifest, endpoint=local_hub.endpoint)
    assert info.value.step == step
    assert str(manifest) in str(info.value) and "\n" not in str(info.value)
    assert manifest.read_bytes() == before
    if endpoint != "create":  # the repo exists, but main holds nothing of the failed push
        assert local_hub.files(REPO) == [".gitattributes"]


def test_a_pushed_file_that_comes_back_different_is_refused(local_hub, manifest: Path):
    before = manifest.read_bytes()
    local_hub.tamper["config.json"] = b'{"latent_dim": 1}'
    with pytest.raises(PublishError, match=r"failed while verifying the pushed files: config\.json") as info:
        publish(make_model(seed=2), REPO, name="tiny-pub", manifest_path=manifest, endpoint=local_hub.endpoint)
    assert info.value.step == "verifying the pushed files"
    assert manifest.read_bytes() == before


def test_push_to_hub_returns_the_commit(local_hub, tmp_path: Path):
    model = make_model(seed=4)
    commit = push_to_hub(model, REPO, endpoint=local_hub.endpoint)
    assert commit == local_hub.head(REPO)
    assert_same_model(model, load_model(REPO, revision=commit, endpoint=local_hub.endpoint, cache_dir=tmp_path / "c"))


def _cli_args(folder: Path, manifest: Path, hub) -> list[str]:
    return ["release", str(folder), "--push", REPO, "--name", "cli-pub", "--manifest", str(manifest),
            "--endpoint", hub.endpoint, "--training-state", "--token", "secret-write-token"]


def test_cli_release_push(local_hub, manifest: Path, tmp_path: Path, monkeypatch, capsys):
    from typer.testing import CliRunner

    from training.cli import app, main
    from training.state_file import save_training_state

    model = make_model(seed=3)
    folder = save_pretrained(model, tmp_path / "release")
    save_training_state({"iteration": 5, "w": torch.zeros(2)}, folder / TRAINING_STATE_NAME)
    local_hub.write_token = "secret-write-token"  # the token given on the command line reaches the Hub

    result = CliRunner().invoke(app, _cli_args(folder, manifest, local_hub))
    assert result.exit_code == 0, result.output
    commit = local_hub.head(REPO)
    assert f"published cli-pub: {REPO}@{commit}" in result.stdout
    for step in ("creating the repo", "uploading", "committing", "verifying the pushed files", "writing the manifest"):
        assert step in result.output
    entry = _entries(manifest)["models"]["cli-pub"]
    assert entry["revision"] == commit and sorted(entry["files"]) == sorted([*RELEASE, TRAINING_STATE_NAME])
    assert_same_model(model, _load_released(local_hub, "cli-pub", tmp_path / "cache"))

    # publishing the same files again changes nothing: no new commit, the same pin
    assert CliRunner().invoke(app, _cli_args(folder, manifest, local_hub)).exit_code == 0
    assert local_hub.head(REPO) == commit and _entries(manifest)["models"]["cli-pub"] == entry

    # other weights whose commit fails: one line naming the step, exit status 1, the manifest untouched
    save_pretrained(make_model(seed=5), folder)  # keeps the training state
    before = manifest.read_bytes()
    local_hub.failures["commit"] = 500
    monkeypatch.setattr(sys, "argv", ["dcvae-train", *_cli_args(folder, manifest, local_hub)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "failed while committing" in last
    assert manifest.read_bytes() == before


def test_cli_release_push_of_a_training_run(local_hub, manifest: Path, tmp_path: Path):
    """A run folder is exported first (attributes, training state) and then published; the released name's
    training state comes back verified for `dcvae-train train --resume-from`."""
    from typer.testing import CliRunner

    from dcvae_tools.hub import resolve_training_state
    from training.cli import app
    from training.presets import get_preset
    from training.training_loop import training_loop

    options = get_preset("tiny").override(log_every=1, snapshot_every=1000, checkpoint_every=1000,
                                          total_iterations=2)
    training_loop(options, tmp_path / "run", progress=False)
    result = CliRunner().invoke(app, ["release", str(tmp_path / "run"), "--push", REPO, "--name", "run-pub",
                                      "--manifest", str(manifest), "--endpoint", local_hub.endpoint,
                                      "--training-state"])
    assert result.exit_code == 0, result.output
    entry = _entries(manifest)["models"]["run-pub"]
    assert entry["revision"] == local_hub.head(REPO) and entry["training_iterations"] == 2
    assert sorted(entry["files"]) == sorted([*RELEASE, TRAINING_STATE_NAME])
    load_manifest.cache_clear()
    with pytest.warns(UserWarning, match=MANIFEST_ENV):
        state = resolve_training_state("run-pub", endpoint=local_hub.endpoint, cache_dir=tmp_path / "cache")
    assert state is not None
    assert hashlib.sha256(state.read_bytes()).hexdigest() == entry["files"][TRAINING_STATE_NAME]["sha256"]
    assert _load_released(local_hub, "run-pub", tmp_path / "cache").config.preset == "tiny"


def test_cli_release_push_of_a_network_snapshot(local_hub, manifest: Path, tmp_path: Path):
    """`release RUN --snapshot N --push`: the pushed weights are the snapshot's, the manifest says N iterations,
    and no training state is published (the run's is at another iteration)."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from training.cli import app
    from training.presets import get_preset
    from training.training_loop import training_loop

    options = get_preset("tiny").override(log_every=1, snapshot_every=1000, checkpoint_every=1000,
                                          total_iterations=4, network_snapshot_every=2)
    training_loop(options, tmp_path / "run", progress=False)
    result = CliRunner().invoke(app, ["release", str(tmp_path / "run"), "--snapshot", "2", "--push", REPO,
                                      "--name", "snap-pub", "--manifest", str(manifest),
                                      "--endpoint", local_hub.endpoint])
    assert result.exit_code == 0, result.output
    entry = _entries(manifest)["models"]["snap-pub"]
    assert entry["revision"] == local_hub.head(REPO) and entry["training_iterations"] == 2
    assert TRAINING_STATE_NAME not in entry["files"]
    load_manifest.cache_clear()
    released = _load_released(local_hub, "snap-pub", tmp_path / "cache")
    snapshot = load_file(tmp_path / "run" / "network-snapshots" / "iteration-0000002" / "model.safetensors")
    assert all(torch.equal(released.state_dict()[k], v) for k, v in snapshot.items())
    assert released.config.description.endswith("2 iterations of 8 images")
