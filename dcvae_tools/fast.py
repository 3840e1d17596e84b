"""Fast inference forms of the networks, used automatically by :class:`dcvae_tools.model.DCVAE`.

The released networks are stored in their training form (the official layer layout). For inference the
AutoGAN backbone is rewritten into an equivalent network that does fewer multiply-adds, with weights folded
once and cached (rebuilt automatically when the model's weights, device or dtype change):

* encoder: ``conv3x3 -> avgpool2`` becomes one ``conv4x4 stride 2`` (2.25x fewer multiply-adds); the
  ``1x1 conv -> avgpool2`` shortcut becomes ``avgpool2 -> 1x1 conv`` (4x fewer);
* decoder: ``nearest x2 -> conv3x3`` becomes one ``transposed conv4x4 stride 2`` (2.25x fewer); every
  ``upsample -> 1x1 conv`` (skips and shortcuts) runs at the low resolution and is broadcast-added (4x and
  16x fewer); the output BatchNorm is folded into the preceding convolution;
* activations are kept in channels-last layout, and on the CPU a batch is run in micro-batches that keep
  the activations in cache.

In float32 the fast form equals the plain networks up to float rounding (about 1e-6); with
``compute_dtype=torch.bfloat16`` on a CPU with native bfloat16 (AVX-512 BF16 / AMX) the folded weights
are converted to bfloat16 outright, with the latent head and final activation kept in float32.

Use :func:`optimize_for_inference` to change the settings (or turn the fast path off) for one model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DCVAEError

__all__ = [
    "FastAutoGAN32Decoder",
    "FastAutoGAN32Encoder",
    "InferenceEngine",
    "InferenceOptions",
    "build_fast_network",
    "cpu_has_native_bfloat16",
    "optimize_for_inference",
    "resolve_dtype",
]

Runner = Callable[[torch.Tensor], Any]


@dataclass
class InferenceOptions:
    """How :class:`~dcvae_tools.model.DCVAE` runs its networks at inference.

    Attributes:
        fast: use the folded fast networks where the backbone has one (autogan32); else the plain modules.
        channels_last: keep activations channels-last (NHWC), the layout oneDNN's convolutions prefer.
        micro_batch: on the CPU, run batches in chunks of this many images (``None``: whole batches).
            Chunks of 16-32 keep a 32x32 network's activations in the L2/L3 cache.
        compile: wrap the fast networks in ``torch.compile`` (inductor); the first call of each shape pays
            the compile time (tens of seconds), so this suits long-running services, not the CLI.
        bfloat16_weights: with bfloat16 compute, convert the folded weights to bfloat16 and run the
            network in bfloat16 outright (faster on the CPU); ``False`` uses ``torch.autocast`` instead.
    """

    fast: bool = True
    channels_last: bool = True
    micro_batch: int | None = 32
    compile: bool = False
    bfloat16_weights: bool = True

    def __post_init__(self) -> None:
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ValueError(f"micro_batch must be at least 1 or None, got {self.micro_batch}")


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``"bf16"``/``"bfloat16"``/``torch.bfloat16`` etc. -> a torch dtype (float32, bfloat16 or float16)."""
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif dtype in _DTYPES:
        return _DTYPES[dtype]
    raise DCVAEError(f"dtype must be one of float32, bfloat16, float16; got {dtype!r}")


@functools.cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), so bfloat16 is a speed-up."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # very old or unusual builds
        return False


# ----------------------------------------------------------------------------- weight transforms

# nearest x2 up-sampling then a 3-tap filter == a 4-tap stride-2 transposed filter (per dimension):
# out[2i] = w0 x[i-1] + (w1 + w2) x[i];  out[2i+1] = (w0 + w1) x[i] + w2 x[i+1]
_UP_NEAREST = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
# a 3-tap filter then 2-wide average pooling == a 4-tap stride-2 filter (per dimension, 1/2 each)
_DOWN_AVG = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64) / 2


def _conv_weight(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A convolution's (weight, bias) as float64 copies (spectral norm, if present, already applied)."""
    weight = conv.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else None
    return weight, bias


def nearest_up_conv_as_transposed(weight: torch.Tensor) -> torch.Tensor:
    """Weight [O, I, 3, 3] of ``conv3x3(pad 1)`` after nearest x2 up-sampling -> weight [I, O, 4, 4] of
    the equivalent ``conv_transpose2d(stride 2, pad 1)`` on the low-resolution input."""
    m = _UP_NEAREST.to(weight)
    return torch.einsum("ak,bl,oikl->ioab", m, m, weight)


def conv_avgpool_as_strided(weight: torch.Tensor) -> torch.Tensor:
    """Weight [O, I, 3, 3] of ``conv3x3(pad 1)`` followed by ``avg_pool2d(2)`` -> weight [O, I, 4, 4] of
    the equivalent ``conv2d(stride 2, pad 1)``."""
    m = _DOWN_AVG.to(weight)
    return torch.einsum("ak,bl,oikl->oiab", m, m, weight)


def fold_batchnorm(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm that follows a convolution into the convolution's weight and bias."""
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    shift = bn.bias.detach().double() - bn.running_mean.detach().double() * scale
    base = bias if bias is not None else torch.zeros_like(shift)
    return weight * scale.view(-1, 1, 1, 1), base * scale + shift


def _up_add_(out: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """``out += nearest_upsample(low)`` without materialising the up-sampled tensor."""
    n, c, h, w = out.shape
    fy, fx = h // low.shape[2], w // low.shape[3]
    out.view(n, c, low.shape[2], fy, low.shape[3], fx).add_(low.view(n, c, low.shape[2], 1, low.shape[3], 1))
    return out


# ----------------------------------------------------------------------------- fast networks


class _Folded(nn.Module):
    """Base class: holds folded weights as buffers in one dtype and memory format."""

    def __init__(self, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        self.dtype = dtype
        # heads, stems and the output non-linearity never run below float32
        self.float_dtype = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def _store(self, name: str, tensor: torch.Tensor | None, device: torch.device, *, keep_float: bool = False) -> None:
        if tensor is None:
            self.register_buffer(name, None)
            return
        dtype = self.float_dtype if keep_float else self.dtype
        tensor = tensor.to(device=device, dtype=dtype)
        if tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=self.memory_format)
        self.register_buffer(name, tensor)

    def _activation(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype).contiguous(memory_format=self.memory_format)


class FastAutoGAN32Encoder(_Folded):
    """Inference form of :class:`dcvae_tools.networks.autogan32.Encoder` (same outputs, fewer multiply-adds)."""

    def __init__(self, encoder: nn.Module, dtype: torch.dtype = torch.float32, channels_last: bool = True) -> None:
        super().__init__(dtype, channels_last)
        device = next(encoder.parameters()).device
        trunk = encoder.trunk
        with torch.no_grad():
            b1, b2 = trunk.block1, trunk.block2
            w, b = _conv_weight(b1.c1)
            self._store("b1_c1_w", w, device)
            self._store("b1_c1_b", b, device)
            w, b = _conv_weight(b1.c2)
            self._store("b1_c2_w", conv_avgpool_as_strided(w), device)
            self._store("b1_c2_b", b, device)
            w, b = _conv_weight(b1.c_sc)
            self._store("b1_sc_w", w, device)
            self._store("b1_sc_b", b, device)
            if not (b2.downsample and b2.learnable_sc):
                raise ValueError("unexpected autogan32 trunk: block 2 must down-sample with a learnable shortcut")
            w, b = _conv_weight(b2.c1)
            self._store("b2_c1_w", w, device)
            self._store("b2_c1_b", b, device)
            w, b = _conv_weight(b2.c2)
            self._store("b2_c2_w", conv_avgpool_as_strided(w), device)
            self._store("b2_c2_b", b, device)
            w, b = _conv_weight(b2.c_sc)
            self._store("b2_sc_w", w, device)
            self._store("b2_sc_b", b, device)
            for i, blk in ((3, trunk.block3), (4, trunk.block4)):
                if blk.downsample or blk.learnable_sc:
                    raise ValueError("unexpected autogan32 trunk: blocks 3 and 4 must keep size and shortcut")
                for conv in ("c1", "c2"):
                    w, b = _conv_weight(getattr(blk, conv))
                    self._store(f"b{i}_{conv}_w", w, device)
                    self._store(f"b{i}_{conv}_b", b, device)
            head = encoder.to_latent
            self._store("head_w", head.weight.detach().double(), device, keep_float=True)
            bias = head.bias.detach().double() if head.bias is not None else None
            self._store("head_b", bias, device, keep_float=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._activation(x)
        # block 1: conv-ReLU-[conv+avgpool as one strided conv] + (avgpool -> 1x1 conv)
        h = F.conv2d(F.relu(F.conv2d(x, self.b1_c1_w, self.b1_c1_b, padding=1)), self.b1_c2_w, self.b1_c2_b,
                     stride=2, padding=1)
        h = h.add_(F.conv2d(F.avg_pool2d(x, 2), self.b1_sc_w, self.b1_sc_b))
        # block 2: pre-activation, down-sampling, learnable shortcut (avgpool first: 4x fewer multiply-adds)
        t = F.relu(F.conv2d(F.relu(h), self.b2_c1_w, self.b2_c1_b, padding=1))
        t = F.conv2d(t, self.b2_c2_w, self.b2_c2_b, stride=2, padding=1)
        h = t.add_(F.conv2d(F.avg_pool2d(h, 2), self.b2_sc_w, self.b2_sc_b))
        # blocks 3 and 4: pre-activation, identity shortcut
        for i in (3, 4):
            t = F.relu(F.conv2d(F.relu(h), getattr(self, f"b{i}_c1_w"), getattr(self, f"b{i}_c1_b"), padding=1))
            h = F.conv2d(t, getattr(self, f"b{i}_c2_w"), getattr(self, f"b{i}_c2_b"), padding=1).add_(h)
        feature = F.relu(h).to(self.float_dtype).sum(dim=(2, 3))
        mu, logvar = F.linear(feature, self.head_w, self.head_b).chunk(2, dim=1)
        return mu, logvar


class FastAutoGAN32Decoder(_Folded):
    """Inference form of :class:`dcvae_tools.networks.autogan32.Decoder` (same outputs, fewer multiply-adds)."""

    def __init__(self, decoder: nn.Module, dtype: torch.dtype = torch.float32, channels_last: bool = True) -> None:
        super().__init__(dtype, channels_last)
        device = next(decoder.parameters()).device
        self.gf_dim, self.bottom_width = decoder.gf_dim, decoder.bottom_width
        cells = (decoder.cell1, decoder.cell2, decoder.cell3)
        modes = tuple(c.mode for c in cells)
        skips = tuple(len(c.skip_in) for c in cells)
        shortcuts = tuple(c.c_sc is not None for c in cells)
        if modes != ("nearest", "bilinear", "nearest") or skips != (0, 1, 2) or shortcuts != (True, True, False):
            raise ValueError(f"unexpected autogan32 decoder cells: {modes}, skips {skips}, shortcuts {shortcuts}")
        bn, _relu, conv, tanh = decoder.to_image
        if not (isinstance(bn, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d) and isinstance(tanh, nn.Tanh)):
            raise ValueError("unexpected autogan32 decoder output layers")
        with torch.no_grad():
            self._store("stem_w", decoder.stem.weight.detach().double(), device, keep_float=True)
            self._store("stem_b", decoder.stem.bias.detach().double(), device, keep_float=True)
            c1, c2, c3 = cells
            # cell 1: nearest
            w, b = _conv_weight(c1.c1)
            self._store("c1_up_w", nearest_up_conv_as_transposed(w), device)
            self._store("c1_up_b", b, device)
            w, b = _conv_weight(c1.c2)
            self._store("c1_c2_w", w, device)
            self._store("c1_c2_b", b, device)
            w, b = _conv_weight(c1.c_sc)
            self._store("c1_sc_w", w, device)
            self._store("c1_sc_b", b, device)
            # cell 2: bilinear (its 3x3 conv stays at the up-sampled size); 1x1 convs run before up-sampling
            for name in ("c1", "c2", "c_sc"):
                w, b = _conv_weight(getattr(c2, name))
                self._store(f"c2_{name}_w", w, device)
                self._store(f"c2_{name}_b", b, device)
            w, b = _conv_weight(c2.skip_in[0])
            self._store("c2_skip_w", w, device)
            self._store("c2_skip_b", b, device)
            # cell 3: nearest, two skips in; the output BatchNorm is folded into its second conv
            w, b = _conv_weight(c3.c1)
            self._store("c3_up_w", nearest_up_conv_as_transposed(w), device)
            self._store("c3_up_b", b, device)
            for i, op in enumerate(c3.skip_in):
                w, b = _conv_weight(op)
                self._store(f"c3_skip{i}_w", w, device)
                self._store(f"c3_skip{i}_b", b, device)
            w, b = fold_batchnorm(*_conv_weight(c3.c2), bn)
            self._store("c3_c2_w", w, device)
            self._store("c3_c2_b", b, device)
            w, b = _conv_weight(conv)
            self._store("out_w", w, device)
            self._store("out_b", b, device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        s = self.bottom_width
        h = F.linear(z.to(self.float_dtype), self.stem_w, self.stem_b).view(-1, self.gf_dim, s, s)
        x = self._activation(h)
        # cell 1 (nearest): skip1 = conv(up(relu x)); out = conv(relu skip1) + up(1x1(x))
        skip1 = F.conv_transpose2d(F.relu(x), self.c1_up_w, self.c1_up_b, stride=2, padding=1)
        out = _up_add_(F.conv2d(F.relu(skip1), self.c1_c2_w, self.c1_c2_b, padding=1),
                       F.conv2d(x, self.c1_sc_w, self.c1_sc_b))
        # cell 2 (bilinear): 1x1 convs commute with bilinear up-sampling (its weights sum to one)
        x = out
        size = (x.shape[2] * 2, x.shape[3] * 2)
        skip2 = F.conv2d(F.interpolate(F.relu(x), size=size, mode="bilinear", align_corners=False),
                         self.c2_c1_w, self.c2_c1_b, padding=1)
        skip2 = skip2.add_(F.interpolate(F.conv2d(skip1, self.c2_skip_w, self.c2_skip_b), size=size,
                                         mode="bilinear", align_corners=False))
        out = F.conv2d(F.relu(skip2), self.c2_c2_w, self.c2_c2_b, padding=1)
        out = out.add_(F.interpolate(F.conv2d(x, self.c2_c_sc_w, self.c2_c_sc_b), size=size,
                                     mode="bilinear", align_corners=False))
        # cell 3 (nearest, no shortcut): both skips as 1x1 convs at their own size, summed at 16x16 first
        x = out
        low = _up_add_(
            F.conv2d(skip2, self.c3_skip1_w, self.c3_skip1_b), F.conv2d(skip1, self.c3_skip0_w, self.c3_skip0_b)
        )
        h = _up_add_(F.conv_transpose2d(F.relu(x), self.c3_up_w, self.c3_up_b, stride=2, padding=1), low)
        out = F.conv2d(h.relu_(), self.c3_c2_w, self.c3_c2_b, padding=1)  # BatchNorm folded in
        image = F.conv2d(out.relu_(), self.out_w, self.out_b, padding=1)
        return torch.tanh(image.to(self.float_dtype)).contiguous()


_FAST_BUILDERS: dict[tuple[str, str], type[_Folded]] = {
    ("autogan32", "encoder"): FastAutoGAN32Encoder,
    ("autogan32", "decoder"): FastAutoGAN32Decoder,
}


def build_fast_network(
    architecture: str, kind: str, network: nn.Module, dtype: torch.dtype = torch.float32, channels_last: bool = True
) -> nn.Module | None:
    """The fast inference form of ``network`` (an ``"encoder"`` or ``"decoder"``), or ``None`` when the
    backbone has none or the network does not have the expected layout."""
    builder = _FAST_BUILDERS.get((architecture, kind))
    if builder is None:
        return None
    try:
        return builder(network, dtype, channels_last).eval()
    except (AttributeError, ValueError, TypeError):
        return None


# ----------------------------------------------------------------------------- the engine used by DCVAE._run


def _version(tensor: torch.Tensor) -> int:
    try:
        return tensor._version
    except RuntimeError:  # inference tensors (a model built under torch.inference_mode) have no version counter
        return -1


def _signature(module: nn.Module) -> tuple:
    """Identifies the current state of a module's tensors: changes when any weight is modified in place,
    replaced, moved or converted (in-place changes of inference tensors are not seen: call
    ``model._inference.clear()`` after those)."""
    return tuple(
        (t.data_ptr(), _version(t), t.dtype, t.device, tuple(t.shape))
        for t in (*module.parameters(), *module.buffers())
    )


@dataclass
class InferenceEngine:
    """Caches the fast networks of one model and runs batches through them (see :class:`InferenceOptions`)."""

    options: InferenceOptions = field(default_factory=InferenceOptions)
    _cache: dict[tuple[int, torch.dtype], tuple[tuple, nn.Module | None, Runner | None]] = field(
        default_factory=dict, repr=False
    )

    def clear(self) -> None:
        """Drop the cached fast networks (they are rebuilt on the next call)."""
        self._cache.clear()

    def runner(
        self, network: Runner, architecture: str, kind: str | None, dtype: torch.dtype
    ) -> tuple[Runner | None, bool]:
        """(fast runner for ``network`` in ``dtype`` or None, whether it computes in ``dtype`` natively).

        ``kind`` is ``"encoder"`` or ``"decoder"`` of backbone ``architecture``; None (any other callable) or a
        backbone without a fast form gives no runner.
        """
        opts = self.options
        if not opts.fast or kind is None or not isinstance(network, nn.Module):
            return None, False
        device = next(network.parameters()).device
        if dtype == torch.float32:
            fast_dtype = torch.float32
        elif dtype == torch.bfloat16 and opts.bfloat16_weights and (device.type != "cpu" or cpu_has_native_bfloat16()):
            fast_dtype = torch.bfloat16
        else:
            return None, False  # float16, or bfloat16 by autocast: the plain network under autocast
        key = (id(network), fast_dtype)
        signature = (_signature(network), opts.channels_last, opts.compile)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == signature:
            return cached[2], True
        fast = build_fast_network(architecture, kind, network, fast_dtype, opts.channels_last)
        run: Runner | None = None
        if fast is not None:
            run = torch.compile(fast, dynamic=False) if opts.compile else fast
        self._cache[key] = (signature, fast, run)
        return run, run is not None

    def forward(self, run: Runner, x: torch.Tensor) -> Any:
        """``run(x)``, in micro-batches on the CPU; tuple outputs are concatenated element-wise."""
        size = self.options.micro_batch
        if size is None or x.device.type != "cpu" or len(x) <= size:
            return run(x)
        parts = [run(x[start : start + size]) for start in range(0, len(x), size)]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(items) for items in zip(*parts, strict=True))
        return torch.cat(parts)


class Tunable(Protocol):
    """What :func:`optimize_for_inference` sets: a :class:`~dcvae_tools.model.DCVAE` (named structurally so that
    this module never imports the model)."""

    _inference: InferenceEngine
    compute_dtype: torch.dtype


TunableT = TypeVar("TunableT", bound=Tunable)


def optimize_for_inference(
    model: TunableT,
    *,
    fast: bool = True,
    channels_last: bool = True,
    micro_batch: int | None = 32,
    compile: bool = False,
    bfloat16_weights: bool = True,
    dtype: torch.dtype | str | None = None,
) -> TunableT:
    """Set how ``model`` runs its networks (see :class:`InferenceOptions`); returns the model.

    The defaults are what a model does anyway; call this to turn on ``compile``, change ``micro_batch``, or
    turn the fast networks off (``fast=False``: the plain modules, as trained). ``dtype`` (``"float32"``,
    ``"bfloat16"``, ``"float16"``) also sets ``model.compute_dtype``.
    """
    options = InferenceOptions(
        fast=fast, channels_last=channels_last, micro_batch=micro_batch, compile=compile,
        bfloat16_weights=bfloat16_weights,
    )
    model._inference = InferenceEngine(options)
    if dtype is not None:
        model.compute_dtype = resolve_dtype(dtype)
    return model
