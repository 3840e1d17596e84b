"""--resume-from: a run folder, a release folder with its training state, a Hub repo, a release without one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from hub_server import LocalHub

from dcvae_tools.publish import manifest_entry
from training.export import export_run
from training.options import OptionsError
from training.presets import get_preset
from training.state_file import TRAINING_STATE_NAME, TrainingStateError, load_training_state, save_training_state
from training.training_loop import CHECKPOINT_NAME, load_checkpoint, training_loop

pytestmark = pytest.mark.usefixtures("one_thread")

GPU_CONTINUE = Path(__file__).resolve().parents[1] / "reports" / "gpu_continue.sh"
needs_gpu_continue = pytest.mark.skipif(
    not GPU_CONTINUE.is_file(), reason="run from an sdist: reports/gpu_continue.sh lives in the repository only"
)


def tiny(**changes):
    return get_preset("tiny").override(
        **{"log_every": 1, "snapshot_every": 1000, "checkpoint_every": 1000, "total_iterations": 6, **changes}
    )


def _networks(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / CHECKPOINT_NAME)
    return {f"{n}.{k}": v for n in ("E", "G", "G_ema", "D", "D_M") for k, v in state[n].items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"differs in {differ[:5]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted 6-iteration run, and the same run stopped at 3 and exported with its state."""
    root = tmp_path_factory.mktemp("runs")
    training_loop(tiny(), root / "straight", progress=False)
    training_loop(tiny(), root / "half", progress=False, stop_after=3)
    export_run(root / "half", root / "release", training_state=True)
    return root


def test_training_state_file_round_trips_the_checkpoint_exactly(runs, tmp_path):
    state = load_checkpoint(runs / "half" / CHECKPOINT_NAME)
    back = load_training_state(runs / "release" / TRAINING_STATE_NAME)

    def same(a, b):
        if isinstance(a, torch.Tensor):
            return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        if isinstance(a, dict):
            return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list | tuple):
            return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return a == b and type(a) is type(b)

    assert same(state, back)
    assert 3 in back["opt_E"]["state"]  # integer keys stay integers
    umask = os.umask(0)
    os.umask(umask)
    # shared like its sibling release files, not private like the temporary file it was written as
    assert (runs / "release" / TRAINING_STATE_NAME).stat().st_mode & 0o777 == 0o666 & ~umask
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(TrainingStateError, match=r"bad\.safetensors"):
        load_training_state(bad)
    with pytest.raises(TypeError, match="object"):
        save_training_state({"x": object()}, tmp_path / "never.safetensors")
    assert not (tmp_path / "never.safetensors").exists()


def test_release_manifest_entry_lists_the_training_state_and_a_new_export_drops_a_stale_one(runs, tmp_path):
    entry = manifest_entry(runs / "release", repo_id="org/tiny")
    assert TRAINING_STATE_NAME in entry["files"]
    export_run(runs / "half", tmp_path / "rel", training_state=True)
    export_run(runs / "half", tmp_path / "rel")  # weights only: the earlier state must not stay beside them
    assert not (tmp_path / "rel" / TRAINING_STATE_NAME).exists()


def test_network_snapshots_do_not_change_the_run(tmp_path):
    plain = training_loop(tiny(total_iterations=4), tmp_path / "a", progress=False)
    snapped = training_loop(tiny(total_iterations=4, network_snapshot_every=2), tmp_path / "b", progress=False)
    assert plain["iteration"] == snapped["iteration"] == 4
    _assert_same(_networks(tmp_path / "a"), _networks(tmp_path / "b"))


@pytest.mark.parametrize("source", ["run", "release"])
def test_continuing_equals_the_uninterrupted_run(runs, tmp_path, source, capsys):
    origin = runs / "half" if source == "run" else runs / "release"
    training_loop(tiny(), tmp_path / "continued", progress=False, resume_from=origin)
    said = capsys.readouterr()
    assert "continuing" in said.err and "continuing" not in said.out  # stdout: only a summary for scripts
    assert "changed from the source" not in said.err  # the same options: nothing to flag
    assert load_checkpoint(tmp_path / "continued" / CHECKPOINT_NAME)["iteration"] == 6
    _assert_same(_networks(runs / "straight"), _networks(tmp_path / "continued"))


def test_a_retried_continuation_logs_each_iteration_once(runs, tmp_path, capsys):
    """A --resume-from run killed before its first checkpoint left log lines; the retry must not log them twice."""
    import json

    folder = tmp_path / "retried"
    folder.mkdir()
    (folder / "stats.jsonl").write_text("".join(json.dumps({"iteration": i, "Loss/D/hinge": 9.0}) + "\n"
                                                for i in (4, 5)))
    training_loop(tiny(), folder, progress=False, resume_from=runs / "half")
    assert "dropped 2 line(s) past iteration 3" in capsys.readouterr().err
    lines = [json.loads(line) for line in (folder / "stats.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [4, 5, 6]
    assert all(line["Loss/D/hinge"] != 9.0 for line in lines)


def test_a_continuation_trains_at_its_own_learning_rate_and_betas(runs, tmp_path, capsys):
    """The source's optimizer state carries its lr and betas; --set lr=... on the continuation must win."""
    training_loop(tiny(lr=5e-5, betas=(0.5, 0.99)), tmp_path / "slower", progress=False, resume_from=runs / "half")
    note = capsys.readouterr().err
    # the changed training options are named with the source's values; schedule and bookkeeping ones are not
    assert "changed from the source's: lr 5e-05 (was 0.0002), betas [0.5, 0.99] (was [0.0, 0.9]) (to keep" in note, note
    assert "total_iterations" not in note
    state = load_checkpoint(tmp_path / "slower" / CHECKPOINT_NAME)
    source = load_checkpoint(runs / "half" / CHECKPOINT_NAME)
    for name in ("opt_E", "opt_G", "opt_D"):
        assert source[name]["param_groups"][0]["lr"] != 5e-5
        assert tuple(source[name]["param_groups"][0]["betas"]) != (0.5, 0.99)
        assert [(g["lr"], tuple(g["betas"])) for g in state[name]["param_groups"]] == [(5e-5, (0.5, 0.99))]
        assert state[name]["state"], f"{name}'s moments were dropped instead of continued"


def test_continuing_from_a_hub_repo(runs, tmp_path, local_hub: LocalHub):
    local_hub.add_revision("org/tiny-dcvae", runs / "release")
    training_loop(
        tiny(), tmp_path / "continued", progress=False, resume_from="org/tiny-dcvae",
        hub_options={"endpoint": local_hub.endpoint, "cache_dir": tmp_path / "cache"},
    )
    fetched = {path.rsplit("/", 1)[-1] for method, path in local_hub.requests if method == "GET"}
    assert TRAINING_STATE_NAME in fetched
    _assert_same(_networks(runs / "straight"), _networks(tmp_path / "continued"))


def test_offline_resume_without_the_cached_state_fails_instead_of_starting_afresh(runs, tmp_path, local_hub):
    from dcvae_tools import load_model
    from dcvae_tools.errors import OfflineError

    local_hub.add_revision("org/tiny-dcvae", runs / "release")
    hub = {"endpoint": local_hub.endpoint, "cache_dir": tmp_path / "cache"}
    load_model("org/tiny-dcvae", **hub)  # what `dcvae download` caches: the model files, not the training state
    with pytest.raises(OfflineError, match=TRAINING_STATE_NAME):
        training_loop(tiny(), tmp_path / "r", progress=False, resume_from="org/tiny-dcvae",
                      hub_options={**hub, "local_files_only": True})


def test_a_release_without_training_state_starts_a_fresh_discriminator(tmp_path, capsys):
    """The bundled release has no training state: its encoder and decoder start the run, nothing else."""
    from dcvae_tools import load_model
    from training.data import make_dataset

    small = {"batch_size": 8, "gen_batch_size": 8, "queue_size": 64, "amp": "none", "channels_last": False,
             "log_every": 1, "snapshot_every": 100, "checkpoint_every": 100, "network_snapshot_every": 0}
    options = get_preset("fashion-mnist-32").override(total_iterations=1, **small)
    summary = training_loop(
        options, tmp_path / "tuned", progress=False, resume_from="fashion-mnist-32", return_networks=True,
        hub_options={"local_files_only": True},
    )
    assert "fresh discriminator" in capsys.readouterr().err
    assert summary["iteration"] == 1  # a fresh start counts from 0
    from dcvae_tools.networks import build_network
    from training.resume import starting_point

    start = starting_point("fashion-mnist-32", options, local_files_only=True).state
    assert set(start) == {"iteration", "E", "G", "G_ema"}
    E = build_network(options.model_config(), "encoder", spectral_norm=True)
    E.load_state_dict(start["E"])
    G = build_network(options.model_config(), "decoder")
    G.load_state_dict(start["G_ema"])
    fresh = training_loop(options, tmp_path / "fresh", progress=False, return_networks=True)
    released = load_model("fashion-mnist-32", local_files_only=True)
    data = make_dataset("fashion-mnist", "test", 32, 1, None)
    x = torch.stack([data[i][0] for i in range(16)])
    with torch.no_grad():
        target = released.encode(x)
        tuned = E.eval()(x)[0]
        new = fresh["networks"]["E"].eval()(x)[0]
        decoded = G.eval()(target)
    # the spectral-norm estimate is recomputed from the folded weights: a small shift, not a new encoder
    assert (tuned - target).abs().mean() < 0.05 * target.abs().mean()
    assert (new - target).abs().mean() > 0.5 * target.abs().mean()
    assert (decoded - released.decode(target)).abs().max() < 0.05


def test_fine_tuning_on_other_data_and_a_mismatched_architecture(runs, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for i in range(16):
        Image.fromarray((torch.rand(28, 28) * 255).to(torch.uint8).numpy()).save(images / f"{i}.png")
    training_loop(
        tiny(dataset=f"folder:{images}"), tmp_path / "tuned", progress=False, resume_from=runs / "release"
    )
    assert "fine-tuning" in capsys.readouterr().err
    from training.resume import starting_point

    start = starting_point(runs / "release", tiny(dataset=f"folder:{images}"))
    assert "loader" not in start.state
    assert all((q["ids"] == -1).all() for q in start.state["queues"].values())  # old indices mean nothing here
    with pytest.raises(OptionsError, match="latent_dim"):
        training_loop(tiny(latent_dim=16), tmp_path / "wrong", progress=False, resume_from=runs / "release")
    assert not (tmp_path / "wrong").exists()  # refused before the run folder was made


def test_a_continuation_with_nothing_to_train_is_refused_before_its_folder_exists(runs, tmp_path):
    """A new run folder from a state already at its end would hold no checkpoint, and running the same command
    without --resume-from later would silently train from scratch there."""
    with pytest.raises(OptionsError, match=r"iteration 3, not below total_iterations 3.*above 3"):
        training_loop(tiny(total_iterations=3), tmp_path / "none", progress=False, resume_from=runs / "half")
    with pytest.raises(OptionsError, match=r"not below --stop-after 2.*a --stop-after above 3"):
        training_loop(tiny(), tmp_path / "none", progress=False, resume_from=runs / "half", stop_after=2)
    assert not (tmp_path / "none").exists()


def test_the_command_says_how_to_continue_a_piece_and_dry_runs_check_the_source(runs, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    runner = CliRunner()
    base = ["train", "--preset", "tiny", "--device", "cpu", "--no-progress", "--set", "total_iterations=6",
            "--set", "log_every=1", "--set", "snapshot_every=1000", "--set", "checkpoint_every=1000"]
    result = runner.invoke(app, [*base, "--run-dir", str(tmp_path / "piece"), "--stop-after", "4"])
    assert result.exit_code == 0, result.output
    assert "stopped at iteration 4 of 6" in result.stderr and "run the same command again" in result.stderr
    assert '"finished": false' in result.stdout and "stopped at" not in result.stdout
    dry = runner.invoke(app, [*base, "--set", "lr=1e-4", "--resume-from", str(runs / "half"), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "continuing run" in dry.stderr and "lr 0.0001 (was 0.0002)" in dry.stderr
    wrong = runner.invoke(app, [*base, "--set", "latent_dim=16", "--resume-from", str(runs / "half"), "--dry-run"])
    assert wrong.exit_code != 0 and "latent_dim" in str(wrong.exception)


@needs_gpu_continue
def test_gpu_continue_script_continues_a_run_and_packs_what_it_wrote(runs, tmp_path):
    """reports/gpu_continue.sh (here on the CPU, in a copy of the repository's layout): the piece it packs unpacks
    at the repository root onto the run's own path, and equals the uninterrupted run."""
    repo = tmp_path / "repo"
    (repo / "reports").mkdir(parents=True)
    script = shutil.copy(GPU_CONTINUE, repo / "reports")
    shutil.copytree(runs / "half", repo / "reports" / "runs" / "half")
    options = ["--preset", "tiny", "--set", "total_iterations=6", "--set", "log_every=1"]
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DCVAE_DEVICE": "cpu", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(GPU_CONTINUE.parents[1])}
    done = subprocess.run(["bash", str(script), "reports/runs/half", "5", *options], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "piece: logged iterations 4 -> 6" in done.stdout
    parts = sorted((tmp_path / "out").glob("gpu-piece.tgz.part-*"))
    assert parts
    packed = tmp_path / "piece.tgz"
    packed.write_bytes(b"".join(part.read_bytes() for part in parts))
    with tarfile.open(packed) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    unpacked_run = tmp_path / "unpacked" / "reports" / "runs" / "half"
    assert {"checkpoint.pt", "stats.jsonl"} <= {path.name for path in unpacked_run.iterdir()}
    _assert_same(_networks(unpacked_run), _networks(runs / "straight"))


@needs_gpu_continue
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_gpu_continue_script_refuses_a_folder_without_a_run_or_outside_the_repository(tmp_path, where):
    run_dir = "reports" if where == "inside" else str(tmp_path)
    done = subprocess.run(["bash", str(GPU_CONTINUE), run_dir, "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert ("checkpoint.pt not found" if where == "inside" else "is outside the repository") in done.stderr


def test_a_dcvae_continuation_of_a_vaegan_run_starts_its_momentum_discriminator_as_the_discriminator(tmp_path):
    """A VAE/GAN saves a momentum discriminator it never updates (only the contrastive step does). Loaded as the
    key encoder of a DC-VAE continuation it would be the untrained initial copy; it starts as D instead."""
    from training.resume import starting_point

    # a high rate, so that D moves away from its initial copy in a few iterations
    vaegan = tiny(objective="vaegan", n_critic=1, total_iterations=6, lr=3e-3)
    training_loop(vaegan, tmp_path / "vaegan", progress=False)
    saved = load_checkpoint(tmp_path / "vaegan" / CHECKPOINT_NAME)
    start = starting_point(tmp_path / "vaegan", tiny())
    assert "D_M" not in start.state and "momentum discriminator never trained" in start.note

    def weights_apart(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        # parameters only: the spectral-norm vectors (_u, _v) are buffers, copied from D at every momentum update
        keys = [k for k in a if a[k].is_floating_point() and not k.endswith(("_u", "_v"))]
        diff = torch.cat([(a[k] - b[k]).flatten() for k in keys]).norm()
        return float(diff / torch.cat([b[k].flatten() for k in keys]).norm())

    untrained = weights_apart(saved["D_M"], saved["D"])
    assert untrained > 0.02
    training_loop(tiny(total_iterations=7), tmp_path / "dcvae", progress=False, resume_from=tmp_path / "vaegan")
    continued = load_checkpoint(tmp_path / "dcvae" / CHECKPOINT_NAME)
    # one iteration at the preset's rate after starting from D (before the fix it stayed the untrained copy)
    assert weights_apart(continued["D_M"], continued["D"]) < 0.2 * untrained

    # a DC-VAE source's momentum copy is its own and continues as it is
    assert "D_M" in starting_point(tmp_path / "dcvae", tiny()).state


def test_a_progressive_runs_state_is_refused_with_what_to_do_instead(runs, tmp_path):
    from training.progressive import CHECKPOINT_FORMAT
    from training.resume import starting_point

    state = load_checkpoint(runs / "half" / CHECKPOINT_NAME)
    (tmp_path / "grown").mkdir()
    torch.save({**state, "format": CHECKPOINT_FORMAT}, tmp_path / "grown" / CHECKPOINT_NAME)
    with pytest.raises(OptionsError, match=r"progressive run's state.*stages/<R>x<R>"):
        starting_point(tmp_path / "grown", tiny())
