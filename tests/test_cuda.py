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


def test_resume_on_cuda_continues_the_run(tmp_path):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    options = tiny()
    training_loop(options, tmp_path / "straight", device="cuda", progress=False)
    training_loop(options, tmp_path / "split", device="cuda", progress=False, stop_after=3)
    training_loop(options, tmp_path / "split", device="cuda", progress=False)
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)
    b = load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)
    for net in ("E", "G", "D"):
        for key in a[net]:
            # bilinear up-sampling's backward uses atomics on CUDA: equal up to float rounding, not bit-exact
            assert torch.allclose(a[net][key].float(), b[net][key].float(), atol=1e-4), f"{net}.{key}"


def test_inference_fast_path_matches_plain_networks_on_cuda():
    from dcvae_tools import load_model

    model = load_model("fashion-mnist-32", device="cuda", local_files_only=True)
    x = torch.rand(16, 1, 32, 32, device="cuda") * 2 - 1
    with torch.no_grad():
        plain_mu = model.encoder(x)[0]
        plain_images = model.decoder(plain_mu)
    assert torch.allclose(model.encode(x), plain_mu, atol=1e-3)
    assert torch.allclose(model.decode(plain_mu), plain_images, atol=1e-3)
