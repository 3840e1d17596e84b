"""The DCGAN backbone of supplementary Table 1, at 32x32.

Encoder: the DCGAN-style convolutional discriminator (the SN-GAN "standard CNN": 3x3 / 4x4-stride-2
convolution pairs, LeakyReLU 0.1) with a linear (mu, logvar) head. Decoder: the DCGAN generator
(linear to 4x4, three 4x4-stride-2 transposed convolutions with BatchNorm and ReLU, conv3x3, tanh).
Discriminator (training only): the same trunk with a 16-d "final" feature, a real/fake head on it,
and a low-level contrastive head on the second block's output.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ALL_FEATURES, discriminator_outputs, init_official, maybe_spectral_norm

IMAGE_SIZES = (32,)
ARGS = {"ngf": (1, 4096), "ndf": (1, 4096)}  # name -> (min, max)
DEFAULTS = {"ngf": 64, "ndf": 64}
CONTRASTIVE_DIM = 16


class Trunk(nn.Module):
    """Conv stack 32 -> 16 -> 8 -> 4; returns the 16x16 map of block 2 and the flattened 4x4 map."""

    def __init__(self, channels: int, ndf: int, sn: bool) -> None:
        super().__init__()

        def conv(i: int, o: int, k: int, s: int) -> nn.Module:
            return maybe_spectral_norm(nn.Conv2d(i, o, k, s, padding=1), sn)

        self.block1 = nn.ModuleList([conv(channels, ndf, 3, 1), conv(ndf, 2 * ndf, 4, 2)])
        self.block2 = nn.ModuleList([conv(2 * ndf, 2 * ndf, 3, 1), conv(2 * ndf, 4 * ndf, 4, 2)])
        self.block3 = nn.ModuleList([conv(4 * ndf, 4 * ndf, 3, 1), conv(4 * ndf, 8 * ndf, 4, 2)])
        self.block4 = conv(8 * ndf, 8 * ndf, 3, 1)
        self.out_features = 8 * ndf * 4 * 4

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for layer in self.block1:
            h = F.leaky_relu(layer(h), 0.1)
        h1 = h
        for block in (self.block2, self.block3):
            for layer in block:
                h = F.leaky_relu(layer(h), 0.1)
        h = F.leaky_relu(self.block4(h), 0.1)
        return h1, h.flatten(1)


class Encoder(nn.Module):
    """Image [N, C, 32, 32] in [-1, 1] -> (mu, logvar), each [N, latent_dim]."""

    def __init__(self, channels: int = 3, latent_dim: int = 128, ndf: int = 64, spectral_norm: bool = False):
        super().__init__()
        self.latent_dim = latent_dim
        self.trunk = Trunk(channels, ndf, spectral_norm)
        self.to_latent = maybe_spectral_norm(
            nn.Linear(self.trunk.out_features, 2 * latent_dim), spectral_norm
        )
        init_official(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, h = self.trunk(x)
        mu, logvar = self.to_latent(h).chunk(2, dim=1)
        return mu, logvar


class Discriminator(nn.Module):
    """Training-only critic: real/fake logits plus the contrastive features ``b1`` and ``final``."""

    def __init__(
        self,
        channels: int = 3,
        ndf: int = 64,
        contrastive_dim: int = CONTRASTIVE_DIM,
        spectral_norm: bool = True,
    ):
        super().__init__()
        self.trunk = Trunk(channels, ndf, spectral_norm)
        self.final = maybe_spectral_norm(
            nn.Linear(self.trunk.out_features, contrastive_dim, bias=False), spectral_norm
        )
        self.head = maybe_spectral_norm(nn.Linear(contrastive_dim, 1), spectral_norm)
        self.b1_conv = nn.Conv2d(2 * ndf, 1, 1)
        self.b1_linear = nn.Linear(16 * 16, contrastive_dim, bias=False)
        init_official(self)

    def forward(
        self, x: torch.Tensor, features: Collection[str] = ALL_FEATURES, logits: bool = True
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """Real/fake logits ``[N]`` (None when ``logits=False``) and the requested contrastive features."""
        h1, h = self.trunk(x)
        return discriminator_outputs(self, h1, h, features, logits)


class Decoder(nn.Module):
    """Latent [N, latent_dim] -> image [N, C, 32, 32] in [-1, 1]."""

    def __init__(self, channels: int = 3, latent_dim: int = 128, ngf: int = 64):
        super().__init__()
        self.ngf = ngf
        self.stem = nn.Sequential(
            nn.Linear(latent_dim, 4 * 4 * 8 * ngf), nn.BatchNorm1d(4 * 4 * 8 * ngf), nn.ReLU()
        )
        layers: list[nn.Module] = []
        for i, o in ((8 * ngf, 4 * ngf), (4 * ngf, 2 * ngf), (2 * ngf, ngf)):
            layers += [nn.ConvTranspose2d(i, o, 4, 2, 1), nn.BatchNorm2d(o), nn.ReLU()]
        layers += [nn.Conv2d(ngf, channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_official(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(z).view(-1, 8 * self.ngf, 4, 4))


def build(kind: str, *, channels: int, latent_dim: int, image_size: int, args: dict, spectral_norm: bool):
    """Build ``"encoder"``, ``"decoder"`` or ``"discriminator"`` with the config's sizes."""
    kw = {**DEFAULTS, **args}
    if kind == "encoder":
        return Encoder(channels, latent_dim, kw["ndf"], spectral_norm=spectral_norm)
    if kind == "decoder":
        return Decoder(channels, latent_dim, kw["ngf"])
    if kind == "discriminator":
        return Discriminator(channels, kw["ndf"], spectral_norm=spectral_norm)
    raise ValueError(f"unknown network kind {kind!r}")
