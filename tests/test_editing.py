"""dcvae_tools.editing: latent statistics files, strength units, boundaries, principal directions, conditional
edits and the out-of-domain warning, in Python and on the command line (bundled models, offline)."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from dcvae_tools import load_model
from dcvae_tools.cli import app
from dcvae_tools.editing.boundary import fit_boundary
from dcvae_tools.editing.domain import (
    FAR_LEVEL,
    OutOfDomainWarning,
    domain_report,
    fisher_score,
    upper_tail_log_p,
)
from dcvae_tools.editing.pca import principal_directions
from dcvae_tools.editing.stats import (
    FORMAT_VERSION,
    LATENT_STATS_NAME,
    QUANTILE_LEVELS,
    compute_latent_stats,
    load_latent_stats,
    save_latent_stats,
)
from dcvae_tools.editing.units import FAR_EDIT_STD, FarEditWarning
from dcvae_tools.errors import ConfigError, LatentError

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
ENV = {"HF_HUB_OFFLINE": "1", "DCVAE_DEBUG": None, "COLUMNS": "200"}
# Fashion-MNIST examples the MNIST model finds far outside its domain (combined scores 56-93 against a limit of
# 26.2, measured; 6 of the 12 examples are flagged): the other examples (shoes, a coat, a dress) are nearer
FAR_FOR_MNIST = ("pullover.png", "tshirt.png", "tshirt2.png")


@pytest.fixture(scope="module")
def fashion():
    return load_model("fashion-mnist-32", local_files_only=True)


@pytest.fixture(scope="module")
def mnist():
    return load_model("mnist-32", local_files_only=True)


def _images(folder: str, names: tuple[str, ...] | None = None) -> list[Image.Image]:
    paths = sorted((EXAMPLES / folder).glob("*.png"))
    return [Image.open(p) for p in paths if names is None or p.name in names]


def _synthetic_stats(dim: int = 6, n: int = 500, seed: int = 0, reference: int = 400):
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.5, dim, dtype=torch.float64)
    rotation = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))[0]
    z = (torch.randn(n, dim, generator=g, dtype=torch.float64) * scales) @ rotation.T + 1.0
    ref = torch.randn(reference, dim, generator=g, dtype=torch.float64) * scales @ rotation.T + 1.0
    errors = torch.rand(reference, generator=g, dtype=torch.float64) * 0.1
    cycle = torch.rand(reference, generator=g, dtype=torch.float64).pow(2) * 3.0
    stats = compute_latent_stats(z, ref, errors, cycle, {"dataset": "synthetic", "domain": "six-dimensional blobs"})
    return stats, z, scales, rotation


# ---------------------------------------------------------------------------- the statistics file


def test_latent_stats_round_trip(tmp_path):
    stats, z, _, _ = _synthetic_stats()
    path = tmp_path / LATENT_STATS_NAME
    save_latent_stats(stats, path)
    loaded = load_latent_stats(path, latent_dim=6)
    for name in ("mean", "covariance", "quantile_levels", "mahalanobis_quantiles", "cycle_quantiles",
                 "recon_error_quantiles", "far_score_limit"):
        assert torch.allclose(getattr(loaded, name), getattr(stats, name).double(), atol=0, rtol=0), name
    assert loaded.metadata["dataset"] == "synthetic" and loaded.metadata["count"] == len(z)
    assert loaded.metadata["format_version"] == FORMAT_VERSION and loaded.reference_count == 400
    assert len(QUANTILE_LEVELS) <= 64 and QUANTILE_LEVELS[-1] == 1.0
    assert loaded.far_score_limit_value > 0
    assert loaded.domain == "six-dimensional blobs"
    # the covariance is the sample covariance, and the quantiles increase
    assert torch.allclose(loaded.covariance, torch.cov(z.T), atol=1e-10)
    assert bool((loaded.mahalanobis_quantiles[1:] >= loaded.mahalanobis_quantiles[:-1]).all())


def _rewrite(path: Path, change, metadata_change=None) -> None:
    """Rewrite the file's tensors with ``change`` and its JSON metadata with ``metadata_change``."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as handle:
        meta = json.loads(handle.metadata()["latent_stats"])
    tensors = load_file(str(path))
    if change is not None:
        change(tensors)
    if metadata_change is not None:
        metadata_change(meta)
    save_file(tensors, str(path), metadata={"format": "pt", "latent_stats": json.dumps(meta)})


def _nan_mean(t):
    t["mean"][2] = float("nan")


def _asymmetric(t):
    t["covariance"][0, 1] += 0.5


def _levels_above_one(t):
    t["quantile_levels"][-1] = 1.5


def _quantiles_decreasing(t):
    t["recon_error_quantiles"] = t["recon_error_quantiles"].flip(0).contiguous()


def _not_psd(t):
    t["covariance"] = -t["covariance"]


def _cycle_decreasing(t):
    t["cycle_quantiles"] = t["cycle_quantiles"].flip(0).contiguous()


def _cycle_nan(t):
    t["cycle_quantiles"][-1] = float("nan")


def _cycle_missing(t):
    del t["cycle_quantiles"]


def _limit_two_values(t):
    t["far_score_limit"] = torch.tensor([20.0, 30.0], dtype=torch.float64)


def _limit_zero(t):
    t["far_score_limit"] = torch.zeros(1, dtype=torch.float64)


def _limit_infinite(t):
    t["far_score_limit"] = torch.tensor([float("inf")], dtype=torch.float64)


def _levels_not_ending_at_one(t):
    t["quantile_levels"][-1] = 0.99995


@pytest.mark.parametrize(
    ("change", "latent_dim", "fragment"),
    [
        (None, 7, "shape"),
        (_nan_mean, 6, "NaN"),
        (_asymmetric, 6, "not symmetric"),
        (_not_psd, 6, "negative eigenvalues"),
        (_levels_above_one, 6, "quantile_levels"),
        (_levels_not_ending_at_one, 6, "end with 1.0"),
        (_quantiles_decreasing, 6, "recon_error_quantiles"),
        (_cycle_decreasing, 6, "cycle_quantiles must be non-negative and non-decreasing"),
        (_cycle_nan, 6, "'cycle_quantiles' contains NaN"),
        (_cycle_missing, 6, "cycle_quantiles"),
        (_limit_two_values, 6, "'far_score_limit' has shape [2]"),
        (_limit_zero, 6, "far_score_limit must be positive"),
        (_limit_infinite, 6, "'far_score_limit' contains NaN or infinite"),
    ],
    ids=["wrong-shape", "nan", "asymmetric", "negative-definite", "levels-above-one", "levels-not-ending-at-one",
         "quantiles-decreasing", "cycle-decreasing", "cycle-nan", "cycle-missing", "limit-shape", "limit-zero",
         "limit-infinite"],
)
def test_malformed_latent_stats_are_refused_naming_the_file(tmp_path, change, latent_dim, fragment):
    path = tmp_path / "odd-name" / LATENT_STATS_NAME
    path.parent.mkdir()
    save_latent_stats(_synthetic_stats()[0], path)
    if change is not None:
        _rewrite(path, change)
    with pytest.raises(ConfigError) as info:
        load_latent_stats(path, latent_dim=latent_dim)
    message = str(info.value)
    assert str(path) in message and fragment in message and "dcvae-train latent-stats" in message


@pytest.mark.parametrize("version", [1, None, 3])
def test_other_format_versions_are_refused_naming_the_file(tmp_path, version):
    """A version-1 file (no cycle quantiles, no limit) is refused with what to run, whatever its tensors."""
    path = tmp_path / "old" / LATENT_STATS_NAME
    path.parent.mkdir()
    save_latent_stats(_synthetic_stats()[0], path)

    def old(meta):
        meta.pop("format_version")
        if version is not None:
            meta["format_version"] = version

    _rewrite(path, None, old)
    with pytest.raises(ConfigError) as info:
        load_latent_stats(path, latent_dim=6)
    message = str(info.value)
    assert str(path) in message and f"format version {version}" in message
    assert "run `dcvae-train latent-stats`" in message


def test_a_bad_reference_count_is_refused(tmp_path):
    path = tmp_path / LATENT_STATS_NAME
    save_latent_stats(_synthetic_stats()[0], path)
    _rewrite(path, None, lambda meta: meta.update(reference_count=0))
    with pytest.raises(ConfigError, match="reference_count"):
        load_latent_stats(path, latent_dim=6)


# ---------------------------------------------------------------------------- p-values and the combined score


def test_upper_tail_p_interpolates_the_stored_quantiles():
    levels = torch.tensor([0.1, 0.5, 0.9, 0.99, 1.0], dtype=torch.float64)
    quantiles = torch.tensor([1.0, 2.0, 4.0, 7.0, 10.0], dtype=torch.float64)
    count = 999
    # at a stored quantile: that level's upper tail (the maximum: the floor 1 / (count + 1))
    p = upper_tail_log_p(quantiles, levels, quantiles, count).double().exp()
    assert torch.allclose(p, torch.tensor([0.9, 0.5, 0.1, 0.01, 1 / 1000], dtype=torch.float64), rtol=1e-5)
    # halfway between two quantiles: halfway between their levels; below the first: the first level's p
    assert float(upper_tail_log_p(torch.tensor([3.0]), levels, quantiles, count).exp()) == pytest.approx(0.3)
    assert float(upper_tail_log_p(torch.tensor([0.0]), levels, quantiles, count).exp()) == pytest.approx(0.9)
    # monotone: p never rises with the value, and keeps falling beyond the maximum
    values = torch.linspace(-1.0, 30.0, 2000)
    log_p = upper_tail_log_p(values, levels, quantiles, count)
    assert bool((log_p[1:] <= log_p[:-1] + 1e-6).all())
    assert float(log_p[-1]) < math.log(1 / 1000) - 5
    # the exponential tail passes through the 99th percentile: s = (10 - 7) / log(0.01 * 1000)
    beyond = float(upper_tail_log_p(torch.tensor([13.0]), levels, quantiles, count))
    assert beyond == pytest.approx(math.log(1 / 1000) - 3.0 / (3.0 / math.log(10.0)), rel=1e-5)
    # a plateau of equal quantiles reads as its lowest level (the larger p)
    flat = torch.tensor([1.0, 2.0, 2.0, 7.0, 10.0], dtype=torch.float64)
    assert float(upper_tail_log_p(torch.tensor([2.0]), levels, flat, count).exp()) == pytest.approx(0.5)


def test_fisher_combination_flags_an_input_beyond_every_reference_and_not_a_median_one():
    stats, _, scales, rotation = _synthetic_stats()
    assert stats.far_score_limit_value > fisher_score([torch.log(torch.tensor([0.5]))] * 3).item()
    median = stats.mean.float()[None]  # at the training mean: the smallest Mahalanobis distance
    typical = domain_report(stats, median, torch.tensor([stats.quantile("recon_error", 0.5)]),
                            torch.tensor([stats.quantile("cycle", 0.5)]))
    assert not bool(typical.far.any())
    assert float(typical.p_values["recon_error"][0]) == pytest.approx(0.5, abs=1e-4)
    far_latent = stats.mean.float() + 3.0 * (rotation[:, 0] * scales[0]).float() * 3
    beyond = domain_report(stats, far_latent[None], torch.tensor([1.0]), torch.tensor([10.0]))
    assert bool(beyond.far.all()) and float(beyond.score[0]) > beyond.limit
    assert all(float(p[0]) < 1 / (stats.reference_count + 1) for p in beyond.p_values.values())
    # each measure alone at its median with the others extreme is still flagged; all at the median is not
    one = domain_report(stats, median, torch.tensor([1.0]), torch.tensor([10.0]))
    assert bool(one.far.all())


def test_the_limit_flags_the_stated_share_of_the_reference():
    """The stored limit is the reference's own FAR_LEVEL quantile of the combined score: checking the reference
    images again flags 1 - FAR_LEVEL of them."""
    g = torch.Generator().manual_seed(3)
    train = torch.randn(1000, 4, generator=g, dtype=torch.float64)
    ref = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    errors = torch.rand(2000, generator=g, dtype=torch.float64)
    cycle = torch.randn(2000, generator=g, dtype=torch.float64).abs()
    stats = compute_latent_stats(train, ref, errors, cycle)
    report = domain_report(stats, ref, errors, cycle)
    assert float(report.far.double().mean()) == pytest.approx(1 - FAR_LEVEL, abs=1 / 2000)
    assert report.limit == pytest.approx(float(torch.quantile(report.score.double(), FAR_LEVEL)), rel=1e-5)


def test_a_release_with_a_malformed_stats_file_does_not_load(tmp_path):
    import shutil

    from dcvae_tools.manifest import load_manifest

    folder = tmp_path / "release"
    shutil.copytree(load_manifest().models["fashion-mnist-32"].bundled_dir, folder)
    (folder / LATENT_STATS_NAME).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ConfigError, match=LATENT_STATS_NAME):
        load_model(str(folder), local_files_only=True)


# ---------------------------------------------------------------------------- strength units


def test_std_along_is_the_standard_deviation_of_the_projected_training_latents():
    stats, z, _, _ = _synthetic_stats()
    d = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 1.0], dtype=torch.float64)
    u = d / d.norm()
    assert stats.std_along(d) == pytest.approx(float((z @ u).std()), rel=1e-9)
    assert stats.std_along(7.0 * d) == pytest.approx(stats.std_along(d), rel=1e-12)  # the length does not matter


@pytest.mark.parametrize("strength", [-1.5, 0.5, 2.0])
def test_std_unit_moves_by_strength_standard_deviations_and_raw_by_strength_directions(fashion, strength):
    z = fashion.encode(_images("fashion-mnist", ("tshirt.png", "sneaker.png")))
    stats = fashion.latent_stats
    for name in ("ink", "boot"):
        d = fashion.attributes[name].direction.double()
        u = d / d.norm()
        sigma = math.sqrt(float(u @ stats.covariance.double() @ u))  # computed here, not by the package
        moved = (fashion.edit(z, {name: strength}, output="latents") - z).double()  # default unit: std
        assert torch.allclose(moved, (strength * sigma * u).expand_as(moved).double(), atol=1e-5), name
        std = (fashion.edit(z, {name: strength}, output="latents", unit="std") - z).double()
        assert torch.allclose(std, moved, atol=0)
        raw = (fashion.edit(z, {name: strength}, output="latents", unit="raw") - z).double()
        assert torch.allclose(raw, (strength * d).expand_as(raw), atol=1e-5), name
        # the shipped unit metadata records the same sigma
        assert fashion.attributes[name].metadata["unit"]["std"] == pytest.approx(sigma, rel=1e-5)
    # the unit is what makes attributes comparable: a raw step of ink is far more standard deviations than boot's
    steps = {n: float(fashion.attributes[n].direction.norm()) / fashion.attributes[n].metadata["unit"]["std"]
             for n in ("ink", "boot")}
    assert steps["ink"] > 1.5 * steps["boot"], steps


def test_unknown_unit_and_std_without_statistics_are_refused(fashion):
    z = torch.zeros(1, fashion.latent_dim)
    with pytest.raises(LatentError, match="unknown strength unit"):
        fashion.edit(z, {"ink": 1.0}, unit="pixels", output="latents")
    bare = load_model("fashion-mnist-32", local_files_only=True)
    bare.latent_stats = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit raw unit is silent
        raw = bare.edit(z, {"ink": 1.0}, unit="raw", output="latents")
    assert torch.allclose(raw, z + bare.attributes["ink"].direction)
    with pytest.warns(UserWarning, match="raw units"):
        assert torch.equal(bare.edit(z, {"ink": 1.0}, output="latents"), raw)
    with pytest.raises(LatentError, match="latent-stats"):
        bare.edit(z, {torch.ones(bare.latent_dim): 1.0}, unit="std", output="latents")


# ---------------------------------------------------------------------------- boundaries


def test_boundary_recovers_a_known_separating_direction_where_the_mean_difference_does_not():
    g = torch.Generator().manual_seed(3)
    dim = 16
    scales = torch.ones(dim, dtype=torch.float64)
    scales[:4] = 6.0  # strongly correlated, anisotropic latents: the mean difference leans towards the wide axes
    mix = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))[0]
    z = (torch.randn(4000, dim, generator=g, dtype=torch.float64) * scales) @ mix.T
    w = torch.randn(dim, generator=g, dtype=torch.float64)
    w /= w.norm()
    score = z @ w
    positive, negative = z[score > 0.3], z[score < -0.3]
    fitted = fit_boundary(positive, negative, l2=1e-4)
    assert float(fitted.normal.norm()) == pytest.approx(1.0, abs=1e-9)
    assert float(fitted.normal @ w) > 0.9, f"cosine {float(fitted.normal @ w):.3f}"
    mean_difference = positive.mean(0) - negative.mean(0)
    assert float(mean_difference @ w / mean_difference.norm()) < 0.85  # the case the boundary is for
    assert fitted.accuracy > 0.97


def test_model_boundary_from_latents_points_from_negative_to_positive(fashion):
    g = torch.Generator().manual_seed(5)
    zn = torch.randn(400, fashion.latent_dim, generator=g)
    zp = torch.randn(400, fashion.latent_dim, generator=g)
    zp[:, 7] += 4.0
    vector = fashion.boundary(zp, zn, name="seventh")
    assert vector.name == "seventh" and vector.normalized
    assert float(vector.direction.norm()) == pytest.approx(1.0, abs=1e-5)
    assert float(vector.direction[7]) > 0.8
    assert vector.metadata["method"] == "boundary"
    assert vector.metadata["unit"]["std"] == pytest.approx(fashion.latent_stats.std_along(vector.direction))
    mean = fashion.attribute_vector(zp[:20], zn[:20], name="seventh", metadata={"split": "synthetic"})
    assert mean.metadata["split"] == "synthetic"  # the caller's metadata kept, the unit recorded as boundary() does
    assert mean.metadata["unit"]["std"] == pytest.approx(fashion.latent_stats.std_along(mean.direction))


def test_boundary_refuses_bad_inputs():
    a, b = torch.randn(5, 4), torch.randn(6, 4)
    with pytest.raises(LatentError, match="expected positive"):
        fit_boundary(a, torch.randn(6, 3))
    with pytest.raises(LatentError, match="expected positive"):
        fit_boundary(a[0], b)
    with pytest.raises(LatentError, match="at least one"):
        fit_boundary(a[:0], b)
    with pytest.raises(LatentError, match="l2"):
        fit_boundary(a, b, l2=0.0)
    with pytest.raises(LatentError, match="no direction"):
        fit_boundary(a, a.clone())


# ---------------------------------------------------------------------------- principal directions


def test_principal_directions_are_orthogonal_ordered_and_one_std_long():
    stats, z, scales, rotation = _synthetic_stats(n=4000)
    pcs = principal_directions(stats, count=4)
    assert list(pcs) == ["pc01", "pc02", "pc03", "pc04"]
    d = torch.stack([pcs[n].direction.double() for n in pcs])
    lengths = d.norm(dim=1)
    assert bool((lengths[1:] < lengths[:-1]).all())
    units = d / lengths[:, None]
    assert torch.allclose(units @ units.T, torch.eye(4, dtype=torch.float64), atol=1e-5)
    for k, name in enumerate(pcs):
        # one standard deviation of the latents along it, and (the sample being large) near the generating axis
        assert float(lengths[k]) == pytest.approx(float((z @ units[k]).std()), rel=1e-5)
        assert abs(float(units[k] @ rotation[:, k])) > 0.95
        assert float(lengths[k]) == pytest.approx(float(scales[k]), rel=0.1)
        ratio = pcs[name].metadata["explained_variance_ratio"]
        assert ratio == pytest.approx(float(lengths[k] ** 2 / torch.linalg.eigvalsh(stats.covariance).sum()), rel=1e-4)


def test_the_components_figure_has_a_row_per_component_and_names_its_strengths(fashion, tmp_path):
    from dcvae_tools.editing.pca import draw_components

    names = ["pc01", "pc02"]
    with Image.open(draw_components(fashion, tmp_path / "pca.png", names=names, strengths=(-2, 0, 2))) as image:
        pixels = np.asarray(image.convert("L"))
    content = fashion.config.content_size
    grid_height = (2 * (content + 2) + 2) * 2  # two rows of 2x-enlarged cells
    assert pixels.shape[1] == (3 * (content + 2) + 2) * 2 and pixels.shape[0] > grid_height
    strip = pixels[: pixels.shape[0] - grid_height]
    assert all(strip[:, (2 + c * (content + 2)) * 2 : (c * (content + 2) + 2 + content) * 2].min() < 128
               for c in range(3))  # a strength label over each column


def test_a_principal_direction_edits_the_same_in_both_units(fashion):
    z = fashion.encode(_images("fashion-mnist", ("sneaker.png",)))
    std = fashion.edit(z, {"pc01": 2.0}, output="latents", unit="std")
    raw = fashion.edit(z, {"pc01": 2.0}, output="latents", unit="raw")
    assert torch.allclose(std, raw, atol=1e-4)
    assert float((std - z).norm()) == pytest.approx(2.0 * math.sqrt(float(fashion.latent_stats.eigen()[0][0])),
                                                    rel=1e-4)


# ---------------------------------------------------------------------------- conditional edits


@pytest.mark.parametrize("held", [("ink",), ("ink", "boot")])
def test_a_conditional_edit_has_no_component_along_the_held_directions(fashion, held):
    z = fashion.encode(_images("fashion-mnist", ("tshirt.png", "coat.png")))
    moved = (fashion.edit(z, {"long_sleeves": 2.0}, output="latents", hold=list(held)) - z).double()
    held_directions = torch.stack([fashion.attributes[h].direction.double() for h in held])
    basis = torch.linalg.qr(held_directions.T)[0]  # orthonormal basis of the held span
    assert float((moved @ basis).abs().max()) < 1e-5 * float(moved.norm(dim=1).max())
    # what is left of the target is kept, at two standard deviations along it
    d = fashion.attributes["long_sleeves"].direction.double()
    left = d - basis @ (basis.T @ d)
    u = left / left.norm()
    sigma = math.sqrt(float(u @ fashion.latent_stats.covariance @ u))
    assert torch.allclose(moved, (2.0 * sigma * u).expand_as(moved), atol=1e-5)
    assert float((moved @ d).min()) > 0  # still towards long sleeves
    # without --hold the edit does move along ink
    free = (fashion.edit(z, {"long_sleeves": 2.0}, output="latents") - z).double()
    assert float((free @ basis).abs().max()) > 0.1


def test_holding_the_edited_direction_is_refused(fashion):
    z = torch.zeros(1, fashion.latent_dim)
    with pytest.raises(LatentError, match="span of the held"):
        fashion.edit(z, {"ink": 1.0}, hold=["ink"], output="latents")


# ---------------------------------------------------------------------------- the command line


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _written(folder: Path) -> np.ndarray:
    (path,) = sorted(folder.glob("*.png"))
    return np.asarray(Image.open(path).convert("L"), dtype=np.int16)


def test_an_edit_far_beyond_the_training_latents_warns_naming_the_limit(tmp_path, fashion):
    z = fashion.encode(_images("fashion-mnist", ("tshirt.png",)))
    d = fashion.attributes["long_sleeves"].direction.double()
    sigma = math.sqrt(float((d / d.norm()) @ fashion.latent_stats.covariance.double() @ (d / d.norm())))
    raw_limit = FAR_EDIT_STD * sigma / float(d.norm())  # computed here, not by the package
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarEditWarning)  # within the limit: silent, in either unit
        fashion.edit(z, {"long_sleeves": -0.99 * FAR_EDIT_STD}, output="latents")
        fashion.edit(z, {"long_sleeves": 0.99 * raw_limit}, output="latents", unit="raw")
    std_message = rf"long_sleeves: strengths beyond \u00b1{FAR_EDIT_STD:g} \(std units\)"
    for strength in (1.01 * FAR_EDIT_STD, -1e30):
        with pytest.warns(FarEditWarning, match=std_message):
            fashion.edit(z, {"long_sleeves": strength}, output="latents")
    with pytest.warns(FarEditWarning, match=rf"\u00b1{raw_limit:.3g} \(raw units\)"):
        fashion.edit(z, {"long_sleeves": 1.01 * raw_limit}, output="latents", unit="raw")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw edit along no direction at all moves nothing: no error, no warning
        assert torch.equal(fashion.edit(z, [(torch.zeros(fashion.latent_dim), 1e6)], output="latents", unit="raw"), z)
    # the CLI says it once, however many strengths of the sweep pass the limit
    image = EXAMPLES / "fashion-mnist" / "tshirt.png"
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # not Python's once-per-place filter: the command itself says it once
        result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves", "--sweep=-40:40:5",
                      "--grid", tmp_path / "sweep.png")
    assert result.exit_code == 0, result.output
    assert result.output.count("strengths beyond") == 1 and "warning: long_sleeves" in result.output, result.output
    result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves=2", "-o", tmp_path / "near")
    assert result.exit_code == 0 and "strengths beyond" not in result.output, result.output


def test_cli_edit_units_and_hold(tmp_path, fashion, monkeypatch):
    image = EXAMPLES / "fashion-mnist" / "tshirt.png"
    common = ["edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves=2"]
    outputs = {}
    for key, extra in {"default": [], "std": ["--unit", "std"], "raw": ["--unit", "raw"],
                       "hold": ["--hold", "ink"]}.items():
        result = _cli(*common, *extra, "-o", tmp_path / key)
        assert result.exit_code == 0, result.output
        outputs[key] = _written(tmp_path / key)
    assert "long_sleeves=2 std, holding ink" in result.output
    assert np.array_equal(outputs["default"], outputs["std"])
    assert np.abs(outputs["default"] - outputs["raw"]).max() > 20
    assert np.abs(outputs["default"] - outputs["hold"]).max() > 5
    # the written edit is model.edit's
    expected = np.asarray(fashion.to_pil(fashion.edit([Image.open(image)], {"long_sleeves": 2.0}, hold=["ink"]))[0],
                          dtype=np.int16)
    assert np.abs(outputs["hold"] - expected).max() <= 1
    # the same directions from a file in a folder whose name has '=' in it (only NAME=STRENGTH is split at '=')
    from dcvae_tools.release import save_attributes

    attributes_file = tmp_path / "lr=0.1" / "attrs.safetensors"
    attributes_file.parent.mkdir()
    save_attributes({name: fashion.attributes[name] for name in ("ink", "long_sleeves")}, attributes_file)
    result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", f"{attributes_file}:long_sleeves=2",
                  "--hold", f"{attributes_file}:ink", "-o", tmp_path / "from-file")
    assert result.exit_code == 0, result.output
    assert np.array_equal(_written(tmp_path / "from-file"), outputs["hold"])
    # the shipped direction again from a file is the same direction: refused, naming both as given
    result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves",
                  "-a", f"{attributes_file}:long_sleeves", "-o", tmp_path / "twice")
    assert result.exit_code == 2 and f"long_sleeves and {attributes_file}:long_sleeves are the same direction" in (
        " ".join(result.stderr.split())
    ), result.output
    assert not (tmp_path / "twice").exists()
    # another direction that shares the edited one's name is no clash: holding it is allowed
    other = tmp_path / "other.safetensors"
    save_attributes({"long_sleeves": dataclasses.replace(fashion.attributes["ink"], name="long_sleeves")}, other)
    result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves=2", "--hold", f"{other}:long_sleeves",
                  "-o", tmp_path / "same-name")
    assert result.exit_code == 0, result.output
    assert np.array_equal(_written(tmp_path / "same-name"), outputs["hold"])
    # a mistyped path with '=' in it is named as a missing file, not read as a strength
    result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves=2",
                  "--hold", f"{tmp_path}/lr=0.2/attrs.safetensors:ink", "-o", tmp_path / "missing")
    assert result.exit_code != 0 and "no such attributes file" in result.output and "strength" not in result.output
    # a stray file called long_sleeves=2 does not turn -a long_sleeves=2 into a file name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "long_sleeves=2").write_bytes(b"not an attributes file")
    result = _cli(*common, "-o", tmp_path / "stray")
    assert result.exit_code == 0, result.output
    assert np.array_equal(_written(tmp_path / "stray"), outputs["default"])


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--hold", "long_sleeves"], "both edited and held"),
        (["--hold", "ink=1"], "takes no strength"),
        (["--unit", "pixels"], "unknown unit"),
        # the same direction twice would add up silently: the message gives the one option that does that
        (["-a", "long_sleeves"], "long_sleeves is given more than once, so the edits would add up; give it once "
         "with the total strength (--attribute long_sleeves=3)"),
        (["-a", "long_sleeves=-2"], "so the edits would add up; their strengths cancel: drop them"),
    ],
)
def test_cli_edit_refuses_bad_units_and_holds(tmp_path, extra, fragment):
    image = EXAMPLES / "fashion-mnist" / "tshirt.png"
    result = _cli("edit", image, "-m", "fashion-mnist-32", "-a", "long_sleeves=2", *extra, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- out-of-domain warning


def test_in_domain_examples_do_not_warn(fashion, mnist):
    for model, folder in ((fashion, "fashion-mnist"), (mnist, "mnist")):
        with warnings.catch_warnings():
            warnings.simplefilter("error", OutOfDomainWarning)
            model.reconstruct(_images(folder))
            report = model.check_domain(_images(folder))
        assert not bool(report.far.any()), folder
        assert bool((report.score <= report.limit).all()) and report.limit == model.latent_stats.far_score_limit_value


def test_fashion_images_warn_the_mnist_model_naming_its_domain(mnist):
    images = _images("fashion-mnist", FAR_FOR_MNIST)
    with pytest.warns(OutOfDomainWarning) as caught:
        mnist.reconstruct(images)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "handwritten MNIST digits" in message and "3 of 3 inputs" in message
    # it says why, in shares of the held-out test images
    assert "further from the training latents than" in message and "held-out test images" in message
    assert caught[0].filename == __file__  # the warning points at the caller's line
    report = mnist.check_domain(images, warn=False)
    assert bool(report.far.all())
    assert float(report.score.min()) > report.limit
    assert set(report.p_values) == {"mahalanobis", "cycle", "recon_error"}
    with pytest.warns(OutOfDomainWarning):
        mnist.edit(images, {"thick": 1.0})


def test_several_fashion_examples_warn_the_mnist_model_and_its_own_mostly_do_not(mnist):
    """The bundled mnist-32 with its shipped statistics: at least 5 of the 12 Fashion-MNIST examples are flagged
    (6 measured), at most 1 of its own 10 digits (none measured)."""
    fashion_report = mnist.check_domain(_images("fashion-mnist"), warn=False)
    digit_report = mnist.check_domain(_images("mnist"), warn=False)
    assert int(fashion_report.far.sum()) >= 5, fashion_report.score.tolist()
    assert int(digit_report.far.sum()) <= 1, digit_report.score.tolist()
    # flagged inputs score higher than every digit example
    assert float(fashion_report.score[fashion_report.far].min()) > float(digit_report.score.max())


def test_mnist_digits_warn_the_fashion_model(fashion):
    """The issue's case: MNIST digits given to the Fashion-MNIST model (9 of the 10 examples flagged, measured
    on the retrained model)."""
    report = fashion.check_domain(_images("mnist"), warn=False)
    assert int(report.far.sum()) >= 7, report.score.tolist()
    with pytest.warns(OutOfDomainWarning, match="Fashion-MNIST garments"):
        fashion.reconstruct(_images("mnist", ("digit3.png", "digit7.png")))


def test_cli_warns_about_far_inputs(tmp_path):
    paths = [EXAMPLES / "fashion-mnist" / n for n in FAR_FOR_MNIST]
    result = _cli("edit", *paths, "-m", "mnist-32", "-a", "thick=1", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "handwritten MNIST digits" in warning[0] and "3 of 3 inputs" in warning[0]
    quiet = _cli("edit", EXAMPLES / "mnist" / "digit3.png", "-m", "mnist-32", "-a", "thick=1", "-o", tmp_path / "ok")
    assert quiet.exit_code == 0 and "far outside" not in quiet.stderr
    recon = _cli("reconstruct", *paths, EXAMPLES / "mnist" / "digit3.png", "-m", "mnist-32", "-o", tmp_path / "rec")
    assert recon.exit_code == 0, recon.output
    assert "3 of 4 inputs" in recon.stderr and "digit3" not in recon.stderr
    same = _cli("reconstruct", EXAMPLES / "fashion-mnist", "-m", "fashion-mnist-32", "-o", tmp_path / "rec2")
    assert same.exit_code == 0 and "far outside" not in same.stderr


def test_info_shows_each_directions_unit_and_the_domain(fashion):
    import json

    result = _cli("info", "-m", "fashion-mnist-32", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_name = {a["name"]: a for a in data["attributes"]}
    assert by_name["ink"]["std"] == pytest.approx(fashion.latent_stats.std_along(fashion.attributes["ink"].direction),
                                                  rel=1e-5)
    assert by_name["pc01"]["method"] == "pca" and by_name["ink"]["method"] == "mean difference"
    assert "Fashion-MNIST" in data["latent_stats"]["domain"] and data["latent_stats"]["train_count"] == 60000
    text = _cli("info", "-m", "fashion-mnist-32").stdout
    assert "1 std = " in text and "latent statistics: " in text
    assert re.search(r"far outside the domain when Fisher's combination of the three measures' p-values "
                     r"\(-2 sum log p\) exceeds \d", text)
    assert re.search(r"pc01 +principal direction, norm", text) and not re.search(r"\b0 positive", text)


# the edits the README and `dcvae edit --help` show on the bundled default model: (image, edits, held)
DOCUMENTED_EDITS = [
    ("tshirt.png", {"long_sleeves": 1.5}, ()),
    ("sneaker.png", {"boot": 1.5}, ()),
    ("tshirt.png", {"long_sleeves": 2.0, "ink": -0.5}, ()),
    ("tshirt.png", {"long_sleeves": 2.0}, ("ink",)),
    ("coat.png", {"long_sleeves": -1.0}, ()),
    *[("tshirt.png", {"long_sleeves": s}, ()) for s in (-2.0, 3.0)],  # the quick start's sweep -2:3:6
    *[("ankle_boot.png", {"boot": s}, ()) for s in (-2.0, 2.0)],  # a --sweep -2:2:5
    *[("sneaker.png", {"pc01": s}, ()) for s in (-3.0, 3.0)],  # a --sweep -3:3:7
]


def test_documented_edits_stay_within_the_data(fashion):
    """Each documented edit keeps the image's brightness within the test split's range and the edited latent
    within the 99th percentile of the test images' Mahalanobis distance; the old raw README example does not."""
    from training.data import load_fashion_mnist

    images, _ = load_fashion_mnist("test")
    brightness = images.reshape(len(images), -1).mean(1) / 255.0
    low, high = float(brightness.min()), float(brightness.max())
    limit = fashion.latent_stats.quantile("mahalanobis", 0.99)

    def measure(image: str, edits: dict, held: tuple, unit: str | None = None) -> tuple[float, float]:
        z = fashion.encode(_images("fashion-mnist", (image,)))
        edited = fashion.edit(z, edits, output="latents", hold=list(held), unit=unit)
        pixels = np.asarray(fashion.to_pil(fashion.decode(edited))[0], dtype=np.float64) / 255.0
        return float(pixels.mean()), float(fashion.latent_stats.mahalanobis(edited)[0])

    for image, edits, held in DOCUMENTED_EDITS:
        bright, distance = measure(image, edits, held)
        assert low <= bright <= high, f"{image} {edits}: brightness {bright:.3f} outside [{low:.3f}, {high:.3f}]"
        assert distance < limit, f"{image} {edits}: Mahalanobis distance {distance:.1f} >= {limit:.1f}"
    _, old = measure("tshirt.png", {"long_sleeves": 2.0, "ink": -1.0}, (), unit="raw")
    assert old > limit


def test_cli_attribute_boundary_writes_a_unit_direction_with_its_unit(tmp_path, fashion):
    from dcvae_tools.release import load_attributes

    pos = [EXAMPLES / "fashion-mnist" / n for n in ("coat.png", "pullover.png", "shirt.png")]
    neg = [EXAMPLES / "fashion-mnist" / n for n in ("tshirt.png", "tshirt2.png", "dress.png")]
    args = [a for p in pos for a in ("-p", p)] + [a for n in neg for a in ("-n", n)]
    out = tmp_path / "attrs.safetensors"
    for method in ("boundary", "mean"):
        result = _cli("attribute", *args, "--name", method, "--method", method, "-m", "fashion-mnist-32", "-o", out,
                      *(["--append"] if method == "mean" else []))
        assert result.exit_code == 0, result.output
    vectors = load_attributes(out, fashion.latent_dim)
    assert float(vectors["boundary"].direction.norm()) == pytest.approx(1.0, abs=1e-5)
    assert vectors["boundary"].metadata["method"] == "boundary"
    for vector in vectors.values():
        assert vector.metadata["unit"]["std"] == pytest.approx(fashion.latent_stats.std_along(vector.direction),
                                                               rel=1e-5)
    # both point from the short-sleeved to the long-sleeved examples
    assert float(vectors["boundary"].direction @ vectors["mean"].direction) > 0
    refused = _cli("attribute", *args, "--name", "b", "--method", "boundary", "--normalize", "-m", "fashion-mnist-32",
                   "-o", tmp_path / "other.safetensors")
    assert refused.exit_code == 2 and "already of unit length" in refused.stderr


# ---------------------------------------------------------------------------- the measured tables (edit-report)


def test_edit_report_tables_on_a_real_model(mnist):
    from training.edit_report import _at_cost, edit_report, markdown

    assert _at_cost([1.0, 3.0], [0.2, 0.6], 2.0) == pytest.approx(0.4)
    assert _at_cost([1.0, 3.0], [0.2, 0.6], 4.0) is None  # never extrapolated
    report = edit_report(mnist)
    units = {r["attribute"]: r for r in report["units"]}
    assert set(units) == {"thick", "slant"}  # principal directions are not attributes
    for row in units.values():
        assert row["std"] == pytest.approx(mnist.latent_stats.std_along(mnist.attributes[row["attribute"]].direction))
        # a raw step is norm/std standard deviations long: the longer step moves the pixels further
        assert (row["l2_raw"] > row["l2_std"]) == (row["norm"] > row["std"])
    held = {(r["target"], r["held"]): r for r in report["conditional"]}
    assert set(held) == {("thick", "-"), ("thick", "slant"), ("slant", "-"), ("slant", "thick")}
    for r in held.values():
        assert r["l2"] > 0 and r["target_after"] != r["target_before"]
    for target, other in (("thick", "slant"), ("slant", "thick")):  # holding changes the edit, and keeps `other`
        free, kept = held[(target, "-")], held[(target, other)]
        assert kept["l2"] != free["l2"] and kept["other_after"] != free["other_after"]
    for block in markdown(report).split("\n\n"):  # every table: each row has the header's number of cells
        lines = block.strip().splitlines()
        assert len(lines) >= 3 and {line.count("|") for line in lines} == {lines[0].count("|")}, block


def test_quantiles_between_stored_levels_are_interpolated(fashion):
    stats = fashion.latent_stats
    levels, values = stats.quantile_levels.tolist(), stats.quantiles_of("mahalanobis").tolist()
    assert stats.quantile("mahalanobis", levels[3]) == pytest.approx(values[3])
    middle = (levels[3] + levels[4]) / 2
    assert stats.quantile("mahalanobis", middle) == pytest.approx((values[3] + values[4]) / 2)
    assert stats.quantile("mahalanobis", levels[0] / 2) == pytest.approx(values[0])  # below: the first value


def test_the_editing_packages_names_mean_the_same_before_and_after_its_submodules_load() -> None:
    """``editing.boundary`` once named both a function and the submodule: which one you got depended on whether
    ``model.boundary`` had run before."""
    import subprocess
    import sys

    code = ("import types\nfrom dcvae_tools import editing\nfirst = {n: getattr(editing, n) for n in editing.__all__}\n"
            "import dcvae_tools.editing.boundary, dcvae_tools.editing.api, dcvae_tools.editing.pca\n"
            "from dcvae_tools.editing import boundary_direction\n"
            "assert callable(boundary_direction) and isinstance(editing.boundary, types.ModuleType)\n"
            "assert all(getattr(editing, n) is v for n, v in first.items())\n"
            "assert not set(editing.__all__) & {'boundary', 'stats', 'units', 'pca', 'domain', 'api', 'refine'}\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
