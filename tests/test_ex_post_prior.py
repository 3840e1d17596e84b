"""The Gaussian-mixture EM of reports/experiments/ex_post_prior.py, whose sample FDs docs/models.md reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "reports" / "experiments" / "ex_post_prior.py"


def _script():
    spec = importlib.util.spec_from_file_location("ex_post_prior", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_clusters(n: int = 3000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 0.3]])
    a = torch.randn(n * 3 // 4, 3, generator=generator) @ mix.T + torch.tensor([6.0, 0.0, 0.0])
    b = 0.5 * torch.randn(n // 4, 3, generator=generator) + torch.tensor([-6.0, 2.0, 1.0])
    return torch.cat([a, b]), mix @ mix.T, torch.tensor([6.0, 0.0, 0.0])


def test_em_recovers_a_known_mixture_and_samples_from_it() -> None:
    script = _script()
    x, cov_a, mean_a = _two_clusters()
    gmm = script.fit_gmm(x, 2, seed=0)
    big = int(torch.argmax(gmm["weights"]))
    assert abs(float(gmm["weights"][big]) - 0.75) < 0.02
    assert torch.allclose(gmm["means"][big].float(), mean_a, atol=0.1)
    chol = gmm["chol"][big]
    assert torch.allclose((chol @ chol.T).float(), cov_a, atol=0.1)  # the correlation between dims 0 and 1
    samples = script.sample_gmm(gmm, 20_000, seed=0)
    assert samples.shape == (20_000, 3)
    assert abs(float((samples[:, 0] > 0).float().mean()) - 0.75) < 0.02
    assert torch.allclose(samples.mean(0), x.mean(0), atol=0.15)
    assert torch.equal(samples, script.sample_gmm(gmm, 20_000, seed=0))  # seeded


def test_one_component_is_the_moment_matched_gaussian() -> None:
    x, _, _ = _two_clusters()
    gmm = _script().fit_gmm(x, 1)
    chol = gmm["chol"][0]
    assert torch.allclose(gmm["means"][0], x.double().mean(0), atol=1e-9)
    assert torch.allclose(chol @ chol.T, torch.cov(x.double().T, correction=0), atol=1e-4)
