"""The backbones: parameter counts against the paper's official modules, output shapes and ranges,
spectral-norm folding, and config validation (which must happen before any tensor is allocated)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from dcvae_tools.config import ModelConfig
from dcvae_tools.errors import ConfigError
from dcvae_tools.networks import build_network
from dcvae_tools.networks.layers import fold_spectral_norm

pytestmark = pytest.mark.usefixtures("one_thread")


# Counted on the official DC-VAE modules (docs/design.md, "The backbones"): 3 channels, latent 128, gf 256, df 128.
PAPER_ENCODER_PARAMS = 1_086_464
PAPER_DECODER_PARAMS = 4_405_251
PAPER_DISCRIMINATOR_PARAMS = 1_059_986  # trunk + "b1" and "final" heads + real/fake head


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def _autogan_trunk(channels: int, df: int) -> int:
    """Parameters of the AutoGAN discriminator trunk, from the layer list in docs/design.md, "The backbones"."""
    block1 = _conv(channels, df, 3) + _conv(df, df, 3) + _conv(channels, df, 1)
    block2 = 2 * _conv(df, df, 3) + _conv(df, df, 1)  # learnable 1x1 shortcut
    block34 = 2 * (2 * _conv(df, df, 3))  # identity shortcuts
    return block1 + block2 + block34


def autogan_encoder_params(channels: int, latent: int, df: int) -> int:
    return _autogan_trunk(channels, df) + df * 2 * latent  # Linear(df -> 2 latent, no bias)


def autogan_decoder_params(channels: int, latent: int, gf: int, bottom: int = 4) -> int:
    stem = latent * bottom * bottom * gf + bottom * bottom * gf
    cells = 3 * 2 * _conv(gf, gf, 3)  # two 3x3 convs per cell
    cells += 2 * _conv(gf, gf, 1)  # shortcuts of cells 1 and 2
    cells += 3 * _conv(gf, gf, 1)  # skip convs: one into cell 2, two into cell 3
    head = 2 * gf + _conv(gf, channels, 3)  # BatchNorm affine + output conv
    return stem + cells + head


def autogan_discriminator_params(channels: int, df: int, image_size: int = 32, feat: int = 16) -> int:
    b1 = _conv(df, 1, 1) + (image_size // 2) ** 2 * feat
    return _autogan_trunk(channels, df) + df * feat + (feat + 1) + b1


def _cfg(arch: str = "autogan32", channels: int = 3, latent: int = 16, **args: int) -> ModelConfig:
    if not args:
        args = {"gf_dim": 16, "df_dim": 16} if arch == "autogan32" else {"ngf": 8, "ndf": 8}
    return ModelConfig(architecture=arch, image_size=32, channels=channels, latent_dim=latent, architecture_args=args)


# ----------------------------------------------------------------------------- sizes at the paper's widths


def test_formulas_reproduce_the_official_counts() -> None:
    """The independent layer-by-layer formulas agree with the numbers counted on the official code."""
    assert autogan_encoder_params(3, 128, 128) == PAPER_ENCODER_PARAMS
    assert autogan_decoder_params(3, 128, 256) == PAPER_DECODER_PARAMS
    assert autogan_discriminator_params(3, 128) == PAPER_DISCRIMINATOR_PARAMS


def test_autogan32_paper_widths_counts_and_shapes() -> None:
    torch.manual_seed(0)
    config = _cfg("autogan32", 3, 128, gf_dim=256, df_dim=128)
    encoder = build_network(config, "encoder").eval()
    decoder = build_network(config, "decoder").eval()
    disc = build_network(config, "discriminator", spectral_norm=True).eval()
    assert _count(encoder) == PAPER_ENCODER_PARAMS
    assert _count(decoder) == PAPER_DECODER_PARAMS
    assert _count(disc) == PAPER_DISCRIMINATOR_PARAMS
    # the training (spectral-norm) encoder has the same learnable parameters as the plain one
    assert _count(build_network(config, "encoder", spectral_norm=True)) == PAPER_ENCODER_PARAMS

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        mu, logvar = encoder(x)
        images = decoder(torch.randn(2, 128))
        logits, feats = disc(x)
    assert mu.shape == logvar.shape == (2, 128)
    assert images.shape == (2, 3, 32, 32)
    assert images.abs().max() <= 1.0 and images.std() > 0
    assert logits.shape == (2,)
    assert set(feats) == {"b1", "final"}
    assert feats["b1"].shape == feats["final"].shape == (2, 16)
    for t in (mu, logvar, images, logits, feats["b1"], feats["final"]):
        assert torch.isfinite(t).all()


def test_autogan32_grey_tiny_widths() -> None:
    torch.manual_seed(1)
    config = _cfg("autogan32", 1, 16, gf_dim=16, df_dim=16)
    encoder = build_network(config, "encoder").eval()
    decoder = build_network(config, "decoder").eval()
    disc = build_network(config, "discriminator", spectral_norm=True).eval()
    assert _count(encoder) == autogan_encoder_params(1, 16, 16)
    assert _count(decoder) == autogan_decoder_params(1, 16, 16)
    assert _count(disc) == autogan_discriminator_params(1, 16)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        mu, logvar = encoder(x)
        images = decoder(torch.randn(3, 16))
        logits, feats = disc(x)
    assert mu.shape == logvar.shape == (3, 16)
    assert images.shape == (3, 1, 32, 32) and images.abs().max() <= 1.0
    assert logits.shape == (3,)
    assert feats["b1"].shape == feats["final"].shape == (3, 16)


@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan32_shapes(channels: int) -> None:
    torch.manual_seed(2)
    config = _cfg("dcgan32", channels, 16, ngf=8, ndf=8)
    encoder = build_network(config, "encoder").eval()
    decoder = build_network(config, "decoder").eval()
    disc = build_network(config, "discriminator", spectral_norm=True).eval()
    x = torch.rand(3, channels, 32, 32) * 2 - 1
    with torch.no_grad():
        mu, logvar = encoder(x)
        images = decoder(torch.randn(3, 16))
        logits, feats = disc(x)
    assert mu.shape == logvar.shape == (3, 16)
    assert images.shape == (3, channels, 32, 32) and images.abs().max() <= 1.0
    assert logits.shape == (3,)
    assert feats["b1"].shape == feats["final"].shape == (3, 16)
    # the encoder's input width follows the config's channels
    first = encoder.trunk.block1[0]
    assert first.in_channels == channels


# ----------------------------------------------------------------------------- spectral-norm folding


@pytest.mark.parametrize("arch", ["autogan32", "dcgan32"])
def test_fold_spectral_norm_matches_sn_module(arch: str) -> None:
    torch.manual_seed(3)
    config = _cfg(arch, 3, 16)
    sn = build_network(config, "encoder", spectral_norm=True)
    assert any("parametrizations" in k for k in sn.state_dict())
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    sn.train()
    with torch.no_grad():  # a few power iterations, as in training, so u/v are not the initial ones
        for _ in range(3):
            sn(torch.rand(4, 3, 32, 32) * 2 - 1)
    sn.eval()
    with torch.no_grad():
        ref_mu, ref_logvar = sn(x)
        again_mu, _ = sn(x)
    assert torch.equal(ref_mu, again_mu)  # eval mode does not update the power-iteration vectors

    folded = fold_spectral_norm(copy.deepcopy(sn))
    state = folded.state_dict()
    assert not any("parametrizations" in k or k.endswith(("_u", "_v")) for k in state)
    plain = build_network(config, "encoder", spectral_norm=False).eval()
    plain.load_state_dict(state, strict=True)
    with torch.no_grad():
        mu, logvar = plain(x)
    assert torch.allclose(mu, ref_mu, atol=1e-6, rtol=0)
    assert torch.allclose(logvar, ref_logvar, atol=1e-6, rtol=0)
    # the folded weights are the normalised ones: their largest singular value is about 1
    w = plain.to_latent.weight
    assert 0.9 < torch.linalg.matrix_norm(w, ord=2).item() < 1.1
    # and not the raw ones (which the SN module keeps as "original")
    raw = sn.to_latent.parametrizations.weight.original
    assert not torch.allclose(raw, w)


# ----------------------------------------------------------------------------- config validation

VALID = {
    "architecture": "autogan32",
    "image_size": 32,
    "channels": 3,
    "latent_dim": 16,
    "architecture_args": {"gf_dim": 16, "df_dim": 16},
}

_DROP = object()


def _bad(**changes: object) -> dict:
    data = json.loads(json.dumps(VALID))
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"colour": "blue"}, "colour"),
        ({"image_size": "32"}, "image_size"),
        ({"image_size": 32.0}, "image_size"),
        ({"channels": True}, "channels"),
        ({"channels": 2}, "channels"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 70000}, "latent_dim"),
        ({"latent_dim": _DROP}, "latent_dim"),
        ({"architecture": "stylegan9"}, "architecture"),
        ({"architecture": ["autogan32"]}, "architecture"),
        ({"image_size": 48}, "image_size"),
        ({"architecture_args": {"gf_dim": 0, "df_dim": 16}}, "gf_dim"),
        ({"architecture_args": {"gf_dim": 16, "df_dim": 5000}}, "df_dim"),
        ({"architecture_args": {"gf_dim": "16"}}, "gf_dim"),
        ({"architecture_args": {"depth": 3}}, "depth"),
        ({"architecture_args": [16, 16]}, "architecture_args"),
        ({"format_version": 2}, "format_version"),
        ({"pixel_range": [0, 1]}, "pixel_range"),
        ({"pixel_range": 5}, "pixel_range"),
        ({"sample_clamp": -1}, "sample_clamp"),
        ({"sample_clamp": "1"}, "sample_clamp"),
        ({"sample_clamp": float("nan")}, "sample_clamp"),
        ({"content_size": 40}, "content_size"),
        ({"dataset": 7}, "dataset"),
        ({"metrics": [1, 2]}, "metrics"),
    ],
)
def test_config_rejects_bad_values(changes: dict, named: str) -> None:
    ModelConfig.from_dict(VALID)  # the baseline is valid
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict(_bad(**changes))
    assert named in str(info.value)


def test_config_rejects_non_object() -> None:
    with pytest.raises(ConfigError, match="object"):
        ModelConfig.from_dict([VALID])


def test_dcgan_args_are_not_autogan_args() -> None:
    data = _bad(architecture="dcgan32")  # still carries gf_dim/df_dim
    with pytest.raises(ConfigError, match=r"df_dim|gf_dim"):
        ModelConfig.from_dict(data)
    ModelConfig.from_dict(_bad(architecture="dcgan32", architecture_args={"ngf": 8, "ndf": 8}))


def test_validation_happens_before_allocation() -> None:
    """A config describing a network of billions of parameters is rejected (or accepted) without
    building anything: if validation came after allocation this would need tens of GB."""
    huge = {
        "architecture": "autogan32",
        "image_size": 32,
        "channels": 3,
        "latent_dim": 65536,
        "architecture_args": {"gf_dim": 4096, "df_dim": 4096},
    }
    config = ModelConfig.from_dict(huge)  # valid: parsed, nothing built
    assert config.latent_dim == 65536
    with pytest.raises(ConfigError, match="surprise"):
        ModelConfig.from_dict({**huge, "surprise": 1})
    with pytest.raises(ConfigError, match="gf_dim"):
        ModelConfig.from_dict({**huge, "architecture_args": {"gf_dim": 4097, "df_dim": 4096}})


def test_config_round_trip() -> None:
    config = ModelConfig(
        architecture="dcgan32",
        image_size=32,
        channels=1,
        latent_dim=16,
        architecture_args={"ngf": 8, "ndf": 8},
        content_size=28,
        sample_clamp=None,
        dataset="fashion-mnist",
        metrics={"fid": 12.5},
    )
    again = ModelConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    assert again.content_size == 28 and again.sample_clamp is None
