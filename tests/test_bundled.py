"""The bundled released checkpoints: load offline by name, verified, reconstruct real held-out images, and
each shipped attribute moves what it names in the right direction on held-out images."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from dcvae_tools import load_model
from dcvae_tools.manifest import load_manifest
from dcvae_tools.release import verify_files

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(name for name, entry in load_manifest().models.items() if entry.bundled)


def test_the_default_model_is_bundled():
    manifest = load_manifest()
    assert manifest.default_model in BUNDLED


@pytest.fixture(scope="module", params=BUNDLED)
def bundled(request):
    return request.param, load_model(request.param, local_files_only=True)


def test_loads_offline_from_the_package_with_verified_files(bundled, monkeypatch):
    name, model = bundled
    entry = load_manifest().models[name]
    assert model.source.source == "bundled"
    verify_files(entry.bundled_dir, {f: e.sha256 for f, e in entry.files.items()})  # raises on any mismatch
    assert model.config.latent_dim == entry.latent_dim and model.config.image_size == entry.resolution


@pytest.mark.parametrize("name", BUNDLED)
def test_release_files_are_written_in_canonical_bytes(name):
    """Each safetensors file's metadata keys are sorted, as dcvae_tools.io_utils.safetensors_bytes writes them:
    a file written by safetensors' own save_file (keys in hash-map order) would hash differently each time the
    same content is released again."""
    from dcvae_tools.io_utils import safetensors_header

    for path in sorted(load_manifest().models[name].bundled_dir.glob("*.safetensors")):
        keys = list(safetensors_header(path.read_bytes(), path, "").get("__metadata__", {}))
        assert keys == sorted(keys), path


def test_a_revision_for_a_bundled_name_says_to_drop_it(bundled):
    from dcvae_tools.errors import ModelNotFoundError

    name, _ = bundled
    if load_manifest().models[name].revision is not None:
        pytest.skip("published on the Hub: the pinned-revision message applies")
    with pytest.raises(ModelNotFoundError, match="drop --revision"):
        load_model(name, revision="v1", local_files_only=True)
    # online too, and without first probing the Hub: the manifest alone says there is no such revision
    with socket.socket() as hub:
        hub.bind(("127.0.0.1", 0))
        hub.listen()
        hub.settimeout(0.5)
        endpoint = f"http://127.0.0.1:{hub.getsockname()[1]}"
        with pytest.raises(ModelNotFoundError, match="drop --revision"):
            load_model(name, revision="v1", endpoint=endpoint)
        with pytest.raises(TimeoutError):
            hub.accept()[0].close()  # a probe would have connected here


def test_check_domain_converts_every_input_like_encode_does(bundled):
    from PIL import Image

    from dcvae_tools.errors import LatentError

    name, model = bundled
    assert model.latent_stats is not None, f"{name} ships latent_stats.safetensors"
    path = next(iter(sorted((REPO_ROOT / "docs" / "examples" / name.removesuffix("-32")).glob("*.png"))))
    by_path = model.check_domain(str(path), warn=False)
    pixels = torch.from_numpy(np.asarray(Image.open(path).convert("L")).copy())
    for tensor in (pixels[None, None], pixels[None]):  # a uint8 batch [1, 1, H, W] and an image [1, H, W]
        torch.testing.assert_close(model.check_domain(tensor, warn=False).score, by_path.score)
    with pytest.raises(LatentError, match="one row per image"):
        model.check_domain([str(path), str(path)], latents=model.encode(str(path)), warn=False)


def _test_split(dataset: str):
    if dataset == "fashion-mnist":
        from training.data import load_fashion_mnist

        return load_fashion_mnist("test")
    from training.data import load_mnist5k

    return load_mnist5k("test")


def _pixels(model, images: torch.Tensor) -> np.ndarray:
    """Model outputs -> uint8-scale floats in [0, 1] at the content size, [N, H, W]."""
    return np.stack([np.asarray(im, dtype=np.float64) / 255.0 for im in model.to_pil(images)])


def test_reconstructions_keep_the_identity_of_held_out_images(bundled):
    """Each reconstruction is much nearer (pixel MSE) its own source than the other test images: the stated
    bounds are a mean own-source MSE below 0.7x the mean MSE to the other 199 sources, and a median of fewer
    than 20 (10%) other sources nearer than its own."""
    name, model = bundled
    images, _ = _test_split(model.config.dataset)
    pick = np.linspace(0, len(images) - 1, 200).astype(int)  # spread over the split (MNIST's is sorted by digit)
    x = images[pick].astype(np.float64) / 255.0
    recon = _pixels(model, model.reconstruct(list(images[pick])))
    mse = ((recon[:, None] - x[None]) ** 2).mean((2, 3))  # [reconstruction i, source j]
    own = np.diag(mse)
    others = mse[~np.eye(len(pick), dtype=bool)].reshape(len(pick), -1)
    nearer = (others < own[:, None]).sum(1)
    assert own.mean() < 0.7 * others.mean(), f"{name}: own-source MSE {own.mean():.4f} vs {others.mean():.4f}"
    assert np.median(nearer) < 20, f"{name}: median {np.median(nearer)} other sources nearer than the own one"


def _sleeve_ink(p: np.ndarray) -> np.ndarray:  # lower outer columns: where only long sleeves reach
    return np.concatenate([p[:, 14:, :5], p[:, 14:, -5:]], axis=2).mean((1, 2))


def _shaft_ink(p: np.ndarray) -> np.ndarray:  # upper half: where a boot's shaft is and a sneaker is not
    return p[:, :12, :].mean((1, 2))


def _ink(p: np.ndarray) -> np.ndarray:
    return p.mean((1, 2))


def _slant(p: np.ndarray) -> np.ndarray:
    from training.attributes import slant

    return slant(p)


# dataset -> attribute -> (the class its held-out sources come from (None: any), the property it should move,
# the sign)
EXPECTATIONS = {
    "fashion-mnist": {
        "long_sleeves": (0, _sleeve_ink, +1),
        "boot": (7, _shaft_ink, +1),
        "open_shoe": (7, _ink, -1),
        "ink": (0, _ink, +1),
    },
    "mnist5k": {
        "thick": (None, _ink, +1),
        "slant": (None, _slant, +1),
    },
}


PRINCIPAL = {f"pc{k:02d}" for k in range(1, 11)}


def test_ships_named_attributes_and_ten_principal_directions_with_their_units(bundled):
    """Besides the named attributes, the release ships pc01..pc10: orthogonal, one training standard deviation
    long and ordered by variance; every direction records its strength unit, which matches the shipped latent
    statistics."""
    name, model = bundled
    stats = model.latent_stats
    assert stats is not None, f"{name} ships no latent statistics"
    named = {n for n, a in model.attributes.items() if a.metadata.get("method") != "pca"}
    assert named == set(EXPECTATIONS[model.config.dataset])
    assert set(model.attributes) - named == PRINCIPAL
    pcs = torch.stack([model.attributes[n].direction.double() for n in sorted(PRINCIPAL)])
    lengths = pcs.norm(dim=1)
    assert bool((lengths[1:] <= lengths[:-1] + 1e-6).all()), f"{name}: not ordered by variance: {lengths.tolist()}"
    cosines = (pcs / lengths[:, None]) @ (pcs / lengths[:, None]).T
    assert torch.allclose(cosines, torch.eye(10, dtype=torch.float64), atol=1e-5)
    for n, vector in model.attributes.items():
        unit = vector.metadata["unit"]
        assert unit["std"] == pytest.approx(stats.std_along(vector.direction), rel=1e-5), n
        assert unit["norm"] == pytest.approx(float(vector.direction.norm()), rel=1e-5), n
        if n in PRINCIPAL:  # one standard deviation long: strength 1 is the same step in both units
            assert unit["std"] == pytest.approx(unit["norm"], rel=1e-4), n


def test_each_shipped_attribute_moves_its_property_on_held_out_images(bundled):
    """Strength 2.0 in the default unit (two training standard deviations along the direction)."""
    name, model = bundled
    expectations = EXPECTATIONS[model.config.dataset]
    images, labels = _test_split(model.config.dataset)
    for attribute, (source_class, measure, sign) in expectations.items():
        pool = images if source_class is None else images[labels == source_class]
        sources = list(pool[:40])
        z = model.encode(sources)
        before = measure(_pixels(model, model.decode(z)))
        after = measure(_pixels(model, model.edit(z, {attribute: 2.0})))  # std units: the bundled default
        moved = sign * (after - before)
        assert moved.mean() > 0 and (moved > 0).mean() > 0.6, (
            f"{name} {attribute}: moved {moved.mean():+.4f} on average, in the right direction for "
            f"{(moved > 0).mean():.0%} of {len(sources)} held-out images"
        )


def test_ships_a_latent_prior_that_samples_where_held_out_images_encode(bundled):
    """The shipped mixture's draws sit where posterior draws of held-out images do (the median Mahalanobis
    distance from the training latents within 15% of theirs), where N(0, I) draws, the paper's prior, lie over ten
    times further; samples are drawn from it by default."""
    from training.latent_prior import posterior_draws

    name, model = bundled
    prior, stats = model.latent_prior, model.latent_stats
    assert prior is not None and prior.components == 10, f"{name} ships no 10-component latent prior"
    assert prior.metadata["dataset"] == model.config.dataset and prior.metadata["split"] == "train"
    images, _ = _test_split(model.config.dataset)
    held_out = posterior_draws(*model.posterior(list(images[:1000])))

    def median_distance(z: torch.Tensor) -> float:
        return float(stats.mahalanobis(z).median())

    reference = median_distance(held_out)
    mixture = median_distance(model.random_latents(2000, seed=0))
    standard = median_distance(model.random_latents(2000, seed=0, prior="standard", clamp=None))
    assert abs(mixture / reference - 1) < 0.15, f"{name}: mixture draws at {mixture:.1f}, held-out at {reference:.1f}"
    assert standard > 10 * reference, f"{name}: N(0, I) draws at {standard:.1f}, held-out at {reference:.1f}"
