"""Progressive GAN backbone (Karras et al., ICLR 2018) for DC-VAE at 4x4 ... 1024x1024, grown while training.

The paper's CelebA-HQ (256, 512) and LSUN Bedroom (128) models use a Progressive GAN generator as the
decoder and its discriminator as the encoder and discriminator (docs/design.md, "The backbones"; the
authors never released that code).

Decoder (the ProGAN generator): equalized learning rate (weights stored N(0, 1) and scaled at run time by
He's constant gain / sqrt(fan_in)), pixel norm and leaky ReLU 0.2 after every convolution. A linear layer
maps the latent to a 4x4 map (gain sqrt(2)/4, as ProGAN's first dense layer), then a 3x3 conv; every
further resolution up-samples x2 (nearest) and applies two 3x3 convs; a 1x1 to-RGB layer per resolution.
During a fade-in the output is ``lerp(up(rgb_prev), rgb_new, alpha)``. The output ends in tanh (every
DC-VAE decoder does, and the release format promises pixels in [-1, 1]; ProGAN's own output is linear).

Encoder / discriminator trunk (the ProGAN discriminator): a 1x1 from-RGB layer per resolution, two 3x3
convs + 2x2 pooling per resolution, and at 4x4 a 3x3 conv, a 4x4 conv (valid) and the heads; leaky
ReLU 0.2 throughout. During a fade-in the trunk's input to the next-lower resolution is
``lerp(from_rgb_prev(avgpool(x)), block(from_rgb(x)), alpha)``. These layers carry spectral norm when
training instead of the equalized-learning-rate scale: with spectral norm, the He constant would shrink
every layer's Lipschitz bound to gain / sqrt(fan_in) << 1, and DC-VAE's critic is a hinge/spectral-norm
one (the official 32x32 trunk), not ProGAN's WGAN-GP one. Spectral norm divides by the largest singular
value, so typical signals shrink at every layer (about 4x per resolution at init, measured); the trunk
therefore multiplies each leaky ReLU by He's gain sqrt(2 / (1 + 0.2^2)) and pools feature maps with
2x2 average pooling times 2 (norm-preserving, the way the official trunk's sum pooling keeps scale).
Both are constants of the architecture, the same in training and inference, so the folded weights of a
released encoder compute exactly the training function.
- Encoder: trunk -> linear -> (mu, logvar). It has no minibatch-stddev layer: a posterior must not depend
  on which other images share the batch.
- Discriminator (training only): minibatch stddev (groups of up to 4 consecutive images) before the 4x4
  conv; the 16-d "final" contrastive feature and a real/fake head on it; and a "b1" feature from the
  second block's output (resolution ``max(4, image_size / 4)``): conv1x1 -> adaptive average pool to 8x8
  -> flatten -> linear 16; when a fade-in moves that tap up a resolution, b1 is faded from the old tap's
  head to the new one like the RGB layers. ``forward(x) -> (logits [N], {"b1": [N, 16], "final": [N, 16]})``.

Widths follow ProGAN's rule ``min(fmap_base / 2**(log2(r) - 1), fmap_max)`` for the layers at resolution
``r`` (paper widths: fmap_base 8192, fmap_max 512: 512 up to 32x32, then 256, 128, 64, 32, 16); they depend
on the resolution only, so every layer keeps its name and shape while the networks grow.

Names are keyed by resolution (``blocks.r64.conv1.weight``, ``to_rgb.r64.weight``, ``trunk.from_rgb.r64``),
and a network at resolution R keeps the RGB layers of every lower resolution too (a few thousand
parameters), so the state-dict keys of stage R are a subset of those of stage 2R: growing only adds
``blocks.r{2R}``, ``to_rgb.r{2R}`` / ``trunk.from_rgb.r{2R}`` and possibly a b1 tap (see ``new_layer_prefixes``).

Config: ``image_size`` is the current stage's resolution; ``architecture_args`` holds ``fmap_base``,
``fmap_max``, ``max_resolution`` (the growth target; default ``image_size``; must be >= image_size) and,
only for a checkpoint exported in the middle of a fade-in, ``fade_alpha_x1000`` (0..1000; absent = 1000, the
stage fully faded in). Training quantises alpha to multiples of 1/1000, so such an export computes exactly
the function the training networks computed.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .layers import ALL_FEATURES, maybe_spectral_norm

IMAGE_SIZES = tuple(2**k for k in range(2, 11))  # 4, 8, ..., 1024: the current stage's resolution
ARGS = {  # name -> (min, max)
    "fmap_base": (1, 65536),  # width rule numerator (ProGAN: 8192)
    "fmap_max": (1, 1024),  # width cap (ProGAN: 512)
    "max_resolution": (4, 1024),  # the growth target; a power of two >= image_size
    "fade_alpha_x1000": (0, 1000),  # fade-in progress of the newest resolution, x1000; absent = 1000
}
DEFAULTS = {"fmap_base": 8192, "fmap_max": 512, "fade_alpha_x1000": 1000}
CONTRASTIVE_DIM = 16
B1_POOL = 8  # the b1 tap is average-pooled to B1_POOL x B1_POOL whatever its resolution
LRELU_SLOPE = 0.2
TRUNK_GAIN = math.sqrt(2 / (1 + LRELU_SLOPE**2))  # He's gain for leaky ReLU, applied after trunk activations
MBSTD_GROUP = 4


def width(resolution: int, fmap_base: int, fmap_max: int) -> int:
    """Channels of the layers at ``resolution`` (ProGAN's nf(log2(resolution) - 1))."""
    return max(1, min(2 * fmap_base // resolution, fmap_max))


def head_width(fmap_base: int, fmap_max: int) -> int:
    """Channels of the trunk's 4x4-conv output (ProGAN's nf(0))."""
    return max(1, min(fmap_base, fmap_max))


def resolutions(image_size: int) -> list[int]:
    """4, 8, ..., image_size."""
    return [2**k for k in range(2, int(math.log2(image_size)) + 1)]


def b1_tap(image_size: int) -> int:
    """The resolution of the second trunk block's output at stage ``image_size`` (at least 4)."""
    return max(4, image_size // 4)


def new_layer_prefixes(image_size: int) -> tuple[str, ...]:
    """State-dict key prefixes of the layers that first appear at stage ``image_size`` (for any network).

    Growing from ``image_size / 2`` to ``image_size`` must leave exactly these keys missing.
    """
    r = f"r{image_size}"
    prefixes = [f"blocks.{r}.", f"to_rgb.{r}.", f"trunk.blocks.{r}.", f"trunk.from_rgb.{r}."]
    if image_size > 4 and b1_tap(image_size) != b1_tap(image_size // 2):
        prefixes.append(f"b1_conv.r{b1_tap(image_size)}.")
    return tuple(prefixes)


def _key(resolution: int) -> str:
    return f"r{resolution}"


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit root-mean-square (ProGAN's pixelwise normalisation)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


def _act(x: torch.Tensor) -> torch.Tensor:
    """The trunk's activation: leaky ReLU 0.2 times He's gain (see the module docstring)."""
    return F.leaky_relu(x, LRELU_SLOPE) * TRUNK_GAIN


def _pool(x: torch.Tensor) -> torch.Tensor:
    """The trunk's 2x2 down-sampling of feature maps: average pooling times 2 (norm-preserving)."""
    return F.avg_pool2d(x, 2) * 2.0


# ----------------------------------------------------------------------------- equalized learning rate


class EqualConv2d(nn.Module):
    """Conv2d whose N(0, 1) weight is multiplied at run time by ``gain / sqrt(fan_in)`` (He's constant)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, gain: float = math.sqrt(2), padding: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = gain / math.sqrt(in_ch * kernel * kernel)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        out_ch, in_ch, k, _ = self.weight.shape
        return f"{in_ch}, {out_ch}, kernel_size={k}, padding={self.padding}, scale={self.scale:.4g}"


class EqualLinear(nn.Module):
    """Linear layer with the equalized-learning-rate weight scale."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"{in_f}, {out_f}, scale={self.scale:.4g}"


# ----------------------------------------------------------------------------- decoder


class _InputBlock(nn.Module):
    """Latent -> 4x4 map: linear (gain sqrt(2)/4), leaky ReLU, pixel norm, conv3x3, leaky ReLU, pixel norm."""

    def __init__(self, latent_dim: int, ch: int) -> None:
        super().__init__()
        self.ch = ch
        self.dense = EqualLinear(latent_dim, 16 * ch, gain=math.sqrt(2) / 4)
        self.conv = EqualConv2d(ch, ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = pixel_norm(_lrelu(self.dense(z).view(-1, self.ch, 4, 4)))
        return pixel_norm(_lrelu(self.conv(h)))


class _UpBlock(nn.Module):
    """Nearest x2 up-sampling, then two (conv3x3, leaky ReLU, pixel norm)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = EqualConv2d(out_ch, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = pixel_norm(_lrelu(self.conv1(h)))
        return pixel_norm(_lrelu(self.conv2(h)))


class Decoder(nn.Module):
    """Latent [N, latent_dim] -> image [N, C, image_size, image_size] in [-1, 1] (the ProGAN generator)."""

    def __init__(
        self,
        channels: int = 3,  # image channels: 1 grey, 3 RGB
        latent_dim: int = 512,  # size of z
        image_size: int = 256,  # the current stage's resolution
        fmap_base: int = 8192,  # width rule: min(2 * fmap_base / resolution, fmap_max)
        fmap_max: int = 512,
        alpha: float = 1.0,  # fade-in weight of the newest resolution (1: fully faded in)
    ) -> None:
        super().__init__()
        self.latent_dim, self.image_size, self.alpha = latent_dim, image_size, float(alpha)
        self.resolutions = resolutions(image_size)
        self.blocks = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict()
        for r in self.resolutions:
            ch = width(r, fmap_base, fmap_max)
            if r == 4:
                self.blocks[_key(r)] = _InputBlock(latent_dim, ch)
            else:
                self.blocks[_key(r)] = _UpBlock(width(r // 2, fmap_base, fmap_max), ch)
            self.to_rgb[_key(r)] = EqualConv2d(ch, channels, 1, gain=1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents [N, {self.latent_dim}], got {tuple(z.shape)}")
        h = self.blocks["r4"](z)
        if self.image_size == 4:
            return torch.tanh(self.to_rgb["r4"](h))
        for r in self.resolutions[1:-1]:
            h = self.blocks[_key(r)](h)
        top = self.image_size
        out = self.to_rgb[_key(top)](self.blocks[_key(top)](h))
        if self.alpha < 1.0:
            skip = F.interpolate(self.to_rgb[_key(top // 2)](h), scale_factor=2.0, mode="nearest")
            out = torch.lerp(skip, out, self.alpha)
        return torch.tanh(out)


# ----------------------------------------------------------------------------- encoder / discriminator


def _conv(in_ch: int, out_ch: int, kernel: int, sn: bool, padding: int = 0) -> nn.Module:
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=padding)
    nn.init.kaiming_normal_(conv.weight, a=LRELU_SLOPE)
    nn.init.zeros_(conv.bias)
    return maybe_spectral_norm(conv, sn)


def _linear(in_f: int, out_f: int, sn: bool, bias: bool = True) -> nn.Module:
    linear = nn.Linear(in_f, out_f, bias=bias)
    nn.init.kaiming_normal_(linear.weight, a=LRELU_SLOPE)
    if bias:
        nn.init.zeros_(linear.bias)
    return maybe_spectral_norm(linear, sn)


def minibatch_stddev(x: torch.Tensor, group: int = MBSTD_GROUP) -> torch.Tensor:
    """Append one channel: the feature-averaged standard deviation over groups of consecutive images.

    The group is the largest divisor of the batch size up to ``group``; consecutive images form a group, so a
    batch concatenated as [real, fake, ...] in multiples of the group size never mixes kinds in a group.
    """
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = x.float().view(n // g, g, c, h, w)
    std = torch.sqrt(y.var(dim=1, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # [n / g]
    feature = std.repeat_interleave(g).view(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
    return torch.cat([x, feature], dim=1)


class _DownBlock(nn.Module):
    """conv3x3 (same width), leaky ReLU, conv3x3 (to the next width), leaky ReLU, 2x2 pooling."""

    def __init__(self, in_ch: int, out_ch: int, sn: bool) -> None:
        super().__init__()
        self.conv1 = _conv(in_ch, in_ch, 3, sn, padding=1)
        self.conv2 = _conv(in_ch, out_ch, 3, sn, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pool(_act(self.conv2(_act(self.conv1(x)))))


class _FinalBlock(nn.Module):
    """At 4x4: [minibatch stddev], conv3x3, leaky ReLU, conv4x4 (valid), leaky ReLU -> features [N, F]."""

    def __init__(self, ch: int, out_features: int, mbstd: bool, sn: bool) -> None:
        super().__init__()
        self.mbstd = mbstd
        self.conv = _conv(ch + (1 if mbstd else 0), ch, 3, sn, padding=1)
        self.dense = _conv(ch, out_features, 4, sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd:
            x = minibatch_stddev(x)
        return _act(self.dense(_act(self.conv(x)))).flatten(1)


class Trunk(nn.Module):
    """The ProGAN discriminator trunk: image -> (feature maps by resolution, pooled features [N, F])."""

    def __init__(self, channels: int, image_size: int, fmap_base: int, fmap_max: int, mbstd: bool, sn: bool) -> None:
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.resolutions = resolutions(image_size)
        self.out_features = head_width(fmap_base, fmap_max)
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        for r in self.resolutions:
            ch = width(r, fmap_base, fmap_max)
            self.from_rgb[_key(r)] = _conv(channels, ch, 1, sn)
            if r == 4:
                self.blocks[_key(r)] = _FinalBlock(ch, self.out_features, mbstd, sn)
            else:
                self.blocks[_key(r)] = _DownBlock(ch, width(r // 2, fmap_base, fmap_max), sn)

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        size = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, size, size):
            raise ValueError(f"expected images [N, {self.channels}, {size}, {size}], got {tuple(x.shape)}")
        h = _act(self.from_rgb[_key(size)](x))
        maps: dict[int, torch.Tensor] = {}
        if size > 4:
            h = self.blocks[_key(size)](h)
            if alpha < 1.0:
                skip = _act(self.from_rgb[_key(size // 2)](F.avg_pool2d(x, 2)))
                h = torch.lerp(skip, h, alpha)
            for r in reversed(self.resolutions[1:-1]):
                maps[r] = h
                h = self.blocks[_key(r)](h)
        maps[4] = h
        return maps, self.blocks["r4"](h)


class Encoder(nn.Module):
    """Image [N, C, S, S] in [-1, 1] -> (mu, logvar), each [N, latent_dim]."""

    def __init__(
        self,
        channels: int = 3,  # image channels: 1 grey, 3 RGB
        latent_dim: int = 512,  # size of z
        image_size: int = 256,  # the current stage's resolution
        fmap_base: int = 8192,  # width rule: min(2 * fmap_base / resolution, fmap_max)
        fmap_max: int = 512,
        alpha: float = 1.0,  # fade-in weight of the newest resolution (1: fully faded in)
        spectral_norm: bool = False,  # True when training; released weights are stored folded
    ) -> None:
        super().__init__()
        self.latent_dim, self.alpha = latent_dim, float(alpha)
        self.trunk = Trunk(channels, image_size, fmap_base, fmap_max, mbstd=False, sn=spectral_norm)
        self.to_latent = _linear(self.trunk.out_features, 2 * latent_dim, spectral_norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, h = self.trunk(x, self.alpha)
        mu, logvar = self.to_latent(h).chunk(2, dim=1)
        return mu, logvar


class Discriminator(nn.Module):
    """Training-only critic: real/fake logits [N] plus the contrastive features ``b1`` and ``final``."""

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 256,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        alpha: float = 1.0,
        contrastive_dim: int = CONTRASTIVE_DIM,  # size of each contrastive feature
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        self.image_size, self.alpha = image_size, float(alpha)
        self.trunk = Trunk(channels, image_size, fmap_base, fmap_max, mbstd=True, sn=spectral_norm)
        self.final = _linear(self.trunk.out_features, contrastive_dim, spectral_norm, bias=False)
        self.head = _linear(contrastive_dim, 1, spectral_norm)
        self.b1_conv = nn.ModuleDict()
        for tap in sorted({b1_tap(r) for r in resolutions(image_size)}):
            self.b1_conv[_key(tap)] = _conv(width(tap, fmap_base, fmap_max), 1, 1, sn=False)
        self.b1_linear = _linear(B1_POOL * B1_POOL, contrastive_dim, sn=False, bias=False)

    def _b1(self, maps: dict[int, torch.Tensor], tap: int) -> torch.Tensor:
        h = F.adaptive_avg_pool2d(self.b1_conv[_key(tap)](maps[tap]), B1_POOL)
        return self.b1_linear(h.flatten(1))

    def forward(
        self, x: torch.Tensor, features: Collection[str] = ALL_FEATURES, logits: bool = True
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """Real/fake logits ``[N]`` (None when ``logits=False``) and the requested contrastive features."""
        maps, h = self.trunk(x, self.alpha)
        out: dict[str, torch.Tensor] = {}
        if "b1" in features:
            tap = b1_tap(self.image_size)
            b1 = self._b1(maps, tap)
            if self.alpha < 1.0 and self.image_size > 4 and b1_tap(self.image_size // 2) != tap:
                # the previous stage's tap, faded out like the RGB layers (exact continuity at alpha = 0)
                b1 = torch.lerp(self._b1(maps, b1_tap(self.image_size // 2)), b1, self.alpha)
            out["b1"] = b1
        final = self.final(h) if logits or "final" in features else None
        if "final" in features:
            out["final"] = final
        return (self.head(final).squeeze(1) if logits else None), out


# ----------------------------------------------------------------------------- building


def stage_args(image_size: int, args: dict) -> tuple[int, int, float]:
    """Check the config's arguments against ``image_size``; return (fmap_base, fmap_max, alpha).

    Raises ConfigError for what the generic range check in dcvae_tools.config cannot see.
    """
    kw = {**DEFAULTS, **args}
    if image_size not in IMAGE_SIZES:
        raise ConfigError(f"progan: image_size must be a power of two in 4..1024, got {image_size}")
    max_resolution = kw.get("max_resolution", image_size)
    if max_resolution not in IMAGE_SIZES or max_resolution < image_size:
        raise ConfigError(
            f"progan: architecture_args.max_resolution must be a power of two >= image_size ({image_size}), "
            f"got {max_resolution}"
        )
    alpha_x1000 = int(kw["fade_alpha_x1000"])
    if not 0 <= alpha_x1000 <= 1000:
        raise ConfigError(f"progan: architecture_args.fade_alpha_x1000 must be in 0..1000, got {alpha_x1000}")
    if image_size == 4 and alpha_x1000 != 1000:
        raise ConfigError("progan: the 4x4 stage has no fade-in; drop architecture_args.fade_alpha_x1000")
    return int(kw["fmap_base"]), int(kw["fmap_max"]), alpha_x1000 / 1000


def check_args(image_size: int, args: dict) -> None:
    """The cross-checks of ``stage_args`` alone (for config validation, before any tensor exists)."""
    stage_args(image_size, args)


def set_alpha(module: nn.Module, alpha: float) -> None:
    """Set the fade-in weight of a progan encoder, decoder or discriminator (also through DDP/compile)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    for m in module.modules():
        if isinstance(m, Encoder | Decoder | Discriminator):
            m.alpha = float(alpha)


def build(kind: str, *, channels: int, latent_dim: int, image_size: int, args: dict, spectral_norm: bool):
    """Build ``"encoder"``, ``"decoder"`` or ``"discriminator"`` at the stage ``image_size``."""
    fmap_base, fmap_max, alpha = stage_args(image_size, args)
    if kind == "encoder":
        return Encoder(channels, latent_dim, image_size, fmap_base, fmap_max, alpha, spectral_norm=spectral_norm)
    if kind == "decoder":
        return Decoder(channels, latent_dim, image_size, fmap_base, fmap_max, alpha)
    if kind == "discriminator":
        return Discriminator(channels, image_size, fmap_base, fmap_max, alpha, spectral_norm=spectral_norm)
    raise ValueError(f"unknown network kind {kind!r}")
