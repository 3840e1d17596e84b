"""The DCVAE model class: batching invariance, determinism, sampling clamp, edits, input types and
reduced-precision compute with its float32 fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from dcvae_tools.config import ModelConfig
from dcvae_tools.errors import DCVAEError, LatentError
from dcvae_tools.model import DCVAE, AttributeVector

LATENT = 16


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise_batchnorm(model: DCVAE, seed: int) -> None:
    """Give every BatchNorm non-trivial running statistics, so that train-mode (batch statistics)
    behaviour would differ from eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def make_model(arch: str = "autogan32", channels: int = 3, seed: int = 0, **config: object) -> DCVAE:
    torch.manual_seed(seed)
    args = {"gf_dim": 16, "df_dim": 16} if arch == "autogan32" else {"ngf": 8, "ndf": 8}
    model = DCVAE(
        ModelConfig(
            architecture=arch, image_size=32, channels=channels, latent_dim=LATENT, architecture_args=args, **config
        )
    )
    with torch.no_grad():
        _randomise_batchnorm(model, seed)
    return model


def _images(n: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 32, 32, generator=gen) * 2 - 1


@pytest.fixture(scope="module", params=["autogan32", "dcgan32"])
def model(request: pytest.FixtureRequest) -> DCVAE:
    return make_model(request.param)


# ----------------------------------------------------------------------------- batching


def test_model_starts_in_eval_mode(model: DCVAE) -> None:
    assert not model.training
    assert all(not m.training for m in model.modules())


def test_weights_sha256_tells_weights_apart_not_copies(model: DCVAE) -> None:
    twin = DCVAE(model.config)
    twin.load_state_dict(model.state_dict())
    assert twin.weights_sha256() == model.weights_sha256() and len(model.weights_sha256()) == 64
    with torch.no_grad():
        next(twin.decoder.parameters()).view(-1)[0] += 1e-6  # one weight, barely moved
    assert twin.weights_sha256() != model.weights_sha256()


def test_encode_batch_equals_items(model: DCVAE) -> None:
    x = _images(5)
    batch = model.encode(x)
    assert batch.shape == (5, LATENT) and batch.dtype == torch.float32
    items = torch.cat([model.encode(x[i : i + 1]) for i in range(5)])
    assert torch.allclose(batch, items, atol=1e-5, rtol=0)
    mu, logvar = model.posterior(x)
    assert torch.equal(mu, batch) and logvar.shape == (5, LATENT)


def test_decode_batch_equals_items(model: DCVAE) -> None:
    z = torch.randn(5, LATENT, generator=torch.Generator().manual_seed(1))
    batch = model.decode(z)
    assert batch.shape == (5, 3, 32, 32)
    assert batch.abs().max() <= 1.0
    items = torch.cat([model.decode(z[i]) for i in range(5)])  # a single [D] latent is accepted
    assert torch.allclose(batch, items, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e39])  # 1e39: beyond float32, inf once converted
def test_latents_that_are_not_finite_are_refused_by_row(model: DCVAE, bad: float) -> None:
    z = torch.zeros(3, LATENT, dtype=torch.float64)
    z[2, 5] = bad
    with pytest.raises(LatentError, match=r"row\(s\) 2 hold NaN or infinite values"):
        model.decode(z)
    with pytest.raises(LatentError, match=r"row\(s\) 2 hold"):
        model.edit(z, [(torch.zeros(LATENT), 1.0)])


def test_overflowing_strengths_and_clamps_are_refused_by_name(model: DCVAE) -> None:
    with pytest.raises(LatentError, match="an edit strength is far too large"):
        model.edit(torch.zeros(2, LATENT), [(torch.ones(LATENT), 1e39)], output="latents", unit="raw")
    with pytest.raises(DCVAEError, match="a float32 holds"):
        model.random_latents(2, clamp=1e39, prior="standard")


def test_batch_size_does_not_change_results(model: DCVAE) -> None:
    x = _images(7, seed=2)
    ref = model.encode(x, batch_size=64)
    z = torch.randn(7, LATENT, generator=torch.Generator().manual_seed(3))
    ref_images = model.decode(z, batch_size=64)
    for size in (1, 3, 7):
        assert torch.allclose(model.encode(x, batch_size=size), ref, atol=1e-5, rtol=0)
        assert torch.allclose(model.decode(z, batch_size=size), ref_images, atol=1e-5, rtol=0)
    assert torch.allclose(model.reconstruct(x, batch_size=2), model.decode(ref), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- sampling


def test_sample_is_deterministic_per_seed(model: DCVAE) -> None:
    a, b, c = model.sample(3, seed=7), model.sample(3, seed=7), model.sample(3, seed=8)
    assert a.shape == (3, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(a, model.decode(model.random_latents(3, seed=7)))


def test_random_latents_respect_the_clamp() -> None:
    model = make_model(sample_clamp=0.5)
    z = model.random_latents(64, seed=0)
    assert z.shape == (64, LATENT)
    assert z.abs().max().item() == pytest.approx(0.5)  # clamped, and the clamp is active
    unclamped = model.random_latents(64, seed=0, clamp=None)
    assert unclamped.abs().max() > 1.5
    assert torch.equal(z, unclamped.clamp(-0.5, 0.5))
    assert model.random_latents(64, seed=0, clamp=2.0).abs().max().item() == pytest.approx(2.0)
    no_clamp_model = make_model(sample_clamp=None)
    assert torch.equal(no_clamp_model.random_latents(64, seed=0), unclamped)
    for bad in (-1.0, 0.0, float("nan"), float("inf")):  # [-c, c] is empty, one point, or no bound at all
        with pytest.raises(DCVAEError, match="clamp must be a positive number"):
            model.random_latents(4, seed=0, clamp=bad, prior="standard")


def test_encode_sample_is_deterministic_per_seed(model: DCVAE) -> None:
    x = _images(3, seed=4)
    s1 = model.encode(x, sample=True, seed=5)
    s2 = model.encode(x, sample=True, seed=5)
    s3 = model.encode(x, sample=True, seed=6)
    assert torch.equal(s1, s2)
    assert not torch.allclose(s1, s3)
    mu, logvar = model.posterior(x)
    assert not torch.allclose(s1, mu)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(s1, mu + torch.exp(0.5 * logvar) * eps, atol=1e-5)


def test_posterior_sample_that_overflows_is_refused_naming_the_row_and_the_log_variance() -> None:
    mu = torch.zeros(3, LATENT)
    logvar = torch.zeros(3, LATENT)
    logvar[1, 4] = 200.0  # exp(100) overflows float32
    with pytest.raises(LatentError, match=r"row 1 is not finite \(largest log-variance there: 200\).*sample=False"):
        DCVAE.sample_posterior(mu, logvar, seed=0)
    logvar[1, 4] = 150.0  # large but finite: a draw, however wide
    assert torch.isfinite(DCVAE.sample_posterior(mu, logvar, seed=0)).all()
    mu[2, 0] = float("nan")
    with pytest.raises(LatentError, match=r"of row 2 is not finite \(largest log-variance there: 0\)"):
        DCVAE.sample_posterior(mu, logvar, seed=0)
    logvar[:, 0] = 300.0
    with pytest.raises(LatentError, match=r"of rows 0, 1, 2 is not finite \(largest log-variance there: 300\)"):
        DCVAE.sample_posterior(torch.zeros(3, LATENT), logvar, seed=0)


# ----------------------------------------------------------------------------- editing


@pytest.fixture
def edit_model() -> DCVAE:
    model = make_model(seed=3)
    gen = torch.Generator().manual_seed(9)
    model.attributes = {
        "smile": AttributeVector("smile", torch.randn(LATENT, generator=gen), 20, 20),
        "glasses": AttributeVector("glasses", torch.randn(LATENT, generator=gen), 20, 18),
    }
    return model


def test_edit_with_model_attribute_name(edit_model: DCVAE) -> None:
    z = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(1))
    smile = edit_model.attributes["smile"].direction
    out = edit_model.edit(z, {"smile": 1.5}, output="latents", unit="raw")
    assert torch.allclose(out, z + 1.5 * smile, atol=1e-6)
    images = edit_model.edit(z, {"smile": 1.5}, unit="raw")
    assert torch.equal(images, edit_model.decode(out))
    assert torch.equal(edit_model.edit(z, {"smile": 0.0}, output="latents", unit="raw"), z)


def test_edit_with_attribute_vector_and_raw_tensor(edit_model: DCVAE) -> None:
    z = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(2))
    vec = AttributeVector("custom", torch.randn(LATENT, generator=torch.Generator().manual_seed(4)), 5, 5)
    raw = torch.randn(LATENT, generator=torch.Generator().manual_seed(5))
    expected = z - 2.0 * vec.direction
    assert torch.allclose(edit_model.edit(z, [(vec, -2.0)], output="latents", unit="raw"), expected, atol=1e-6)
    # AttributeVectors are usable as mapping keys, as the signature promises
    assert torch.allclose(edit_model.edit(z, {vec: -2.0}, output="latents", unit="raw"), expected, atol=1e-6)
    assert torch.allclose(edit_model.edit(z, {raw: 0.5}, output="latents", unit="raw"), z + 0.5 * raw, atol=1e-6)


def test_several_edits_at_once_equal_their_sum(edit_model: DCVAE) -> None:
    z = torch.randn(3, LATENT, generator=torch.Generator().manual_seed(6))
    raw = torch.randn(LATENT, generator=torch.Generator().manual_seed(7))
    vec = AttributeVector("v", torch.randn(LATENT, generator=torch.Generator().manual_seed(8)), 1, 1)
    together = edit_model.edit(
        z, [("smile", 1.0), ("glasses", -0.5), (raw, 2.0), (vec, 0.25)], output="latents", unit="raw"
    )
    expected = (
        z
        + edit_model.attributes["smile"].direction
        - 0.5 * edit_model.attributes["glasses"].direction
        + 2.0 * raw
        + 0.25 * vec.direction
    )
    assert torch.allclose(together, expected, atol=1e-5)
    one_by_one = z
    for key, strength in [("smile", 1.0), ("glasses", -0.5), (raw, 2.0), (vec, 0.25)]:
        one_by_one = edit_model.edit(one_by_one, [(key, strength)], output="latents", unit="raw")
    assert torch.allclose(together, one_by_one, atol=1e-5)


def test_edit_images_encodes_first(edit_model: DCVAE) -> None:
    x = _images(2, seed=9)
    z = edit_model.encode(x)
    assert torch.allclose(
        edit_model.edit(x, {"smile": 1.0}, output="latents", unit="raw"),
        z + edit_model.attributes["smile"].direction,
        atol=1e-5,
    )


@pytest.mark.parametrize("shape", [(LATENT,), (3, LATENT)])
def test_numpy_latents_say_to_convert_them(edit_model: DCVAE, shape: tuple[int, ...]) -> None:
    z = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3  # values outside an image's [0, 1]
    for call in (lambda: edit_model.edit(z, {"smile": 1.0}), lambda: edit_model.interpolate(z, z, steps=3)):
        with pytest.raises(LatentError, match=r"torch\.from_numpy"):
            call()


def test_a_square_numpy_image_with_the_latent_size_stays_an_image(edit_model: DCVAE) -> None:
    from dcvae_tools.errors import ImageError

    grey = np.random.default_rng(0).uniform(-1, 1, (LATENT, LATENT)).astype(np.float32)  # a [-1, 1] image: bad range
    with pytest.raises(ImageError, match=r"expected \[0, 1\]"):
        edit_model.edit(grey, {"smile": 1.0})


def test_edit_unknown_attribute_lists_names(edit_model: DCVAE) -> None:
    z = torch.zeros(1, LATENT)
    with pytest.raises(LatentError) as info:
        edit_model.edit(z, {"frown": 1.0})
    message = str(info.value)
    assert "frown" in message and "smile" in message and "glasses" in message
    assert "did you mean" not in message
    with pytest.raises(LatentError, match=r"unknown attribute 'smiles'; did you mean 'smile'\? this model's"):
        edit_model.edit(z, {"smiles": 1.0})


def test_edit_refuses_strengths_that_are_not_finite_numbers(edit_model: DCVAE) -> None:
    z = torch.zeros(1, LATENT)
    for strength in (float("nan"), float("inf"), "lots"):
        with pytest.raises(LatentError, match=r"the strength of smile is .*give a finite number"):
            edit_model.edit(z, {"smile": strength})
    vec = AttributeVector("custom", torch.ones(LATENT), 5, 5)
    with pytest.raises(LatentError, match="the strength of custom"):
        edit_model.edit(z, [(vec, float("-inf"))])


def test_load_model_refuses_a_device_this_machine_lacks(tmp_path) -> None:
    from dcvae_tools import load_model, save_pretrained

    folder = save_pretrained(make_model(), tmp_path / "m")
    with pytest.raises(DCVAEError, match="unknown device 'gpu0'"):
        load_model(folder, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DCVAEError, match="CUDA is not available on this machine; use device='cpu'"):
            load_model(folder, device="cuda")
    assert load_model(folder, device="cpu").device.type == "cpu"


def test_a_cuda_index_beyond_the_machines_devices_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from dcvae_tools.arguments import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device("cuda:0")
    with pytest.raises(DCVAEError, match=r"device='cuda:1': this machine has 1 CUDA device \(cuda:0\); use one"):
        check_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DCVAEError, match=r"--device cuda:2: this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        check_device("cuda:2", cli=True)


def test_plausible_api_mistakes_get_errors_that_name_the_argument(edit_model: DCVAE) -> None:
    z = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(0))
    mistakes = [
        (lambda: edit_model.interpolate(z[0], z[1], output="latent"), "output must be 'images' or 'latents'"),
        (lambda: edit_model.mix(z[0], z[1], output="latent"), "output must be"),
        (lambda: edit_model.edit(z, {"smile": 1.0}, output="latent"), "output must be"),
        (lambda: edit_model.encode(torch.zeros(0, 3, 32, 32)), "no images given"),
        (lambda: edit_model.decode(z[:0]), "no latents given"),
        (lambda: edit_model.mix(z[0], z[1], mask=torch.zeros(0, LATENT, dtype=torch.bool)), "mask must be boolean"),
        (lambda: edit_model.mix(z[0], z[1], mask=True), "mask must be boolean"),
        (lambda: edit_model.mix(z[0], z[1], fraction="0.5"), "fraction must be a number in"),
        (lambda: edit_model.boundary(z[:1], z[1:], l2="a"), "l2 must be positive"),
        (lambda: edit_model.edit(z, ("smile", 1.0)), r"'smile' is not a pair \(did you mean \[\('smile', 1.0\)\]"),
        (lambda: edit_model.edit(z, "smile"), "edits must be a mapping"),
        (lambda: edit_model.edit(z, {"smile"}), "edits must be a mapping"),
        (lambda: edit_model.random_latents(2, seed=0.2), "seed must be a whole number"),
        (lambda: edit_model.random_latents(2, seed="abc"), "seed must be a whole number"),
        (lambda: edit_model.random_latents(2, seed=2**70), "seed must be a whole number"),
        (lambda: edit_model.random_latents(2.0), "number of samples must be a whole number"),
        (lambda: edit_model.to_pil([z]), "to_pil takes model outputs as a tensor.*torch.stack a list"),
        (lambda: edit_model.to_pil(z.numpy()), "got ndarray; torch.from_numpy it first"),
        (lambda: edit_model.to_pil(z), r"got latents of shape \(2, \d+\); decode them first"),
        (lambda: edit_model.decode(z.numpy()), "got ndarray; torch.from_numpy it first"),
        (lambda: edit_model.mix(z[0], z[1], mask=[0, 1, 2]), r"for dimension indices pass .*mask_from_indices"),
        (lambda: edit_model.mix(z[0], z[1], mask=torch.ones(LATENT + 1, dtype=torch.bool)), r"bool \(\d+,\)$"),
        (lambda: edit_model.decode(z, batch_size=0), "batch_size must be a whole number of at least 1, got 0"),
        (lambda: edit_model.decode(z, batch_size=1.5), "batch_size must be a whole number"),
    ]
    for call, message in mistakes:
        with pytest.raises(DCVAEError, match=message):
            call()
    with pytest.raises(DCVAEError, match=r"the strength of smile is '1\.5'; give a finite number$"):
        edit_model.edit(z, {"smile": "1.5"})
    with pytest.raises(DCVAEError, match=r"is \[0, 1, 2\]; .*a sweep, torch\.cat\(\[model\.edit\(z, \{'smile': s\}"):
        edit_model.edit(z, {"smile": [0, 1, 2]})
    with pytest.raises(DCVAEError, match=r"'smile' is not a pair$"):  # no hint: this is not one bare pair
        edit_model.edit(z, ["smile"])
    # what is accepted: any iterable of pairs, numpy numbers, one held direction on its own, a dtype by name
    expected = edit_model.edit(z, {"smile": 1.0, "glasses": -0.5}, output="latents", unit="raw")
    for pairs in ({"smile": 1.0, "glasses": -0.5}.items(), zip(["smile", "glasses"], [1.0, -0.5], strict=True),
                  (pair for pair in [("smile", np.float32(1.0)), ("glasses", -0.5)])):
        torch.testing.assert_close(edit_model.edit(z, pairs, output="latents", unit="raw"), expected)
    assert edit_model.random_latents(2, seed=0, clamp=np.float32(0.5), prior="standard").abs().max() <= 0.5
    assert torch.equal(edit_model.random_latents(3, seed=np.int64(4)), edit_model.random_latents(3, seed=4))
    assert edit_model.decode(z, batch_size=np.int64(1)).shape == (2, 3, 32, 32)
    held = edit_model.edit(z, {"smile": 1.0}, hold="glasses", output="latents", unit="raw")
    assert torch.equal(held, edit_model.edit(z, {"smile": 1.0}, hold=["glasses"], output="latents", unit="raw"))
    edit_model.compute_dtype = "bfloat16"
    try:
        assert edit_model.compute_dtype == torch.bfloat16 and edit_model.decode(z).dtype == torch.float32
    finally:
        edit_model.compute_dtype = torch.float32


def test_boundary_works_inside_inference_mode(edit_model: DCVAE) -> None:
    gen = torch.Generator().manual_seed(3)
    positive, negative = torch.randn(6, LATENT, generator=gen) + 1, torch.randn(6, LATENT, generator=gen) - 1
    expected = edit_model.boundary(positive, negative).direction
    with torch.inference_mode():
        got = edit_model.boundary(positive, negative).direction
    torch.testing.assert_close(got, expected)


def test_edit_wrong_latent_size(edit_model: DCVAE) -> None:
    with pytest.raises(LatentError, match=str(LATENT)):
        edit_model.edit(torch.zeros(2, LATENT + 1), {"smile": 1.0})
    with pytest.raises(LatentError):
        edit_model.edit(torch.zeros(2, LATENT), [(torch.ones(LATENT + 3), 1.0)])
    with pytest.raises(LatentError):
        edit_model.decode(torch.zeros(2, LATENT - 1))


def test_model_attribute_vector_matches_latent_means(edit_model: DCVAE) -> None:
    pos, neg = _images(4, seed=10), _images(3, seed=11)
    with pytest.warns(UserWarning, match="4 positive and 3 negative examples; the paper's recipe uses 20") as caught:
        attr = edit_model.attribute_vector(pos, neg, name="x", metadata={"split": "test"})
    assert caught[0].filename == __file__  # points at the caller's line
    expected = edit_model.encode(pos).double().mean(0) - edit_model.encode(neg).double().mean(0)
    assert torch.allclose(attr.direction.double(), expected, atol=1e-5)
    assert (attr.num_positive, attr.num_negative, attr.metadata) == (4, 3, {"split": "test"})


def test_attribute_errors_name_the_side_and_the_name_is_checked(edit_model: DCVAE, tmp_path) -> None:
    from dcvae_tools.errors import ImageError

    z = torch.randn(20, LATENT, generator=torch.Generator().manual_seed(4))
    with pytest.raises(ImageError, match=r"^negative: no images given"):
        edit_model.attribute_vector(_images(2), [])
    with pytest.raises(ImageError, match=r"^positive: .* is a folder, not an image file; .*expand_image_paths"):
        edit_model.attribute_vector([tmp_path], _images(2))
    with pytest.raises(LatentError, match=r"^negative: latents must have"):
        edit_model.boundary(z, torch.zeros(3, LATENT + 1))
    for bad in ("a:b", "x=1", "", 7, "sleeves\n", "long sleeves"):  # unreachable as FILE:NAME or NAME=S
        with pytest.raises(LatentError, match="attribute name"):
            edit_model.attribute_vector(z, z + 1, name=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("content_size", [None, 28])
def test_zero_one_tensors_warn_once_and_the_packages_own_conversions_never(content_size: int | None) -> None:
    from dcvae_tools.images import ImageRangeWarning

    model = make_model(channels=1, content_size=content_size)
    light = Image.fromarray(np.full((20, 24), 200, dtype=np.uint8))  # no pixel below mid-grey: all >= 0 in [-1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a light picture is not [0, 1] data, however deep the package passes it on
        model.reconstruct(light)
        model.edit(light, [(torch.ones(LATENT), 0.5)], unit="raw")
        model.encode(light, refine=1)
        model.check_domain(light)
    zero_one = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    with pytest.warns(ImageRangeWarning, match=r"input: every value is in \[0, 1\].*x \* 2 - 1") as record:
        model.reconstruct(zero_one)
    assert [w.category for w in record].count(ImageRangeWarning) == 1 and record[0].filename == __file__
    with pytest.warns(ImageRangeWarning, match=r"^3 tensors \(input 0, input 1, input 2\)") as record:
        model.encode(list(zero_one))
    assert [w.category for w in record].count(ImageRangeWarning) == 1


def test_attribute_vector_repr_is_one_short_line(edit_model: DCVAE) -> None:
    vector = AttributeVector("wide", torch.full((LATENT,), 0.5), 20, 19, metadata={"split": "test"})
    text = repr(vector)
    assert text == (f"AttributeVector(name='wide', dim={LATENT}, norm={0.5 * LATENT ** 0.5:.4g}, num_positive=20, "
                    "num_negative=19, normalized=False)")
    assert "direction=[1, 2]" in repr(AttributeVector("odd", [1, 2], 1, 1))  # type: ignore[arg-type]


def test_few_examples_warn_on_either_side_and_twenty_of_each_do_not(edit_model: DCVAE) -> None:
    z = torch.randn(40, LATENT, generator=torch.Generator().manual_seed(14))
    z[:20] += 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 20 + 20 (and more) is the paper's recipe: no warning
        edit_model.attribute_vector(z[:20], z[20:])
        edit_model.attribute_vector(z[:25], z[15:])
        edit_model.boundary(z[:20], z[20:])
    from dcvae_tools.editing.api import boundary_direction

    short = {  # each side short alone, for both methods and the function under DCVAE.boundary
        "20 positive and 19 negative": lambda: edit_model.boundary(z[:20], z[21:]),
        "19 positive and 21 negative": lambda: edit_model.boundary(z[1:20], z[19:]),
        "21 positive and 19 negative": lambda: edit_model.attribute_vector(z[:21], z[21:]),
        "19 positive and 20 negative": lambda: edit_model.attribute_vector(z[1:20], z[20:]),
        "18 positive and 20 negative": lambda: boundary_direction(edit_model, z[2:20], z[20:]),
    }
    for counts, call in short.items():
        with pytest.warns(UserWarning, match=f"{counts} examples") as caught:
            call()
        assert [w.filename for w in caught] == [__file__], counts  # once, at the caller's line


def test_model_mix_and_interpolate_use_latents(edit_model: DCVAE) -> None:
    za = torch.randn(LATENT, generator=torch.Generator().manual_seed(12))
    zb = torch.randn(LATENT, generator=torch.Generator().manual_seed(13))
    mask = torch.zeros(LATENT, dtype=torch.bool)
    mask[:5] = True
    mixed = edit_model.mix(za, zb, mask=mask, output="latents")
    assert mixed.shape == (1, LATENT)
    assert torch.equal(mixed[0, :5], zb[:5]) and torch.equal(mixed[0, 5:], za[5:])
    path = edit_model.interpolate(za, zb, steps=4, output="latents")
    assert path.shape == (4, LATENT) and torch.equal(path[0], za) and torch.equal(path[-1], zb)
    assert edit_model.interpolate(za, zb, steps=4).shape == (4, 3, 32, 32)


# ----------------------------------------------------------------------------- input types


@pytest.mark.parametrize("channels", [3, 1])
def test_input_types_give_the_same_latents(tmp_path, channels: int) -> None:
    model = make_model(channels=channels, seed=5)
    rng = np.random.default_rng(0)
    shape = (32, 32, 3) if channels == 3 else (32, 32)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    pil = Image.fromarray(pixels)
    path = tmp_path / "img.png"
    pil.save(path)
    chw = torch.from_numpy(pixels).reshape(32, 32, -1).permute(2, 0, 1)
    tensor = chw.float() / 127.5 - 1.0
    ref = model.encode(tensor)
    assert ref.shape == (1, LATENT)
    for item in (pil, path, str(path), pixels, chw.contiguous(), [pil], tensor.unsqueeze(0)):
        assert torch.allclose(model.encode(item), ref, atol=1e-6, rtol=0), type(item)
    # a list of mixed inputs is one batch, in order
    other = torch.rand(channels, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    mixed = model.encode([pil, other, str(path)])
    assert mixed.shape == (3, LATENT)
    assert torch.allclose(mixed[0], ref[0], atol=1e-5) and torch.allclose(mixed[2], ref[0], atol=1e-5)
    assert not torch.allclose(mixed[1], ref[0], atol=1e-3)


# ----------------------------------------------------------------------------- precision


def test_bfloat16_compute_is_finite_and_close() -> None:
    model = make_model(seed=6)
    x = _images(4, seed=12)
    z32 = model.encode(x)
    img32 = model.decode(z32)
    model.compute_dtype = torch.bfloat16
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no fallback expected
            z16 = model.encode(x)
            img16 = model.decode(z32)
    finally:
        model.compute_dtype = torch.float32
    assert z16.dtype == img16.dtype == torch.float32  # outputs come back in float32
    assert torch.isfinite(z16).all() and torch.isfinite(img16).all()
    assert not torch.equal(z16, z32)  # bfloat16 arithmetic really happened
    assert (z16 - z32).abs().max() <= 0.05 * z32.abs().max() + 1e-3
    assert (img16 - img32).abs().max() <= 0.1


@pytest.mark.parametrize(("arch", "fast"), [("dcgan32", True), ("autogan32", False), ("autogan32", True)])
def test_bfloat16_weights_encode_decode_and_refine(arch: str, fast: bool) -> None:
    """``model.to(torch.bfloat16)`` works on every backbone, with or without its fast form, and stays close."""
    from dcvae_tools.fast import optimize_for_inference

    model = optimize_for_inference(make_model(arch, seed=8), fast=fast)
    x = _images(3, seed=15)
    z32 = model.encode(x)
    img32 = model.decode(z32)
    model.to(torch.bfloat16)
    assert next(model.decoder.parameters()).dtype == torch.bfloat16
    z = model.encode(x)
    img = model.decode(z32)
    refined = model.encode(x, refine=2)
    assert z.dtype == img.dtype == refined.dtype == torch.float32
    assert torch.isfinite(refined).all()
    assert (z - z32).abs().max() <= 0.05 * z32.abs().max() + 1e-3
    # rounded weights as well as bfloat16 arithmetic (random weights): close on average, a few pixels ~0.1 off
    assert (img - img32).abs().mean() <= 0.02 and (img - img32).abs().max() <= 0.2


def _cpu_float16_autocast_works() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            out = torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4))
        return out.dtype == torch.float16
    except (RuntimeError, TypeError):
        return False


@pytest.mark.skipif(
    not _cpu_float16_autocast_works(),
    reason="this torch build has no float16 autocast on CPU, so half precision cannot overflow",
)
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_float16_overflow_falls_back_to_float32(part: str) -> None:
    model = make_model(seed=7)
    with torch.no_grad():  # weights so large that float16 (max 65504) overflows but float32 does not
        if part == "encoder":
            model.encoder.to_latent.weight.mul_(1e6)
        else:
            model.decoder.stem.weight.mul_(1e6)
            model.decoder.stem.bias.mul_(1e6)
    x = _images(3, seed=13)
    z = torch.randn(3, LATENT, generator=torch.Generator().manual_seed(14))
    net, arg = (model.encoder, x) if part == "encoder" else (model.decoder, z)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        raw = net(arg)
    raw = raw[0] if isinstance(raw, tuple) else raw
    assert not torch.isfinite(raw).all()  # the premise: plain float16 really overflows here

    run = model.encode if part == "encoder" else model.decode
    ref = run(x if part == "encoder" else z)
    model.compute_dtype = torch.float16
    try:
        with pytest.warns(RuntimeWarning, match="float32"):
            out = run(x if part == "encoder" else z)
    finally:
        model.compute_dtype = torch.float32
    assert torch.isfinite(out).all()
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_half_weights_that_overflow_warn_even_in_float32_compute() -> None:
    """After ``model.half()`` a backbone without a fast form computes in float16 whatever ``compute_dtype`` says;
    an overflow there is named (and how to avoid it), not returned silently."""
    from dcvae_tools.fast import optimize_for_inference

    model = optimize_for_inference(make_model("autogan32", seed=7), fast=False)
    with torch.no_grad():  # float16 (max 65504) overflows, float32 would not
        model.encoder.to_latent.weight.mul_(1e6)
    model.half()
    assert model.compute_dtype == torch.float32
    with pytest.warns(RuntimeWarning, match=r"torch\.float16 gave non-finite values.*call model\.float\(\) first"):
        z = model.encode(_images(2, seed=13))
    assert not torch.isfinite(z).all()  # the premise: the half weights really overflowed


def test_a_direction_holding_nan_is_named_not_blamed_on_the_strength(edit_model: DCVAE) -> None:
    z = torch.zeros(1, LATENT)
    with pytest.raises(LatentError, match="direction 'broken' holds NaN or infinite values"):
        edit_model.edit(z, [(AttributeVector("broken", torch.full((LATENT,), float("nan")), 5, 5), 1.0)])
    with pytest.raises(LatentError, match="an attribute direction holds NaN"):
        edit_model.edit(z, [(torch.full((LATENT,), float("inf")), 1.0)], unit="raw")
