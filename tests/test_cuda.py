"""CUDA: training iterations in fp32 / bf16 / fp16, a save-resume round trip, and the inference fast path.

Marked ``cuda`` and skipped without a GPU; ``bash benchmarks/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import math

import pytest
import torch

from training.presets import get_preset
from training.training_loop import CHECKPOINT_NAME, load_checkpoint, training_loop

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)"),
]


def tiny(**changes):
    return get_preset("tiny").override(
        **{"log_every": 1, "snapshot_every": 1000, "checkpoint_every": 1000, "total_iterations": 6, **changes}
    )


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_training_iterations_on_cuda(tmp_path, amp):
    logged = []
    training_loop(tiny(amp=amp, channels_last=amp != "none"), tmp_path / "run", device="cuda", progress=False,
                  progress_fn=lambda i, s: logged.append(s))
    assert logged and all(math.isfinite(v) for s in logged for v in s.values())
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert bool(state["scaler"]) == (amp == "fp16")
    assert "cuda" in state["rng"][0]


def _weight_distance(a, b) -> float:
    """L2 distance between two checkpoints' networks (the EMA decoder included), all weights as one vector."""
    return math.sqrt(sum(
        (a[net][key].double() - b[net][key].double()).pow(2).sum().item()
        for net in ("E", "G", "G_ema", "D") for key in a[net] if a[net][key].is_floating_point()
    ))


def test_resume_on_cuda_continues_the_run(tmp_path, monkeypatch):
    """A run split at iteration 3 ends where an unbroken one does: same random streams, data position and optimizer
    steps exactly; weights as close as two unbroken runs are to each other.

    Bilinear up-sampling's backward accumulates with atomics on CUDA, so two unbroken runs already differ by float
    rounding (amplified by Adam): on the H200 the largest single weight differed by about 1e-4 after 6 iterations,
    half the learning rate. So the weights are compared as L2 distances, against two references measured here: two
    unbroken runs (the rounding floor) and the run's own state at iteration 3 (how far 3 iterations move it).
    """
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    options = tiny()
    for name in ("straight", "again"):
        training_loop(options, tmp_path / name, device="cuda", progress=False)
    training_loop(options, tmp_path / "split", device="cuda", progress=False, stop_after=3)
    halfway = load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)
    training_loop(options, tmp_path / "split", device="cuda", progress=False)
    straight, again, split = (load_checkpoint(tmp_path / n / CHECKPOINT_NAME) for n in ("straight", "again", "split"))

    assert halfway["iteration"] == 3
    assert split["iteration"] == straight["iteration"] == options.total_iterations
    assert split["loader"] == straight["loader"]
    for mine, theirs in zip(split["rng"], straight["rng"], strict=True):
        assert set(mine) == set(theirs) == {"cpu", "cuda"}
        for kind in mine:
            assert torch.equal(mine[kind], theirs[kind]), f"{kind} random state differs after resuming"
    for opt in ("opt_E", "opt_G", "opt_D"):
        steps = [{key: float(state["step"]) for key, state in ckpt[opt]["state"].items()} for ckpt in (split, straight)]
        assert steps[0] == steps[1], opt

    floor, moved = _weight_distance(straight, again), _weight_distance(halfway, straight)
    resumed = _weight_distance(split, straight)
    assert resumed <= 3 * floor + 1e-3 * moved, f"floor {floor:.3e}, resumed {resumed:.3e}, 3 iterations {moved:.3e}"
    assert resumed < 0.5 * moved, f"the resumed run is not closer than its iteration-3 state ({resumed:.3e})"


def test_inference_fast_path_matches_plain_networks_on_cuda(monkeypatch):
    from dcvae_tools import load_model

    # TF32 convolutions (PyTorch's default on Ampere and later) round differently in the folded layers; the
    # float32 claim is checked in float32
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = load_model("fashion-mnist-32", device="cuda", local_files_only=True)
    # a model batch: noise inside the content, -1 in the padding frame (what images_to_tensor gives)
    x = model.images_to_tensor(torch.rand(16, 1, 32, 32) * 2 - 1).to("cuda")
    with torch.no_grad():
        plain_mu = model.encoder(x)[0]
        plain_images = model.decoder(plain_mu)
    assert torch.allclose(model.encode(x), plain_mu, atol=1e-3)
    assert torch.allclose(model.decode(plain_mu), plain_images, atol=1e-3)


def test_a_cuda_index_beyond_the_machines_devices_is_refused_by_name():
    from dcvae_tools.arguments import check_device
    from dcvae_tools.errors import DCVAEError

    count = torch.cuda.device_count()
    check_device(f"cuda:{count - 1}")
    with pytest.raises(DCVAEError, match=rf"--device cuda:{count}: this machine has {count} CUDA device"):
        check_device(f"cuda:{count}", cli=True)


def test_a_cuda_generator_as_seed_is_refused_with_the_fix():
    from dcvae_tools.errors import LatentError
    from dcvae_tools.latent import random_mask

    with pytest.raises(LatentError, match=r"pass a CPU torch\.Generator or a seed"):
        random_mask(8, 0.5, seed=torch.Generator(device="cuda").manual_seed(0))
