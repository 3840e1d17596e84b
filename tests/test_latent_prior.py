"""The fitted latent prior: EM (training.latent_prior), the latent_prior.safetensors file (dcvae_tools.prior), its
place in a release, sampling from it in Python, on the command line and in the sampling metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from dcvae_tools import save_pretrained
from dcvae_tools.cli import app
from dcvae_tools.config import ModelConfig
from dcvae_tools.errors import ConfigError, DCVAEError
from dcvae_tools.model import DCVAE
from dcvae_tools.prior import (
    FORMAT_VERSION,
    LATENT_PRIOR_NAME,
    MAX_COMPONENTS,
    LatentPrior,
    load_latent_prior,
    max_latent_prior_bytes,
    save_latent_prior,
)
from dcvae_tools.release import load_release
from training.latent_prior import fit_latent_prior, posterior_draws

pytestmark = pytest.mark.usefixtures("one_thread")
LATENT = 8


def _two_clusters(n: int = 3000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 0.3]])
    a = torch.randn(n * 3 // 4, 3, generator=generator) @ mix.T + torch.tensor([6.0, 0.0, 0.0])
    b = 0.5 * torch.randn(n // 4, 3, generator=generator) + torch.tensor([-6.0, 2.0, 1.0])
    return torch.cat([a, b]), mix @ mix.T, torch.tensor([6.0, 0.0, 0.0])


def _prior(dim: int = LATENT, components: int = 3, seed: int = 0) -> LatentPrior:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(600, dim, generator=generator) * torch.linspace(3.0, 0.5, dim) + 4.0
    return fit_latent_prior(x, components, metadata={"dataset": "synthetic"})


# ---------------------------------------------------------------------------- EM


def test_em_recovers_a_known_mixture_and_samples_from_it() -> None:
    x, cov_a, mean_a = _two_clusters()
    prior = fit_latent_prior(x, 2, seed=0)
    big = int(torch.argmax(prior.weights))
    assert abs(float(prior.weights[big]) - 0.75) < 0.02
    assert torch.allclose(prior.means[big].float(), mean_a, atol=0.1)
    scale = prior.scale_tril[big]
    assert torch.allclose((scale @ scale.T).float(), cov_a, atol=0.1)  # the correlation between dims 0 and 1
    samples = prior.sample(20_000, torch.Generator().manual_seed(0))
    assert samples.shape == (20_000, 3) and samples.dtype == torch.float32
    assert abs(float((samples[:, 0] > 0).float().mean()) - 0.75) < 0.02
    assert torch.allclose(samples.mean(0), x.mean(0), atol=0.15)
    assert torch.equal(samples, prior.sample(20_000, torch.Generator().manual_seed(0)))  # seeded
    # a smaller draw is the start of a larger one, as for N(0, I) (rows of 16 normals: D = 16 here)
    wide = fit_latent_prior(torch.randn(500, 16, generator=torch.Generator().manual_seed(2)) * 2 + 1, 4)
    many, few = (wide.sample(k, torch.Generator().manual_seed(9)) for k in (64, 3))
    assert torch.equal(many[:3], few) and not torch.equal(many[3:6], few)
    assert prior.metadata["count"] == len(x) and prior.metadata["components"] == 2


def test_one_component_is_the_moment_matched_gaussian() -> None:
    x, _, _ = _two_clusters()
    prior = fit_latent_prior(x, 1)
    scale = prior.scale_tril[0]
    assert torch.allclose(prior.means[0], x.double().mean(0), atol=1e-9)
    assert torch.allclose(scale @ scale.T, torch.cov(x.double().T, correction=0), atol=1e-4)


def test_log_prob_is_the_mixture_density_and_em_beats_one_gaussian() -> None:
    x, _, _ = _two_clusters()
    two, one = fit_latent_prior(x, 2), fit_latent_prior(x, 1)
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=two.weights),
        torch.distributions.MultivariateNormal(two.means, scale_tril=two.scale_tril),
    )
    assert torch.allclose(two.log_prob(x[:50]), reference.log_prob(x[:50].double()), atol=1e-9)
    assert float(two.log_prob(x).mean()) > float(one.log_prob(x).mean()) + 0.5
    assert two.metadata["mean_log_likelihood"] == pytest.approx(float(two.log_prob(x).mean()), rel=1e-9)


def _separated_clusters(clusters: int = 6, per_cluster: int = 60) -> torch.Tensor:
    """Tight clusters far apart: a start that puts two means in one cluster stays in a poorer optimum."""
    generator = torch.Generator().manual_seed(3)
    centres = torch.randn(clusters, 2, generator=generator) * 40
    return (centres.repeat_interleave(per_cluster, 0) + torch.randn(clusters * per_cluster, 2, generator=generator))


def test_restarts_keep_the_start_of_highest_likelihood() -> None:
    x = _separated_clusters()
    singles = [fit_latent_prior(x, 6, seed=s, restarts=1) for s in range(8)]
    likelihoods = [p.metadata["mean_log_likelihood"] for p in singles]
    assert max(likelihoods) - min(likelihoods) > 0.5  # the starts do end in different optima here
    best = fit_latent_prior(x, 6, seed=0, restarts=8)
    winner = max(range(8), key=likelihoods.__getitem__)
    assert best.metadata["seed"] == winner and best.metadata["restarts"] == 8
    assert best.metadata["mean_log_likelihood"] == likelihoods[winner]
    assert torch.equal(best.means, singles[winner].means)
    assert best.metadata["mean_log_likelihood"] == pytest.approx(float(best.log_prob(x).mean()), rel=1e-9)
    # the starts are seed, seed + 1, ...: restarts from seed 3 try starts 3..5 only
    later = fit_latent_prior(x, 6, seed=3, restarts=3)
    assert later.metadata["seed"] == max(range(3, 6), key=likelihoods.__getitem__)


@pytest.mark.parametrize("restarts", [0, -1, 1.5, True])
def test_impossible_restart_counts_are_refused(restarts: object) -> None:
    with pytest.raises(ValueError, match="restarts must be a whole number >= 1"):
        fit_latent_prior(torch.randn(20, 2), 2, restarts=restarts)  # type: ignore[arg-type]


@pytest.mark.parametrize("components", [0, 7, MAX_COMPONENTS + 1, True])
def test_impossible_mixture_sizes_are_refused(components: int) -> None:
    x = torch.randn(6, 2)
    with pytest.raises(ValueError, match="components must be between 1 and 6"):
        fit_latent_prior(x, components)
    with pytest.raises(ValueError, match="at least two latents"):
        fit_latent_prior(x[:1], 1)


def test_posterior_draws_are_seeded_and_spread_by_the_posterior() -> None:
    mu, logvar = torch.zeros(4000, 2), torch.log(torch.tensor([[4.0, 0.25]])).expand(4000, 2)
    draws = posterior_draws(mu, logvar)
    assert torch.equal(draws, posterior_draws(mu, logvar))
    assert torch.allclose(draws.std(0), torch.tensor([2.0, 0.5]), rtol=0.05)


# ---------------------------------------------------------------------------- the file


def test_file_round_trip(tmp_path: Path) -> None:
    prior = _prior()
    path = tmp_path / LATENT_PRIOR_NAME
    save_latent_prior(prior, path)
    loaded = load_latent_prior(path, LATENT)
    for name in ("means", "scale_tril"):
        assert torch.equal(getattr(loaded, name), getattr(prior, name).float().double()), name
    assert torch.allclose(loaded.weights, prior.weights, atol=1e-6)  # stored float32, renormalised
    assert loaded.metadata["format_version"] == FORMAT_VERSION and loaded.metadata["dataset"] == "synthetic"
    assert loaded.components == 3 and loaded.latent_dim == LATENT
    assert path.stat().st_size <= max_latent_prior_bytes(LATENT)


def _rewrite(path: Path, change=None, metadata_change=None) -> None:
    with safe_open(str(path), "pt") as handle:
        meta = json.loads(handle.metadata()["latent_prior"])
    tensors = load_file(str(path))
    if change is not None:
        change(tensors)
    if metadata_change is not None:
        metadata_change(meta)
    save_file(tensors, str(path), metadata={"format": "pt", "latent_prior": json.dumps(meta)})


def _set(name, value):
    def change(t):
        t[name] = value(t[name])
    return change


@pytest.mark.parametrize(
    ("change", "metadata_change", "latent_dim", "fragment"),
    [
        (None, None, LATENT + 1, "'means' has shape [3, 8], expected [3, 9]"),
        (None, lambda m: m.update(format_version=2), LATENT, "format version 2"),
        (None, lambda m: m.pop("format_version"), LATENT, "format version None"),
        (None, lambda m: m.update(format_version=True), LATENT, "format version True"),
        (_set("means", lambda m: m.double() * 1e300), None, LATENT, "beyond +-1e+06"),
        (_set("weights", lambda w: w * 0.5), None, LATENT, "sum to 1"),
        (_set("weights", lambda w: torch.tensor([1.5, -0.25, -0.25])), None, LATENT, "positive"),
        (_set("means", lambda m: m.index_fill(0, torch.tensor([1]), float("nan"))), None, LATENT, "NaN"),
        (_set("scale_tril", lambda s: s + torch.triu(torch.ones_like(s), 1)), None, LATENT, "lower-triangular"),
        (_set("scale_tril", lambda s: s - 2 * torch.diag_embed(torch.diagonal(s, dim1=-2, dim2=-1))), None, LATENT,
         "positive diagonal"),
        (_set("scale_tril", lambda s: s[:2]), None, LATENT, "'scale_tril' has shape [2, 8, 8], expected [3, 8, 8]"),
        (_set("weights", lambda w: w.to(torch.int64)), None, LATENT, "dtype I64"),
        (lambda t: t.pop("means"), None, LATENT, "holds tensors"),
        (lambda t: t.update(weights=torch.ones(0), means=torch.ones(0, LATENT), scale_tril=torch.ones(0, LATENT,
                                                                                                      LATENT)),
         None, LATENT, "1 <= K <= 256"),
    ],
    ids=["latent-size", "version-2", "no-version", "version-true", "huge-means",
         "weights-sum", "negative-weight", "nan-mean", "upper-triangle",
         "negative-diagonal", "scale-count", "int-weights", "missing-tensor", "no-components"],
)
def test_malformed_files_are_refused_naming_the_file_and_the_fix(tmp_path, change, metadata_change, latent_dim,
                                                                  fragment) -> None:
    path = tmp_path / "odd-name" / LATENT_PRIOR_NAME
    path.parent.mkdir()
    save_latent_prior(_prior(), path)
    if change is not None or metadata_change is not None:
        _rewrite(path, change, metadata_change)
    with pytest.raises(ConfigError) as info:
        load_latent_prior(path, latent_dim)
    message = str(info.value)
    assert str(path) in message and fragment in message and "dcvae-train latent-stats" in message


def test_a_file_larger_than_any_valid_one_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = save_pretrained(_model(prior=False), tmp_path / "release")
    path = folder / LATENT_PRIOR_NAME
    with open(path, "wb") as handle:
        handle.truncate(max_latent_prior_bytes(LATENT) + 1)  # sparse: nothing is written
    with pytest.raises(ConfigError, match=r"more than a latent_prior\.safetensors"):
        load_latent_prior(path, LATENT)
    with pytest.raises(ConfigError, match=r"more than a latent_prior\.safetensors"):
        load_release(folder)


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / LATENT_PRIOR_NAME
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ConfigError, match="latent-prior format version None"):
        load_latent_prior(path, LATENT)
    path.write_bytes(b"\xff" * 20)
    with pytest.raises(ConfigError, match="header claims"):
        load_latent_prior(path, LATENT)


# ---------------------------------------------------------------------------- in a release, and sampling


def _model(prior: bool = True) -> DCVAE:
    torch.manual_seed(0)
    model = DCVAE(ModelConfig(architecture="dcgan32", image_size=32, channels=1, latent_dim=LATENT,
                              architecture_args={"ngf": 8, "ndf": 8}, dataset="unit-test"))
    if prior:
        model.latent_prior = _prior()
    return model


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pretrained(_model(), tmp_path_factory.mktemp("prior") / "release")


def test_a_release_keeps_its_prior_and_samples_from_it_by_default(release: Path) -> None:
    model = load_release(release)
    assert (release / LATENT_PRIOR_NAME).is_file() and model.latent_prior is not None
    expected = model.latent_prior.sample(16, torch.Generator().manual_seed(3))
    assert torch.equal(model.random_latents(16, seed=3), expected)  # auto: the mixture
    assert torch.equal(model.random_latents(16, seed=3, prior="mixture"), expected)
    standard = model.random_latents(16, seed=3, prior="standard")
    assert torch.equal(standard, torch.randn(16, LATENT, generator=torch.Generator().manual_seed(3)).clamp(-1, 1))
    assert torch.equal(model.random_latents(16, seed=3, clamp=2.0), model.random_latents(16, seed=3, clamp=2.0,
                                                                                          prior="standard"))
    four = model.latent_prior.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(model.sample(4, seed=3), model.decode(four))
    # the mixture sits where the fitted latents are (around 4), N(0, I) around 0
    assert float(expected.mean()) > 3.0 and abs(float(standard.mean())) < 0.5


def test_sampling_options_that_cannot_work_say_why(release: Path) -> None:
    model = load_release(release)
    with pytest.raises(DCVAEError, match=r"applies to the standard prior N\(0, I\) only"):
        model.random_latents(4, seed=0, clamp=1.0, prior="mixture")
    with pytest.raises(DCVAEError, match="prior must be 'auto', 'mixture' or 'standard'"):
        model.random_latents(4, seed=0, prior="gmm")  # type: ignore[arg-type]
    bare = _model(prior=False)
    assert torch.equal(bare.random_latents(4, seed=0), bare.random_latents(4, seed=0, prior="standard"))
    with pytest.raises(DCVAEError, match=r"no fitted latent prior.*dcvae-train latent-stats"):
        bare.random_latents(4, seed=0, prior="mixture")


def test_read_derived_false_leaves_a_broken_prior_unread(tmp_path: Path, release: Path) -> None:
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(release, folder)
    (folder / LATENT_PRIOR_NAME).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ConfigError, match=LATENT_PRIOR_NAME):
        load_release(folder)
    assert load_release(folder, read_derived=False).latent_prior is None


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_cli_sample_prior_option(tmp_path: Path, release: Path) -> None:
    runner = CliRunner()
    env = {"HF_HUB_OFFLINE": "1", "DCVAE_DEBUG": None, "COLUMNS": "200"}
    base = ["sample", "-m", f"{release}/", "-n", "3", "--seed", "5"]
    model = load_release(release)
    for prior, expected in (("auto", model.sample(3, seed=5)), ("mixture", model.sample(3, seed=5)),
                            ("standard", model.sample(3, seed=5, prior="standard"))):
        out = tmp_path / prior
        result = runner.invoke(app, [*base, "--prior", prior, "--out-dir", str(out)], env=env)
        assert result.exit_code == 0, result.output
        source = "N(0, I)" if prior == "standard" else "the fitted mixture prior"
        assert f"from {source} with seed 5" in " ".join(result.output.split())
        for i, image in enumerate(model.to_pil(expected)):
            assert np.array_equal(_pixels(out / f"{i:05d}.png"), np.asarray(image)), (prior, i)
    assert not np.array_equal(_pixels(tmp_path / "auto" / "00000.png"), _pixels(tmp_path / "standard" / "00000.png"))

    for clamp in (["--clamp", "1"], ["--no-clamp"]):
        refused = runner.invoke(app, [*base, "--prior", "mixture", *clamp, "-o", str(tmp_path / "x.png")], env=env)
        assert refused.exit_code == 2 and "--prior standard" in refused.output, clamp
        assert not (tmp_path / "x.png").exists()
    # a clamp without --prior means the paper's N(0, I)
    clamped = runner.invoke(app, [*base, "--clamp", "2", "--out-dir", str(tmp_path / "clamped")], env=env)
    assert clamped.exit_code == 0 and "from N(0, I) with seed 5" in " ".join(clamped.output.split())
    expected = model.to_pil(model.sample(3, seed=5, clamp=2.0, prior="standard"))[0]
    assert np.array_equal(_pixels(tmp_path / "clamped" / "00000.png"), np.asarray(expected))
    bare = save_pretrained(_model(prior=False), tmp_path / "bare")
    refused = runner.invoke(app, ["sample", "-m", f"{bare}/", "-n", "2", "--prior", "mixture", "-o",
                                  str(tmp_path / "y.png")], env=env)
    assert refused.exit_code == 2 and "ships no fitted latent prior" in " ".join(refused.output.split())
    assert not (tmp_path / "y.png").exists()


def test_the_mixture_sampling_metric_draws_from_the_shipped_prior(release: Path) -> None:
    from training.metrics.common import crop_content
    from training.metrics.metric_main import MetricOptions, _sample_batches, mixture_source

    model = load_release(release)
    opts = MetricOptions(model=model, dataset="fashion-mnist", sample_prior="mixture", batch_size=8,
                         show_progress=False)
    got = torch.cat(list(_sample_batches(opts, 10)))
    z = model.latent_prior.sample(10, torch.Generator().manual_seed(opts.seed))
    # the same batches as the metric's: a convolution's result may differ in the last bit with the batch size
    assert torch.equal(got, crop_content(model.decode(z, batch_size=8), opts.content_size))
    prior, count = model.latent_prior, int(model.latent_prior.metadata["count"])
    assert mixture_source(opts).endswith(f"{prior.components} components, fitted to {count:,} training latents, "
                                         f"the most likely of {prior.metadata['restarts']} EM starts)")
    standard = MetricOptions(model=model, dataset="fashion-mnist", batch_size=8, show_progress=False)
    got = torch.cat(list(_sample_batches(standard, 10)))  # the paper's protocol stays N(0, I), clamped
    z = torch.randn(10, LATENT, generator=torch.Generator().manual_seed(standard.seed)).clamp(-1, 1)
    assert torch.equal(got, crop_content(model.decode(z, batch_size=8), standard.content_size))


def test_info_says_where_samples_come_from(release: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"HF_HUB_OFFLINE": "1", "DCVAE_DEBUG": None, "COLUMNS": "200"}
    result = runner.invoke(app, ["info", "-m", f"{release}/", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["latent_prior"] == {"components": 3, "train_count": 600, "dataset": "synthetic"}
    assert LATENT_PRIOR_NAME in {f["name"] for f in report["files"]}
    text = runner.invoke(app, ["info", "-m", f"{release}/"], env=env).stdout
    assert "samples from  a fitted mixture of 3 Gaussians" in text
    assert "sample clamp  N(0, I) draws clipped to [-1, 1] (the mixture's are not)" in text
    bare = save_pretrained(_model(prior=False), tmp_path / "bare")
    result = runner.invoke(app, ["info", "-m", f"{bare}/", "--json"], env=env)
    assert json.loads(result.stdout)["latent_prior"] is None
    text = runner.invoke(app, ["info", "-m", f"{bare}/"], env=env).stdout
    assert "samples from  N(0, I)" in text and "mixture" not in text
    assert "sample clamp  N(0, I) draws clipped to [-1, 1]\n" in text


def test_the_model_card_says_where_samples_come_from(release: Path, tmp_path: Path) -> None:
    card = (release / "README.md").read_text()
    assert "## Sampling" in card and "a mixture of 3 full-covariance Gaussians" in card
    assert "the latents of 600 synthetic training images" in card and "samples = model.sample(16, seed=0)" in card
    bare = save_pretrained(_model(prior=False), tmp_path / "bare")
    assert "## Sampling" not in (bare / "README.md").read_text()


def test_a_report_of_mixture_samples_cannot_become_a_releases_metrics(tmp_path: Path) -> None:
    from training.cli import UserError, _release_metrics

    report = tmp_path / "report.json"
    report.write_text(json.dumps({"metrics": {"fd10k_classifier": 5.1},
                                  "details": {"settings": {"sample_prior": "mixture"}}}))
    with pytest.raises(UserError, match=r"'mixture' latent prior.*without --sample-prior"):
        _release_metrics(report)
    report.write_text(json.dumps({"metrics": {"fd10k_classifier": 53.5},
                                  "details": {"settings": {"sample_prior": "standard"}}}))
    assert _release_metrics(report) == {"fd10k_classifier": 53.5}


def test_latent_stats_refuses_a_manifest_without_the_model_before_computing_anything(tmp_path: Path) -> None:
    from training.cli import UserError
    from training.cli import app as train_app

    folder = save_pretrained(_model(prior=False), tmp_path / "exported")
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"models": {"fashion-mnist-32": {"repo_id": "org/fashion", "files": {}}}}))
    runner = CliRunner()
    result = runner.invoke(train_app, ["latent-stats", str(folder), "--manifest", str(manifest)])
    assert isinstance(result.exception, UserError)
    message = str(result.exception)
    assert "no model 'exported'" in message and "fashion-mnist-32" in message and "--name" in message
    result = runner.invoke(train_app, ["latent-stats", str(folder), "--name", "fashion-mnist-32"])
    assert isinstance(result.exception, UserError) and "--manifest" in str(result.exception)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before  # nothing encoded, nothing written


def test_latent_stats_refits_the_shipped_mnist_prior_exactly(tmp_path: Path) -> None:
    """`latent-stats --prior-restarts` reaches the fit: starts 0..k of the shipped mnist-32 release, where k is the
    start its ten kept (so also the likeliest of these), keep k again, so the refitted mixture is the shipped one,
    and the statistics it recomputes are the shipped ones (bit for bit on the CPU they were made on; within
    rounding on another, whose kernels may sum in another order)."""
    import shutil

    from dcvae_tools.manifest import BUNDLED_WEIGHTS_DIR
    from training.cli import app as train_app

    folder = tmp_path / "mnist-32"
    shutil.copytree(BUNDLED_WEIGHTS_DIR / "mnist-32", folder)
    shipped = load_latent_prior(folder / LATENT_PRIOR_NAME, 64)
    kept = shipped.metadata["seed"]
    assert shipped.metadata["restarts"] == 10 and 1 <= kept < 10  # a test of restarts needs a kept start past 0
    result = CliRunner().invoke(train_app, ["latent-stats", str(folder), "--prior-restarts", str(kept + 1)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["prior"]["restarts"] == kept + 1 and summary["prior"]["seed"] == kept
    refitted = load_latent_prior(folder / LATENT_PRIOR_NAME, 64)
    for name in ("weights", "means", "scale_tril"):
        assert torch.allclose(getattr(refitted, name), getattr(shipped, name), rtol=1e-4, atol=1e-5), name
    assert refitted.metadata["mean_log_likelihood"] == pytest.approx(shipped.metadata["mean_log_likelihood"], abs=1e-4)
    for name in ("latent_stats.safetensors", "attributes.safetensors"):
        old, new = load_file(BUNDLED_WEIGHTS_DIR / "mnist-32" / name), load_file(folder / name)
        assert old.keys() == new.keys(), name
        assert all(torch.allclose(old[k], new[k], rtol=1e-4, atol=1e-5) for k in old), name
    assert f"(the most likely of {kept + 1} starts)" in (folder / "README.md").read_text()
    # one start (how the Fashion-MNIST release's prior is reproduced): start 0, metadata as fits wrote before
    result = CliRunner().invoke(train_app, ["latent-stats", str(folder), "--prior-restarts", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["prior"]["restarts"] == 1 and summary["prior"]["seed"] == 0
    assert "restarts" not in load_latent_prior(folder / LATENT_PRIOR_NAME, 64).metadata
    assert "fitted by EM to the latents" in (folder / "README.md").read_text()


def test_one_start_writes_the_metadata_fits_wrote_before_restarts(tmp_path: Path) -> None:
    x = _separated_clusters()
    one = fit_latent_prior(x, 6, seed=4, restarts=1)
    assert "restarts" not in one.metadata and one.metadata["seed"] == 4
    assert "restarts" not in fit_latent_prior(x, 1, restarts=10).metadata  # one component: every start is the same
    assert fit_latent_prior(x, 6, restarts=np.int64(2)).metadata["restarts"] == 2


def test_the_command_line_default_is_the_library_default() -> None:
    import inspect

    from training.cli import latent_stats
    from training.latent_prior import DEFAULT_RESTARTS

    assert inspect.signature(latent_stats).parameters["prior_restarts"].default == DEFAULT_RESTARTS
