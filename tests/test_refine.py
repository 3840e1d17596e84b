"""Refined inversion (dcvae_tools.editing.refine): better reconstructions, refine=0 unchanged, determinism, the
time budget, bad values, and `--refine` on the command line, all with the bundled default model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from dcvae_tools import load_model
from dcvae_tools.cli import app
from dcvae_tools.editing.refine import refine_latents
from dcvae_tools.errors import DCVAEError, LatentError

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "fashion-mnist"
IMAGES = sorted(EXAMPLES.glob("*.png"))[:6]
runner = CliRunner()


@pytest.fixture(scope="module")
def model():
    return load_model(local_files_only=True)


def _mse(model, images: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-image MSE on the [0, 1] scale over the content area."""
    s = model.config.content_size
    top = (images.shape[-1] - s) // 2
    crop = (slice(None), slice(None), slice(top, top + s), slice(top, top + s))
    return ((images[crop] - recon[crop]) / 2).pow(2).flatten(1).mean(1)


def test_refine_lowers_reconstruction_error(model) -> None:
    x = model.images_to_tensor(IMAGES)
    before = _mse(model, x, model.reconstruct(x))
    after = _mse(model, x, model.reconstruct(x, refine=20))
    assert bool((after <= before + 1e-6).all()), (before, after)
    assert float(after.mean()) < 0.8 * float(before.mean()), (before.mean(), after.mean())
    result = refine_latents(model, x, 20)
    assert torch.allclose(result.initial_mse, before.float(), atol=1e-5)
    assert torch.allclose(result.final_mse, after.float(), atol=1e-5)
    assert result.steps == 20 and result.stopped == "steps"


def test_refine_zero_is_the_posterior_mean_bit_for_bit(model) -> None:
    plain = model.encode(IMAGES)
    assert torch.equal(model.encode(IMAGES, refine=0), plain)
    assert torch.equal(model.reconstruct(IMAGES, refine=0), model.reconstruct(IMAGES))
    assert torch.equal(refine_latents(model, IMAGES, 0).latents, plain)


def test_refine_is_deterministic_and_per_image(model) -> None:
    x = model.images_to_tensor(IMAGES)
    a = model.encode(x, refine=8)
    b = model.encode(x, refine=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, model.encode(x))
    # each image is optimised on its own: batching changes only float rounding, which Adam's normalised steps
    # carry along (3e-4 at most on an AVX-512 CPU, 0.017 on an AVX2 one, against moves of 0.4); images that
    # shared a step (a batch-wide normalisation, a loss over the batch) would differ by about the move
    halves = refine_latents(model, x, 8, batch_size=3).latents
    move = (a - model.encode(x)).abs().max()
    assert (halves - a).abs().max() < 0.1 * move and move > 0.1


def test_each_image_stops_early_on_its_own(model) -> None:
    """An image that converges early stops as early beside one still improving; when a batch stopped as a whole, it
    was dragged on to its batch mate's stop.

    Only the early image is compared: float rounding, which differs with the batch size, changes a long-running
    image's trajectory a little (Adam's normalised steps carry it along), enough on an AVX-512 CPU to move the step
    at which a slowly improving image meets the tolerance, and so its result by several steps' worth."""
    x = model.images_to_tensor(IMAGES)
    settings = {"steps": 150, "tolerance": 3e-3, "patience": 3}
    alone = [refine_latents(model, x[i : i + 1], **settings) for i in range(len(x))]
    fast = min(range(len(x)), key=lambda i: alone[i].steps)
    slow = max(range(len(x)), key=lambda i: alone[i].steps)
    assert alone[slow].steps > 3 * alone[fast].steps and alone[slow].stopped == "converged", [a.steps for a in alone]
    together = refine_latents(model, x[[fast, slow]], **settings)
    assert together.stopped == "converged" and together.steps < 150
    assert together.steps > 3 * alone[fast].steps  # the pair ran on well past the early image's stop
    move = (alone[fast].latents - model.encode(x[fast : fast + 1])).abs().max()
    assert (together.latents[0] - alone[fast].latents[0]).abs().max() < 0.1 * move and move > 0.1


def test_refine_time_budget_is_respected(model) -> None:
    x = model.images_to_tensor(IMAGES)
    # on the real clock: the deadline stops the run long before its steps (on a loaded machine the encoder's
    # pass alone may spend the 2 s, leaving no step; the split is checked on a fake clock below). Patience past
    # any number of steps 2 s allows: on a fast machine the bundled model's latents converge within the budget
    result = refine_latents(model, x, 100_000, max_seconds=2.0, batch_size=2, patience=100_000)
    assert result.stopped == "time"
    assert result.steps < 100_000


def test_refine_time_budget_is_split_between_the_batches(model, monkeypatch) -> None:
    """On a clock that advances 10 ms per reading (one reading per step), 3 batches sharing 2 s get about
    2 / 3 / 0.01 = 66 steps each and the whole run ends within a step of the budget."""
    import types

    import dcvae_tools.editing.refine as refine_module

    now = [0.0]

    def tick() -> float:
        now[0] += 0.01
        return now[0]

    monkeypatch.setattr(refine_module, "time", types.SimpleNamespace(perf_counter=tick))
    x = model.images_to_tensor(IMAGES)
    # patience past the ~200 steps the budget allows: only the clock may stop a batch, however soon the
    # bundled model's latents converge
    result = refine_latents(model, x, 100_000, max_seconds=2.0, batch_size=2, patience=1_000)
    assert result.stopped == "time"
    assert 62 <= result.steps <= 68, result.steps
    assert 1.95 <= result.seconds <= 2.05, result.seconds
    # the same budget in one batch: one deadline, about three times the steps
    now[0] = 0.0
    single = refine_latents(model, x, 100_000, max_seconds=2.0, batch_size=len(x), patience=1_000)
    assert 190 <= single.steps <= 200 and single.stopped == "time", single.steps


def test_refine_gradients_reach_the_latents_only(model) -> None:
    calls = []

    def features(images: torch.Tensor) -> torch.Tensor:
        calls.append(images.shape)
        return torch.nn.functional.avg_pool2d(images, 4).flatten(1)

    model.decoder.train()
    try:
        result = refine_latents(model, IMAGES[:2], 3, features=features, feature_weight=0.5)
        assert model.decoder.training  # put back as it was
    finally:
        model.decoder.eval()
    assert all(p.grad is None for p in model.parameters())
    assert calls and calls[0][-1] == model.config.content_size
    assert result.latents.shape == (2, model.latent_dim) and not result.latents.requires_grad


def test_refine_works_inside_inference_mode(model) -> None:
    with torch.inference_mode():
        z = model.encode(IMAGES[:1], refine=2)
    assert z.shape == (1, model.latent_dim)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"refine": -1}, "between 0"),
        ({"refine": 2.5}, "whole number"),
        ({"refine": True}, "whole number"),
        ({"refine": 5, "refine_seconds": 0}, "seconds > 0"),
        ({"refine": 5, "refine_seconds": float("nan")}, "seconds > 0"),
        ({"refine": 5, "sample": True}, "sample=True"),
    ],
)
def test_bad_refine_values_are_rejected(model, kwargs, words) -> None:
    with pytest.raises(DCVAEError, match=words):
        model.encode(IMAGES[:1], **kwargs)


def test_bad_refine_settings_name_the_setting(model) -> None:
    with pytest.raises(DCVAEError, match="lr must be"):
        refine_latents(model, IMAGES[:1], 2, lr=0)
    with pytest.raises(DCVAEError, match="anchor_weight"):
        refine_latents(model, IMAGES[:1], 2, anchor_weight=-1.0)
    with pytest.raises(DCVAEError, match="init must be latents"):
        refine_latents(model, IMAGES[:2], 2, init=torch.zeros(3, model.latent_dim))
    with pytest.raises(LatentError, match="refine needs images"):
        model.edit(model.encode(IMAGES[:1]), {"long_sleeves": 1.0}, refine=5)


def test_cli_encode_refine_records_steps(tmp_path: Path) -> None:
    plain, refined = tmp_path / "plain.safetensors", tmp_path / "refined.safetensors"
    args = ["encode", *map(str, IMAGES[:3]), "--offline", "-q"]
    assert runner.invoke(app, [*args, "-o", str(plain)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(refined), "--refine", "5"])
    assert result.exit_code == 0, result.output
    with safe_open(str(refined), "pt") as f:
        meta = f.metadata()
        z = f.get_tensor("latents")
    with safe_open(str(plain), "pt") as f:
        z0 = f.get_tensor("latents")
        assert "refine" not in f.metadata()  # without --refine the file is as before
    info = json.loads(meta["refine"])
    assert info["steps"] == 5 and info["steps_run"] == 5 and info["stopped"] == "steps"
    assert z.shape == z0.shape and not torch.equal(z, z0)


def test_cli_reconstruct_and_edit_refine(tmp_path: Path) -> None:
    grid = tmp_path / "recon.png"
    result = runner.invoke(app, ["reconstruct", *map(str, IMAGES[:2]), "--grid", str(grid), "--refine", "3",
                                 "--offline", "-q"])
    assert result.exit_code == 0, result.output
    assert grid.is_file()
    out = tmp_path / "edited"
    result = runner.invoke(app, ["edit", str(IMAGES[0]), "-a", "long_sleeves=1", "--refine", "3",
                                 "--refine-seconds", "30", "-o", str(out), "--offline", "-q"])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) == 1


def test_cli_refine_failures_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    target = tmp_path / "z.safetensors"
    result = runner.invoke(app, ["encode", str(IMAGES[0]), str(bad), "-o", str(target), "--refine", "3",
                                 "--offline"])
    assert result.exit_code == 1 and "broken.png" in result.output
    out = tmp_path / "recon"
    result = runner.invoke(app, ["reconstruct", str(IMAGES[0]), str(bad), "-o", str(out), "--refine", "3",
                                 "--offline"])
    assert result.exit_code == 1
    assert not target.exists() and not out.exists()
    for args, words in (
        (["--refine", "-2"], "--refine"),
        (["--refine-seconds", "5"], "give --refine N too"),
        (["--refine", "3", "--refine-seconds", "0"], "seconds > 0"),
        (["--refine", "3", "--sample"], "drop --sample"),
    ):
        result = runner.invoke(app, ["encode", str(IMAGES[0]), "-o", str(target), *args, "--offline"])
        assert result.exit_code == 2 and words in result.output, result.output
        assert not target.exists()
    result = runner.invoke(app, ["encode", str(IMAGES[0]), "-o", str(tmp_path / "shards"), "--refine", "3"])
    assert result.exit_code == 2 and not (tmp_path / "shards").exists()
