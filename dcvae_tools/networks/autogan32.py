"""The paper's 32x32 backbone, derived from AutoGAN (docs/design.md, "The backbones").

Encoder: the AutoGAN discriminator trunk with spectral norm, sum pooling, and a linear (mu, logvar) head.
Decoder: the AutoGAN generator: a linear stem at 4x4, three searched up-sampling cells with cross-scale
skips, then BN -> ReLU -> conv3x3 -> tanh. Discriminator (training only): the same trunk, a 16-d "final"
contrastive feature, a real/fake head on it, and a low-level contrastive head on block 1's output.

At the paper's widths (channels 3, latent 128, gf_dim 256, df_dim 128) the encoder has 1,086,464
parameters and the decoder 4,405,251; the tests check this.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ALL_FEATURES, discriminator_outputs, init_official, maybe_spectral_norm, sum_pool

IMAGE_SIZES = (16, 32, 64)  # the decoder starts at image_size / 8 and doubles three times
ARGS = {  # name -> (min, max); defaults are the paper's widths
    "gf_dim": (1, 4096),
    "df_dim": (1, 4096),
}
DEFAULTS = {"gf_dim": 256, "df_dim": 128}
CONTRASTIVE_DIM = 16


# ----------------------------------------------------------------------------- encoder / discriminator


class _OptimizedDownBlock(nn.Module):
    """First discriminator block: conv-ReLU-conv-avgpool, shortcut avgpool then 1x1 conv."""

    def __init__(self, in_ch: int, out_ch: int, sn: bool) -> None:
        super().__init__()
        self.c1 = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 3, padding=1), sn)
        self.c2 = maybe_spectral_norm(nn.Conv2d(out_ch, out_ch, 3, padding=1), sn)
        self.c_sc = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class _ResidualDownBlock(nn.Module):
    """Pre-activation residual block, optionally down-sampling, with a learnable 1x1 shortcut if needed."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, sn: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.c1 = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 3, padding=1), sn)
        self.c2 = maybe_spectral_norm(nn.Conv2d(out_ch, out_ch, 3, padding=1), sn)
        self.learnable_sc = in_ch != out_ch or downsample
        if self.learnable_sc:
            self.c_sc = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x))))
        shortcut = self.c_sc(x) if self.learnable_sc else x
        if self.downsample:
            h = F.avg_pool2d(h, 2)
            shortcut = F.avg_pool2d(shortcut, 2)
        return h + shortcut


class Trunk(nn.Module):
    """The shared discriminator/encoder trunk: returns block 1's map and the sum-pooled feature."""

    def __init__(self, channels: int, df_dim: int, sn: bool) -> None:
        super().__init__()
        self.block1 = _OptimizedDownBlock(channels, df_dim, sn)
        self.block2 = _ResidualDownBlock(df_dim, df_dim, downsample=True, sn=sn)
        self.block3 = _ResidualDownBlock(df_dim, df_dim, downsample=False, sn=sn)
        self.block4 = _ResidualDownBlock(df_dim, df_dim, downsample=False, sn=sn)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = self.block1(x)
        h = self.block4(self.block3(self.block2(h1)))
        return h1, sum_pool(F.relu(h))


class Encoder(nn.Module):
    """Image [N, C, 32, 32] in [-1, 1] -> (mu, logvar), each [N, latent_dim]."""

    def __init__(
        self,
        channels: int = 3,  # image channels: 1 grey, 3 RGB
        latent_dim: int = 128,  # size of z
        df_dim: int = 128,  # trunk width (the AutoGAN discriminator's)
        spectral_norm: bool = False,  # True when training; released weights are stored folded
        **_unused: int,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.trunk = Trunk(channels, df_dim, spectral_norm)
        self.to_latent = maybe_spectral_norm(nn.Linear(df_dim, 2 * latent_dim, bias=False), spectral_norm)
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
        df_dim: int = 128,
        image_size: int = 32,
        contrastive_dim: int = CONTRASTIVE_DIM,  # size of each contrastive feature
        spectral_norm: bool = True,
        **_unused: int,
    ) -> None:
        super().__init__()
        self.trunk = Trunk(channels, df_dim, spectral_norm)
        self.final = maybe_spectral_norm(nn.Linear(df_dim, contrastive_dim, bias=False), spectral_norm)
        self.head = maybe_spectral_norm(nn.Linear(contrastive_dim, 1), spectral_norm)
        self.b1_conv = nn.Conv2d(df_dim, 1, 1)
        self.b1_linear = nn.Linear((image_size // 2) ** 2, contrastive_dim, bias=False)
        init_official(self)

    def forward(
        self, x: torch.Tensor, features: Collection[str] = ALL_FEATURES, logits: bool = True
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """Real/fake logits ``[N]`` (None when ``logits=False``) and the requested contrastive features.

        A training phase asks only for what its loss uses, so heads it does not use take no part in the
        graph and get no gradient (and no optimizer step).
        """
        h1, h = self.trunk(x)
        return discriminator_outputs(self, h1, h, features, logits)


# ----------------------------------------------------------------------------- decoder


class _UpCell(nn.Module):
    """An AutoGAN generator cell: ReLU, x2 up-sample, conv3x3, + skip inputs, ReLU, conv3x3 (+ shortcut).

    Returns (skip_out, out). ``skip_out`` is the first conv's output *after* the incoming skips are
    added, as in the official cell, so later cells see the skip sums.
    """

    def __init__(self, ch: int, mode: str, num_skip_in: int, shortcut: bool) -> None:
        super().__init__()
        self.mode = mode
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.skip_in = nn.ModuleList(nn.Conv2d(ch, ch, 1) for _ in range(num_skip_in))
        self.c_sc = nn.Conv2d(ch, ch, 1) if shortcut else None

    def _up(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.mode == "bilinear":
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return F.interpolate(x, size=size, mode="nearest")

    def forward(
        self, x: torch.Tensor, skips: tuple[torch.Tensor, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        size = (x.shape[2] * 2, x.shape[3] * 2)
        h = self.c1(self._up(F.relu(x), size))
        for op, skip in zip(self.skip_in, skips, strict=True):
            h = h + op(self._up(skip, size))
        out = self.c2(F.relu(h))
        if self.c_sc is not None:
            out = out + self.c_sc(self._up(x, size))
        return h, out


class Decoder(nn.Module):
    """Latent [N, latent_dim] -> image [N, C, 32, 32] in [-1, 1]."""

    def __init__(
        self,
        channels: int = 3,  # image channels: 1 grey, 3 RGB
        latent_dim: int = 128,  # size of z
        gf_dim: int = 256,  # width of every generator cell
        bottom_width: int = 4,  # side of the first feature map (three x2 cells follow)
        **_unused: int,
    ) -> None:
        super().__init__()
        self.gf_dim, self.bottom_width = gf_dim, bottom_width
        self.stem = nn.Linear(latent_dim, bottom_width**2 * gf_dim)
        self.cell1 = _UpCell(gf_dim, "nearest", num_skip_in=0, shortcut=True)
        self.cell2 = _UpCell(gf_dim, "bilinear", num_skip_in=1, shortcut=True)
        self.cell3 = _UpCell(gf_dim, "nearest", num_skip_in=2, shortcut=False)
        self.to_image = nn.Sequential(
            nn.BatchNorm2d(gf_dim), nn.ReLU(), nn.Conv2d(gf_dim, channels, 3, padding=1), nn.Tanh()
        )
        init_official(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(z).view(-1, self.gf_dim, self.bottom_width, self.bottom_width)
        skip1, h = self.cell1(h)
        skip2, h = self.cell2(h, (skip1,))
        _, h = self.cell3(h, (skip1, skip2))
        return self.to_image(h)


def build(kind: str, *, channels: int, latent_dim: int, image_size: int, args: dict, spectral_norm: bool):
    """Build ``"encoder"``, ``"decoder"`` or ``"discriminator"`` with the config's sizes."""
    kw = {**DEFAULTS, **args}
    if kind == "encoder":
        return Encoder(channels, latent_dim, kw["df_dim"], spectral_norm=spectral_norm)
    if kind == "decoder":
        return Decoder(channels, latent_dim, kw["gf_dim"], image_size // 8)
    if kind == "discriminator":
        return Discriminator(channels, kw["df_dim"], image_size, spectral_norm=spectral_norm)
    raise ValueError(f"unknown network kind {kind!r}")
