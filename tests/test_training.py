"""Training: a tiny preset on real Fashion-MNIST, exact resume, DDP on gloo, export -> load_model."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcvae_tools import load_model
from training.export import export_run, manifest_entry, model_from_run
from training.options import OptionsError
from training.presets import all_presets, get_preset
from training.training_loop import CHECKPOINT_NAME, load_checkpoint, training_loop

REPO = Path(__file__).resolve().parents[1]


def tiny(**changes):
    return get_preset("tiny").override(
        **{"log_every": 1, "snapshot_every": 1000, "checkpoint_every": 1000, **changes}
    )


def _params(state: dict) -> dict[str, torch.Tensor]:
    return {
        f"{net}.{k}": v
        for net in ("E", "G", "D", "G_ema", "D_M")
        if net in state
        for k, v in state[net].items()
    }


def test_tiny_preset_trains_on_real_data_with_finite_losses(tmp_path):
    logged = []
    summary = training_loop(
        tiny(total_iterations=24), tmp_path / "run", progress=False, progress_fn=lambda i, s: logged.append(s)
    )
    assert summary["iteration"] == 24 and summary["finished"]
    losses = {k: v for s in logged for k, v in s.items() if k.startswith("Loss/")}
    assert {
        "Loss/D/hinge",
        "Loss/G/hinge",
        "Loss/G/kl",
        "Loss/contrastive/b1",
        "Loss/contrastive/final",
    } <= set(losses)
    assert all(math.isfinite(v) for s in logged for v in s.values())
    lines = (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    assert len(lines) == 24 and json.loads(lines[-1])["iteration"] == 24
    assert (tmp_path / "run" / "snapshots" / "samples-0000024.png").is_file()
    options = json.loads((tmp_path / "run" / "training_options.json").read_text())
    assert options["preset"] == "tiny"


def test_parameters_change_and_queue_fills(tmp_path):
    training_loop(tiny(total_iterations=4), tmp_path / "run", progress=False)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert int(state["queues"]["b1"]["pointer"]) == (2 * 8) % 64  # 2 contrastive steps (n_critic 2) of 8 keys
    opt = state["opt_E"]["state"]
    assert opt and all(int(s["step"]) == 4 for s in opt.values())  # Gmain and Gcon each step E


@pytest.mark.parametrize("objective", ["vae", "vaegan", "gan", "dcvae-no-instance", "dcvae-no-set"])
def test_baselines_and_ablations_run(tmp_path, objective):
    extra = {"recon_space": "feature"} if objective == "vaegan" else {}
    logged = []
    training_loop(
        tiny(total_iterations=2, objective=objective, n_critic=1, **extra),
        tmp_path / "r",
        progress=False,
        progress_fn=lambda i, s: logged.append(s),
    )
    keys = set().union(*logged)
    assert ("Loss/D/hinge" in keys) == (objective in ("vaegan", "gan", "dcvae-no-instance"))
    assert ("Loss/contrastive/final" in keys) == (objective == "dcvae-no-set")
    assert ("Loss/G/recon" in keys) == (objective in ("vae", "vaegan"))
    assert all(math.isfinite(v) for s in logged for v in s.values())


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    options = tiny(total_iterations=6)
    training_loop(options, tmp_path / "straight", progress=False)
    training_loop(options, tmp_path / "split", progress=False, stop_after=3)
    assert load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["iteration"] == 3
    training_loop(options, tmp_path / "split", progress=False)  # resumes from iteration 3
    a = _params(load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME))
    b = _params(load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"


def test_checkpoint_loads_with_weights_only(tmp_path):
    training_loop(tiny(total_iterations=2), tmp_path / "run", progress=False)
    torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)  # raises if anything needs pickle


def test_export_then_load_model_reproduces_encoder_and_ema_decoder(tmp_path):
    from dcvae_tools.networks import build_network

    training_loop(tiny(total_iterations=4), tmp_path / "run", progress=False)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    config = model_from_run(tmp_path / "run").config
    encoder = build_network(config, "encoder", spectral_norm=True)
    encoder.load_state_dict(state["E"])
    encoder.eval()
    decoder = build_network(config, "decoder")
    decoder.load_state_dict(state["G_ema"])
    decoder.eval()
    export_run(tmp_path / "run", tmp_path / "release", metrics={"test_metric": 1.5})
    model = load_model(tmp_path / "release")
    x = torch.full((5, 1, 32, 32), -1.0)  # the model's input format: 28x28 content padded with -1
    x[:, :, 2:30, 2:30] = torch.rand(5, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        mu, _ = encoder(x)
        images = decoder(mu)
    assert torch.allclose(model.encode(x), mu, atol=1e-6)
    assert torch.allclose(model.decode(mu), images, atol=1e-6)
    assert model.config.preset == "tiny" and model.config.metrics == {"test_metric": 1.5}
    entry = manifest_entry(tmp_path / "release", repo_id="org/tiny")
    assert set(entry["files"]) == {"config.json", "model.safetensors", "README.md"}


def test_options_are_validated():
    with pytest.raises(OptionsError, match="objective"):
        tiny(objective="nope")
    with pytest.raises(OptionsError, match="unknown training option"):
        tiny(learning_rate=1)
    with pytest.raises(OptionsError, match="gf_dim"):
        tiny(architecture_args={"gf_dim": 0, "df_dim": 8})
    assert "cifar10-autogan32" in all_presets()
    official = get_preset("cifar10-autogan32")
    assert (official.lr, official.betas, official.n_critic, official.kl_weight) == (2e-4, (0.0, 0.9), 5, 1e-6)
    assert (official.queue_size, official.temperature, official.momentum, official.ema) == (
        8192,
        0.07,
        0.999,
        0.999,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gloo_two_processes_keeps_ranks_identical(tmp_path):
    """A torchrun-style launch of 2 CPU processes (gloo): after training, every rank's networks are equal."""
    script = tmp_path / "rank_main.py"
    script.write_text(
        "import os, sys, torch\n"
        "from training.distributed import cleanup, init_distributed\n"
        "from training.presets import get_preset\n"
        "from training.training_loop import training_loop\n"
        "info = init_distributed('cpu')\n"
        "o = get_preset('tiny').override(total_iterations=4, log_every=1, snapshot_every=100, checkpoint_every=100)\n"
        "summary = training_loop(o, sys.argv[1], dist_info=info, progress=False, return_networks=True)\n"
        "nets = {k: v.state_dict() for k, v in summary['networks'].items() if v is not None}\n"
        "torch.save(nets, os.path.join(sys.argv[1], f'rank{info.rank}.pt'))\n"
        "cleanup(info)\n"
    )
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
    }
    run = tmp_path / "run"
    run.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(run)],
            cwd=REPO,
            text=True,
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    rank0 = torch.load(run / "rank0.pt", weights_only=True)
    rank1 = torch.load(run / "rank1.pt", weights_only=True)
    for net in ("E", "G", "D", "G_ema"):
        for key, value in rank0[net].items():
            if "running_" in key or "num_batches" in key:
                continue  # BatchNorm statistics are per-rank (as in DDP without SyncBatchNorm)
            assert torch.allclose(value, rank1[net][key], atol=1e-6), f"{net}.{key} differs between ranks"
    # the ranks trained on different shards, so the model did move away from its initialisation
    state = load_checkpoint(run / CHECKPOINT_NAME)
    assert state["iteration"] == 4 and int(state["queues"]["final"]["pointer"]) == (2 * 2 * 8) % 64


def test_cli_train_export_and_eval_a_run(tmp_path):
    """The dcvae-train commands chain: train a few iterations, export, evaluate the run into a JSON report."""
    from typer.testing import CliRunner

    from training.cli import app

    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--preset", "tiny", "--run-dir", str(run), "--stop-after", "2",
                                 "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "release")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "release" / "model.safetensors").is_file()
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["eval", str(run), "--metrics", "recon_mse_test,recon_psnr_test",
                                 "--test-limit", "64", "-o", str(report)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())["metrics"]
    assert 0 < metrics["recon_mse_test"] < 1 and metrics["recon_psnr_test"] > 0
