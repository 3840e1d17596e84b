"""FID-Inception: pytorch-fid's Inception-v3 feature network (pool3, 2048-d), written out in plain torch.

Reference implementation matched: mseitzer/pytorch-fid ``src/pytorch_fid/inception.py`` (``fid_inception_v3``
and its ``FIDInceptionA/C/E_1/E_2`` blocks), the port of the TensorFlow FID Inception graph
(``pt_inception-2015-12-05``) used by the paper's FID protocol. The architecture here follows the published
graph: torchvision-style Inception-v3 layer names (so the weights file loads as it is), batch norm with
eps 1e-3, 1008 output classes, no auxiliary head, and the FID-specific pooling differences: average pools in
the A, C and E blocks exclude padding from the count, and the last E block max-pools its pool branch.

Input protocol (as pytorch-fid): images in [0, 1] are resized to 299x299 (bilinear, ``align_corners=False``,
no antialiasing) and scaled to [-1, 1]; grey images are repeated to 3 channels. Images are first quantised
to 8 bits, as when pytorch-fid reads PNG files.

The weights are NOT bundled and cannot be downloaded here: pass the file's path (``--inception-weights``).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dcvae_tools.errors import DCVAEError
from dcvae_tools.io_utils import sha256_file

from .features import FeatureNetwork

__all__ = ["FID_WEIGHTS_NAME", "FID_WEIGHTS_URL", "FIDInceptionV3", "InceptionWeightsError", "load_fid_inception"]

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
"""The file name pytorch-fid downloads its weights to."""

FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}"
"""Where pytorch-fid publishes the weights file (a GitHub release asset)."""

_TORCH_HUB_GLOB = "~/.cache/torch/hub/checkpoints/pt_inception-2015-12-05-*.pth"


class InceptionWeightsError(DCVAEError):
    """The FID Inception weights file is missing or is not pytorch-fid's file."""


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pool branches (pool excludes padding)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction block."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (pool excludes padding)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction block."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """8x8 block with split 3x3 branches; ``max_pool=True`` is the last block (``Mixed_7c``) of the FID graph."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_no_pad(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionV3(FeatureNetwork):
    """The FID Inception-v3 graph; ``forward`` gives the 2048-d pool3 features of images in [-1, 1]."""

    name = "FID-Inception"
    short = "inception"
    dim = 2048

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # the graph's 1008-way logits: loaded, unused for FID
        self.weights_path: str | None = None
        self.weights_sha256: str | None = None
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round() / 255.0  # 8-bit, as a PNG would hold
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def cache_key(self) -> str:
        return f"inception-{(self.weights_sha256 or 'random')[:12]}"

    def describe(self) -> dict[str, Any]:
        return {
            "feature_network": self.name,
            "dim": self.dim,
            "layer": "pool3 (2048)",
            "weights": self.weights_path,
            "weights_sha256": self.weights_sha256,
            "preprocessing": "8-bit quantised, bilinear resize to 299 (align_corners=False), [-1, 1]",
            "reference": "mseitzer/pytorch-fid fid_inception_v3 (pt_inception-2015-12-05)",
        }


def _missing_weights_message(given: str | os.PathLike[str] | None) -> str:
    where = f"{given} does not exist. " if given is not None else "No FID Inception weights file was given. "
    return (
        f"{where}FID-Inception (metric fid50k_inception) needs pytorch-fid's weights file {FID_WEIGHTS_NAME} "
        "(about 92 MB), which is not bundled and cannot be downloaded by this tool. Get it on a machine with "
        f"internet access from {FID_WEIGHTS_URL} (or `pip install pytorch-fid` and run it once: it saves "
        "the file under ~/.cache/torch/hub/checkpoints/), copy it here and pass --inception-weights PATH. "
        "Without it, use the offline metrics fd10k_classifier or fd10k_lite0 (not comparable with published FIDs)."
    )


def find_inception_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The weights file: ``path`` if given, else pytorch-fid's copy in the torch hub cache if there is one.

    Raises:
        InceptionWeightsError: no file; the message says where to obtain it.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            found = sorted(candidate.glob("pt_inception-2015-12-05-*.pth"))
            if found:
                return found[0]
            raise InceptionWeightsError(_missing_weights_message(candidate / FID_WEIGHTS_NAME))
        if not candidate.is_file():
            raise InceptionWeightsError(_missing_weights_message(candidate))
        return candidate
    cached = sorted(glob.glob(os.path.expanduser(_TORCH_HUB_GLOB)))
    if cached:
        return Path(cached[0])
    raise InceptionWeightsError(_missing_weights_message(None))


def load_fid_inception(
    path: str | os.PathLike[str] | None = None, device: str | torch.device | None = None
) -> FIDInceptionV3:
    """Build the FID Inception network and load pytorch-fid's weights from a local file (never downloads).

    Args:
        path: the ``pt_inception-2015-12-05-*.pth`` file, or a folder holding it; ``None`` looks in the
            torch hub cache (``~/.cache/torch/hub/checkpoints``) where pytorch-fid keeps it.
        device: where to put the network (default CPU).

    Raises:
        InceptionWeightsError: the file is missing (with where to get it) or does not hold that network.
    """
    file = find_inception_weights(path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise InceptionWeightsError(f"{file} is not a readable torch weights file ({err}); {FID_WEIGHTS_URL}") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    net = FIDInceptionV3()
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise InceptionWeightsError(
            f"{file} does not hold pytorch-fid's FID Inception weights (missing {missing[:3]}, unexpected "
            f"{list(result.unexpected_keys)[:3]}); get {FID_WEIGHTS_NAME} from {FID_WEIGHTS_URL}"
        )
    net.weights_path = str(file)
    net.weights_sha256 = sha256_file(file)
    return net.to(device or "cpu").eval()
