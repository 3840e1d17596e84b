"""The progan backbone and progressive training: growth 4x4 -> 32x32 on real photos with the recorded fade-in,
per-stage exports through load_model, exact resume in the middle of a fade-in, stable parameter names,
exact continuity at alpha = 0, config checks, and one forward pass at 256 (reduced widths) / 512 (paper)."""

from __future__ import annotations

import importlib.util
import json
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from dcvae_tools import load_model
from dcvae_tools.config import ModelConfig
from dcvae_tools.errors import ConfigError
from dcvae_tools.model import DCVAE
from dcvae_tools.networks import build_network, progan
from training.options import OptionsError
from training.presets import all_presets, get_preset
from training.progressive import (
    ProgressiveSchedule,
    export_stage,
    grow_into,
    make_progressive_dataset,
    progressive_training_loop,
)
from training.training_loop import CHECKPOINT_NAME, load_checkpoint

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
# Real photos: scikit-image's LFW faces; Fashion-MNIST (the Debian package CI installs) where it is missing.
DATA = "skimage-lfw-faces" if HAS_SKIMAGE else "fashion-mnist"
TINY_ARGS = {"fmap_base": 32, "fmap_max": 16, "max_resolution": 32}  # widths 16, 16, 16, 2 at 4, 8, 16, 32
SCHEDULE = ProgressiveSchedule(start_resolution=4, stable_images=16, fade_images=32, decoder_lr=1e-3)  # 2 + 3 x 6 iters
STOP_MID_FADE = 5  # stage 8x8 runs iterations 3..8; after 5, alpha has been 0, .25, .5 and is next .75
EXPECTED_ALPHAS = [(4, 1.0)] * 2 + [(r, a) for r in (8, 16, 32) for a in (0.0, 0.25, 0.5, 0.75, 1.0, 1.0)]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_options(**changes):
    return get_preset("faces-progan32").override(
        **{
            "dataset": DATA,
            "architecture_args": TINY_ARGS,
            "latent_dim": 8,
            "queue_size": 64,
            "batch_size": 8,
            "gen_batch_size": 8,
            "n_critic": 2,
            "log_every": 1,
            "snapshot_every": 10**6,
            "checkpoint_every": 10**6,
            **changes,
        }
    )


def _photos(size: int, n: int = 6) -> list[np.ndarray]:
    """n real photos (uint8 grey) from the training data, for encoding through the inference model."""
    ds = make_progressive_dataset(DATA, "train", size, 1, None)
    return [((ds[i][0][0].numpy() + 1) * 127.5).round().astype(np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """One uninterrupted growth 4x4 -> 32x32; returns (run_dir, summary)."""
    run = tmp_path_factory.mktemp("progan") / "run"
    summary = progressive_training_loop(tiny_options(), SCHEDULE, run, progress=False)
    return run, summary


def _stats(run) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def _without_perf(stats: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if not k.startswith("Perf/")} for s in stats]


def _tensors(state: dict) -> dict[str, torch.Tensor]:
    out = {f"{net}.{k}": v for net in ("E", "G", "G_ema", "D", "D_M") for k, v in state[net].items()}
    out.update({f"queue.{layer}.{k}": v for layer, q in state["queues"].items() for k, v in q.items()})
    return out


# ----------------------------------------------------------------------------- growth, fade-in, exports


def test_growth_runs_every_stage_with_the_recorded_fade_in(grown):
    run, summary = grown
    assert summary["finished"] and summary["iteration"] == 20 and summary["resolution"] == 32
    stats = _stats(run)
    assert [(int(s["Progress/resolution"]), s["Progress/alpha"]) for s in stats] == EXPECTED_ALPHAS
    assert [s["iteration"] for s in stats] == list(range(1, 21))
    for resolution in (4, 8, 16, 32):  # every stage trains the full DC-VAE objective
        keys = set().union(*(s for s in stats if s["Progress/resolution"] == resolution))
        assert {"Loss/D/hinge", "Loss/G/hinge", "Loss/contrastive/b1", "Loss/contrastive/final"} <= keys
    assert all(np.isfinite(v) for s in stats for v in s.values())
    state = load_checkpoint(run / CHECKPOINT_NAME)  # weights_only=True
    assert state["resolution"] == 32 and state["alpha_x1000"] == 1000
    assert int(state["queues"]["b1"]["pointer"]) == (10 * 8) % 64  # the queue persisted across all stages
    assert state["opt_G"]["param_groups"][0]["lr"] == 1e-3 and state["opt_E"]["param_groups"][0]["lr"] == 2e-4


def test_each_stage_export_loads_and_encodes_decodes_at_its_resolution(grown):
    run, summary = grown
    previous_keys: set[str] = set()
    for resolution in (4, 8, 16, 32):
        folder = run / "stages" / f"{resolution}x{resolution}"
        assert str(folder) in summary["exported"]
        model = load_model(folder)
        assert model.config.image_size == resolution and model.config.architecture == "progan"
        assert "fade_alpha_x1000" not in model.config.architecture_args
        assert model.config.architecture_args["max_resolution"] == 32
        z = model.encode(_photos(resolution))
        assert z.shape == (6, 8) and torch.isfinite(z).all()
        images = model.decode(z)
        assert images.shape == (6, 1, resolution, resolution)
        assert images.abs().max() <= 1 and torch.isfinite(images).all()
        keys = set(load_file(str(folder / "model.safetensors")))
        assert previous_keys <= keys  # a stage's release loads into the next stage (only new layers missing)
        if previous_keys:
            new = progan.new_layer_prefixes(resolution)
            assert all(k.split(".", 1)[1].startswith(new) for k in keys - previous_keys)
        previous_keys = keys


def test_sigterm_mid_fade_stops_with_the_checkpoint_stop_after_writes(tmp_path):
    def progress_fn(iteration: int, stats: dict[str, float]) -> None:
        if iteration == STOP_MID_FADE:
            signal.raise_signal(signal.SIGTERM)

    summary = progressive_training_loop(
        tiny_options(), SCHEDULE, tmp_path / "run", progress_fn=progress_fn, progress=False
    )
    assert (summary["iteration"], summary["finished"], summary["stopped_by"]) == (STOP_MID_FADE, False, "SIGTERM")
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert (state["iteration"], state["resolution"], state["stage_images"], state["alpha_x1000"]) == (
        STOP_MID_FADE, 8, 24, 750
    )


def test_resume_mid_fade_in_equals_uninterrupted_and_exports_the_fade(grown, tmp_path):
    run, _ = grown
    resumed = tmp_path / "run"
    first = progressive_training_loop(tiny_options(), SCHEDULE, resumed, stop_after=STOP_MID_FADE, progress=False)
    assert not first["finished"] and first["iteration"] == STOP_MID_FADE
    state = load_checkpoint(resumed / CHECKPOINT_NAME)
    assert (state["resolution"], state["stage_images"], state["alpha_x1000"]) == (8, 24, 750)

    # the mid-fade checkpoint exports with its alpha and reproduces the EMA decoder's function exactly
    model = load_model(export_stage(resumed, tmp_path / "mid-fade"))
    assert model.config.image_size == 8 and model.config.architecture_args["fade_alpha_x1000"] == 750
    assert model.config.description.endswith(f"fade-in alpha 0.750; {STOP_MID_FADE:,} iterations)")
    config = ModelConfig(architecture="progan", image_size=8, channels=1, latent_dim=8, architecture_args=TINY_ARGS)
    decoder = build_network(config, "decoder")
    decoder.load_state_dict(state["G_ema"])
    progan.set_alpha(decoder, 0.75)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.decode(z), decoder(z))
        progan.set_alpha(decoder, 1.0)
        assert not torch.allclose(model.decode(z), decoder(z))

    second = progressive_training_loop(tiny_options(), SCHEDULE, resumed, progress=False)
    assert second["finished"] and second["iteration"] == 20
    expected, got = (
        _tensors(load_checkpoint(run / CHECKPOINT_NAME)),
        _tensors(load_checkpoint(resumed / CHECKPOINT_NAME)),
    )
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), [
        k for k in expected if not torch.equal(expected[k], got[k])
    ][:5]
    assert _without_perf(_stats(resumed)) == _without_perf(_stats(run))


def test_a_mid_fade_run_folder_loads_exports_and_releases_as_its_stage(tmp_path):
    """`model_from_run` (what `eval`, `export` and `release` load) gives a progressive run's current stage at its
    fade-in alpha, not the final resolution's networks (which its checkpoint does not hold)."""
    from typer.testing import CliRunner

    from training.cli import UserError, app
    from training.export import model_from_run

    run = tmp_path / "run"
    progressive_training_loop(tiny_options(), SCHEDULE, run, stop_after=STOP_MID_FADE, progress=False)
    staged = load_model(export_stage(run, tmp_path / "staged"))
    model = model_from_run(run)
    assert model.config.to_dict() == staged.config.to_dict()
    assert model.config.image_size == 8 and model.config.architecture_args["fade_alpha_x1000"] == 750
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.decode(z), staged.decode(z))

    runner = CliRunner()
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "exported")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "exported").config.to_dict() == staged.config.to_dict()
    result = runner.invoke(app, ["release", str(run), "--name", "faces-stage", "--repo-id", "org/faces-stage",
                                 "--no-bundle", "-o", str(tmp_path / "released"),
                                 "--manifest", str(tmp_path / "manifest.json")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "released").config.architecture_args["fade_alpha_x1000"] == 750
    assert "faces-stage" in json.loads((tmp_path / "manifest.json").read_text())["models"]
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "never"), "--training-state"])
    assert isinstance(result.exception, UserError) and "progressive" in str(result.exception)
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    "option", [{"network_snapshot_every": 2}, {"channels_last": True}, {"compile": True}, {"translate": 2}]
)
def test_single_resolution_options_are_refused_not_ignored(tmp_path, option):
    name = next(iter(option))
    with pytest.raises(OptionsError, match=f"{name}=.*is for single-resolution training"):
        progressive_training_loop(tiny_options(**option), SCHEDULE, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # refused before the folder is made


def test_a_run_saved_with_compile_before_it_was_refused_still_resumes(tmp_path):
    """Progressive runs once accepted compile=true and ignored it: such a checkpoint goes on without it."""
    from training.run_state import write_checkpoint

    run = tmp_path / "run"
    progressive_training_loop(tiny_options(), SCHEDULE, run, stop_after=2, progress=False)
    state = load_checkpoint(run / CHECKPOINT_NAME)
    state["options"] = json.dumps({**json.loads(state["options"]), "compile": True})
    write_checkpoint(state, run / CHECKPOINT_NAME)
    summary = progressive_training_loop(tiny_options(), SCHEDULE, run, stop_after=3, progress=False)
    assert summary["iteration"] == 3


def test_progressive_training_scales_the_contrastive_step_on_the_logit_path(tmp_path):
    """The progressive loop passes each stage's discriminator to the scaled step: at scale 0 the trunk and the
    pooled feature differ from the official run's after the first iteration (discriminator, adversarial and
    contrastive phases), and the heads, which that iteration steps alike, do not."""
    from training.objective import logit_path_parameters

    states = {}
    for scale in (1.0, 0.0):
        run = tmp_path / f"scale-{scale}"
        progressive_training_loop(
            tiny_options(contrastive_trunk_lr_scale=scale), SCHEDULE, run, stop_after=1, progress=False
        )
        states[scale] = load_checkpoint(run / CHECKPOINT_NAME)["D"]
    D = build_network(tiny_options().model_config(), "discriminator", spectral_norm=True)
    on_path = {id(p) for p in logit_path_parameters(D)}
    path = {name for name, p in D.named_parameters() if id(p) in on_path}
    names = set(states[1.0]) & {name for name, _ in D.named_parameters()}
    changed = {name for name in names if not torch.equal(states[1.0][name], states[0.0][name])}
    assert changed and changed <= path
    assert any(name.startswith("b1_") for name in names - changed)


def test_resume_refuses_another_schedule_or_options_and_writes_nothing(grown, tmp_path):
    run, _ = grown
    written = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.suffix == ".json"}
    other = ProgressiveSchedule(start_resolution=4, stable_images=8, fade_images=32)
    with pytest.raises(OptionsError, match="another schedule"):
        progressive_training_loop(tiny_options(), other, run, progress=False)
    with pytest.raises(OptionsError, match=r"lr: 0\.0002 in the checkpoint, 5e-05 now"):
        progressive_training_loop(tiny_options(lr=5e-5), SCHEDULE, run, progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.suffix == ".json"} == written


# ----------------------------------------------------------------------------- the networks


@pytest.mark.parametrize("kind", ["encoder", "decoder", "discriminator"])
def test_names_stable_across_stages_and_alpha_zero_is_the_previous_stage(kind):
    torch.manual_seed(0)
    sn = kind != "decoder"
    previous = None
    for resolution in (4, 8, 16, 32, 64):
        args = {**TINY_ARGS, "max_resolution": 64}
        net = progan.build(kind, channels=3, latent_dim=8, image_size=resolution, args=args, spectral_norm=sn)
        if previous is not None:
            assert set(previous.state_dict()) < set(net.state_dict())
            missing = grow_into(previous, net, resolution)  # checks: only the new resolution's layers missing
            assert set(missing) == set(net.state_dict()) - set(previous.state_dict())
            previous.eval(), net.eval()
            progan.set_alpha(net, 0.0)
            with torch.no_grad():
                if kind == "decoder":
                    z = torch.randn(4, 8)
                    assert torch.equal(F.interpolate(previous(z), scale_factor=2.0, mode="nearest"), net(z))
                else:
                    x = torch.rand(8, 3, resolution, resolution) * 2 - 1
                    a, b = previous(F.avg_pool2d(x, 2)), net(x)
                    if kind == "encoder":
                        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)
                    else:
                        assert torch.allclose(a[0], b[0], atol=1e-6)
                        assert all(torch.allclose(a[1][k], b[1][k], atol=1e-6) for k in ("b1", "final"))
                progan.set_alpha(net, 0.5)
                half = net(z) if kind == "decoder" else net(x)[0]
                progan.set_alpha(net, 0.0)
                zero = net(z) if kind == "decoder" else net(x)[0]
                assert not torch.allclose(half, zero)
            progan.set_alpha(net, 1.0)
        previous = net


def test_discriminator_interface_and_widths():
    d = progan.build("discriminator", channels=3, latent_dim=8, image_size=32, args=TINY_ARGS, spectral_norm=True)
    logits, feats = d(torch.rand(8, 3, 32, 32) * 2 - 1)
    assert logits.shape == (8,) and feats["b1"].shape == (8, 16) and feats["final"].shape == (8, 16)
    assert [progan.width(r, 8192, 512) for r in progan.resolutions(1024)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert progan.IMAGE_SIZES == (4, 8, 16, 32, 64, 128, 256, 512, 1024)


def test_encoder_posterior_does_not_depend_on_the_batch():
    model = DCVAE(
        ModelConfig(architecture="progan", image_size=16, channels=3, latent_dim=8, architecture_args=TINY_ARGS)
    )
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    together = model.encode(x)
    alone = torch.cat([model.encode(x[i : i + 1]) for i in range(5)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_minibatch_stddev_groups_consecutive_images():
    x = torch.cat([torch.zeros(4, 2, 4, 4), torch.randn(4, 2, 4, 4)])
    out = progan.minibatch_stddev(x)
    assert out.shape == (8, 3, 4, 4)
    assert torch.allclose(out[:4, 2], torch.full((4, 4, 4), 1e-4)) and (out[4:, 2] > 0.1).all()


def test_config_checks():
    def config(**kw):
        return ModelConfig(**{"architecture": "progan", "image_size": 16, "channels": 3, "latent_dim": 8, **kw})

    with pytest.raises(ConfigError, match="image_size"):
        config(image_size=24)
    with pytest.raises(ConfigError, match="fade_alpha_x1000"):
        config(architecture_args={"fade_alpha_x1000": 1001})
    with pytest.raises(ConfigError, match="not an argument of progan"):
        config(architecture_args={"gf_dim": 8})
    with pytest.raises(ConfigError, match="max_resolution"):
        DCVAE(config(architecture_args={**TINY_ARGS, "max_resolution": 8}))
    with pytest.raises(ConfigError, match="no fade-in"):
        DCVAE(config(image_size=4, architecture_args={**TINY_ARGS, "fade_alpha_x1000": 500}))
    faded = DCVAE(config(architecture_args={**TINY_ARGS, "fade_alpha_x1000": 250}))
    assert faded.decoder.alpha == 0.25 and faded.encoder.alpha == 0.25


def test_forward_256_reduced_widths():
    args = {"fmap_base": 512, "fmap_max": 64, "max_resolution": 256}
    decoder = progan.build("decoder", channels=3, latent_dim=64, image_size=256, args=args, spectral_norm=False)
    encoder = progan.build("encoder", channels=3, latent_dim=64, image_size=256, args=args, spectral_norm=False)
    with torch.inference_mode():
        x = decoder(torch.randn(1, 64))
        mu, logvar = encoder(x)
    assert x.shape == (1, 3, 256, 256) and mu.shape == logvar.shape == (1, 64)


@pytest.mark.slow
def test_forward_512_paper_widths():
    args = {"fmap_base": 8192, "fmap_max": 512, "max_resolution": 512}
    decoder = progan.build("decoder", channels=3, latent_dim=512, image_size=512, args=args, spectral_norm=False)
    encoder = progan.build("encoder", channels=3, latent_dim=512, image_size=512, args=args, spectral_norm=False)
    assert 23_000_000 < sum(p.numel() for p in decoder.parameters()) < 23_200_000  # ProGAN's G: 23.1M at 1024
    torch.set_num_threads(2)
    with torch.inference_mode():
        x = decoder(torch.randn(1, 512))
        mu, logvar = encoder(x)
    assert x.shape == (1, 3, 512, 512) and mu.shape == logvar.shape == (1, 512)
    assert torch.isfinite(x).all() and torch.isfinite(mu).all()


# ----------------------------------------------------------------------------- presets and data


def test_presets():
    presets = all_presets()
    for name, size in [("celebahq-progan256", 256), ("celebahq-progan512", 512), ("lsun-bedroom-progan128", 128)]:
        o = presets[name]
        assert o.architecture == "progan" and o.image_size == size and o.architecture_args["max_resolution"] == size
        assert o.architecture_args["fmap_base"] == 8192 and o.architecture_args["fmap_max"] == 512
    from training.presets.faces_progan32 import SCHEDULE as FACES

    faces = presets["faces-progan32"]
    assert faces.total_iterations == FACES.total_iterations(faces) == 1400
    assert [s.resolution for s in FACES.stages(faces)] == [4, 8, 16, 32]


@pytest.mark.skipif(not HAS_SKIMAGE, reason="needs scikit-image")
def test_lfw_faces_dataset():
    ds = make_progressive_dataset("skimage-lfw-faces", "train", 32, 1, None)
    assert len(ds) == 100
    x, label = ds[0]
    assert x.shape == (1, 32, 32) and label == 0 and x.min() >= -1 and x.max() <= 1 and x.std() > 0.1


def test_celebahq_split_by_numeric_name(tmp_path, monkeypatch):
    from PIL import Image

    import training.progressive as progressive

    monkeypatch.setattr(progressive, "CELEBAHQ_TRAIN", 9)
    monkeypatch.setattr(progressive, "CELEBAHQ_VALIDATION", 2)
    for i in range(11):
        Image.fromarray(np.full((6, 6, 3), i * 20, np.uint8)).save(tmp_path / f"{i}.png")
    train = make_progressive_dataset(f"celebahq:{tmp_path}", "train", 4, 3, None)
    val = make_progressive_dataset("celebahq", "test", 4, 3, str(tmp_path))
    assert len(train) == 9 and len(val) == 2
    assert [round((float(val[i][0].mean()) + 1) * 127.5) for i in range(2)] == [180, 200]  # 9.png, 10.png
    with pytest.raises(ValueError, match="CelebA-HQ has 11 images; found 10"):
        (tmp_path / "0.png").unlink()
        make_progressive_dataset(f"celebahq:{tmp_path}", "train", 4, 3, None)


def test_lsun_lmdb(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(ModuleNotFoundError, match="pip install lmdb"):
        make_progressive_dataset(f"lsun:{tmp_path}", "train", 8, 3, None)
    monkeypatch.undo()
    lmdb = pytest.importorskip("lmdb")
    import io

    from PIL import Image

    env = lmdb.open(str(tmp_path / "bedroom_train_lmdb"), map_size=1 << 22)
    with env.begin(write=True) as txn:
        for i in range(3):
            buffer = io.BytesIO()
            Image.fromarray(np.full((12, 16, 3), 40 * i, np.uint8)).save(buffer, format="JPEG")
            txn.put(f"{i:04d}".encode(), buffer.getvalue())
    env.close()
    ds = make_progressive_dataset("lsun", "train", 8, 3, str(tmp_path / "bedroom_train_lmdb"))
    assert len(ds) == 3
    x, _ = ds[2]
    assert x.shape == (3, 8, 8) and abs(float(x.mean()) - (80 / 127.5 - 1)) < 0.05


def test_progress_bar_counts_each_stage_on_stderr(tmp_path, capsys):
    progressive_training_loop(tiny_options(log_every=2), SCHEDULE, tmp_path / "run", stop_after=STOP_MID_FADE)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays free for the command's JSON summary
    # stage 8x8 starts after the two 4x4 iterations; --stop-after 5 ends its bar at 3 of 3
    assert "faces-progan32 8x8 (stage 2/4)" in captured.err and "3/3" in captured.err
    assert f"{4:>8,}  " in captured.err and "G/hinge" in captured.err  # a loss line per log interval

    # resumed mid-fade, the bar goes on from the checkpoint's place and ends with the last stage, 6 of 6
    progressive_training_loop(tiny_options(log_every=2), SCHEDULE, tmp_path / "run")
    captured = capsys.readouterr()
    assert "faces-progan32 32x32 (stage 4/4)" in captured.err and "6/6" in captured.err

    progressive_training_loop(tiny_options(), SCHEDULE, tmp_path / "quiet", stop_after=2, progress=False)
    assert capsys.readouterr().err == ""
