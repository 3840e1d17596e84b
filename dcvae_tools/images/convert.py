"""The image side of the data flow: files, PIL images and arrays to model tensors and back.

Model tensors are float32 ``[N, C, size, size]`` with values in ``[-1, 1]`` (``-1`` is black),
``C`` being 1 (grey) or 3 (RGB). A model may draw its content smaller than ``size`` (say 28x28
MNIST digits in a 32x32 frame): :func:`to_tensor` then pads the resized image with ``-1`` and
:func:`to_pil` / the ``save_*`` helpers crop the centred ``content_size`` square back out.

Every write goes through :func:`dcvae_tools.io_utils.atomic_write`, so a failure never leaves a
partial file, and every problem with an input image is raised as
:class:`dcvae_tools.errors.ImageError` with a message that names the file.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dcvae_tools.errors import ImageError
from dcvae_tools.io_utils import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "expand_image_paths",
    "load_image",
    "make_grid",
    "save_gif",
    "save_grid",
    "save_image",
    "to_pil",
    "to_tensor",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""File suffixes (lowercase) treated as images when a folder is expanded, and accepted for saving."""

MAX_IMAGE_PIXELS: int = 64_000_000
"""Images with more pixels than this are refused by :func:`load_image` (decompression-bomb guard)."""

_SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
_SUPPORTED_NAMES = "PNG, JPEG, WebP, BMP"
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, the weights Pillow uses for RGB -> L
_RANGE_TOLERANCE = 1e-3

StrPath = str | os.PathLike[str]
ImageInput = Image.Image | str | os.PathLike[str] | np.ndarray | torch.Tensor


# --------------------------------------------------------------------------- paths and loading


def expand_image_paths(inputs: Sequence[StrPath] | StrPath) -> list[Path]:
    """Turn a list of files and folders into the list of image files to process.

    Files are kept as given, in order (whatever their suffix: :func:`load_image` judges them).
    A folder is replaced by the image files under it, searched recursively, sorted; only names
    ending in one of :data:`IMAGE_SUFFIXES` (any case) count, and hidden files and folders (names
    starting with ``.``, such as ``.ipynb_checkpoints`` or interrupted temporary files) are skipped.

    Raises:
        ImageError: a path does not exist, or a folder holds no image file.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    result: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and p.is_file()
            )
            if not found:
                raise ImageError(
                    f"{path}: folder contains no image files (looked recursively for "
                    f"{', '.join(IMAGE_SUFFIXES)}); pass image files or a folder that holds some"
                )
            result.extend(found)
        elif path.exists():
            result.append(path)
        else:
            raise ImageError(f"{path}: no such file or folder; check the path")
    return result


def load_image(path: StrPath) -> Image.Image:
    """Open an image file with Pillow and decode it fully, turning every failure into ImageError.

    The pixel data is loaded before returning (so truncated files fail here, not later) and the
    file is closed. Images with more than :data:`MAX_IMAGE_PIXELS` pixels are refused, and so is
    anything Pillow itself flags as a possible decompression bomb (its warning counts as an
    error). For multi-frame files the first frame is returned. The image keeps its original mode.

    Raises:
        ImageError: missing file, a folder, unreadable file, not an image, truncated or corrupt
            data, or too many pixels; the message names the file.
    """
    p = Path(path)
    limit = MAX_IMAGE_PIXELS
    try:
        handle = open(p, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file; check the path") from None
    except IsADirectoryError:
        raise ImageError(f"{p}: is a folder, not an image file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied; make the file readable") from None
    except OSError as exc:
        raise ImageError(f"{p}: could not open the file ({exc.strerror or exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(handle)
            except UnidentifiedImageError:
                raise ImageError(
                    f"{p}: not an image file Pillow can read (supported: {_SUPPORTED_NAMES})"
                ) from None
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                match = re.search(r"\((\d+) pixels\)", str(exc))
                pixels = match.group(1) if match else "too many"
                raise ImageError(
                    f"{p}: image has {pixels} pixels, more than the limit {limit}: "
                    "refusing a possible decompression bomb"
                ) from None
            width, height = image.size
            if width * height > limit:
                raise ImageError(
                    f"{p}: image has {width * height} pixels, more than the limit {limit}: "
                    "refusing a possible decompression bomb"
                )
            try:
                image.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise ImageError(
                    f"{p}: image has more pixels than the limit {limit}: refusing a possible "
                    "decompression bomb"
                ) from None
            except (OSError, SyntaxError, ValueError, EOFError, IndexError, MemoryError) as exc:
                raise ImageError(f"{p}: image is truncated or corrupt ({exc})") from None
    finally:
        handle.close()
    return image


# --------------------------------------------------------------------------- to model tensors


_GREY_MODES = frozenset({"1", "L", "LA", "La"})


def _pil_to_model_mode(image: Image.Image, channels: int) -> tuple[Image.Image | np.ndarray, list[str]]:
    """Bring a PIL image to mode L/RGB (uint8) or, for 16-bit/float modes, to a float HxWxC array."""
    source = image.mode
    changes: list[str] = []
    if source == "F" or source.startswith("I"):
        # 16-bit PNGs open as I;16 / I, and Pillow's own I -> L conversion clips instead of scaling.
        scale = 255.0 if source == "F" else 65535.0
        data = np.clip(np.asarray(image, dtype=np.float64) / scale, 0.0, 1.0).astype(np.float32)
        data = data.reshape(data.shape[0], data.shape[1], 1)
        if channels == 3:
            changes.append(f"converted mode {source} to RGB")
            return np.repeat(data, 3, axis=2), changes
        changes.append(f"converted mode {source} to grey")
        return data, changes
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            changes.append("transparency composited on black")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba).convert("RGB")
        if source in _GREY_MODES:
            return (
                (image.convert("L"), changes)
                if channels == 1
                else (image, [*changes, "converted grey to RGB"])
            )
        if channels == 3:
            return image, changes
        return image.convert("L"), [*changes, "converted to grey"]
    target = "L" if channels == 1 else "RGB"
    if source == target:
        return image, changes
    if channels == 1:
        changes.append(f"converted mode {source} to grey" if source in _GREY_MODES else "converted to grey")
    else:
        changes.append(
            "converted grey to RGB" if source in _GREY_MODES else f"converted mode {source} to RGB"
        )
    return image.convert(target), changes


def _array_to_float_hwc(array: np.ndarray, label: str) -> np.ndarray | Image.Image:
    """Validate a numpy image; uint8 becomes a PIL image, other dtypes a float32 HxWxC array in [0,1]."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ImageError(
            f"{label}: numpy image has shape {tuple(array.shape)}; expected HxW (grey) or HxWxC with "
            "C in 1, 2, 3, 4 (grey, grey+alpha, RGB, RGBA)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"{label}: numpy image is empty (shape {tuple(array.shape)})")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.dtype == np.bool_:
        data = array.astype(np.float32)
    elif array.dtype == np.uint16:
        data = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        data = array.astype(np.float32)
        if not np.isfinite(data).all():
            raise ImageError(f"{label}: numpy image contains NaN or infinite values")
        low, high = float(data.min()), float(data.max())
        if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
            hint = " (divide by 255 if it holds 0..255 values)" if high <= 255 and low >= 0 else ""
            raise ImageError(
                f"{label}: float numpy image has values in [{low:.4g}, {high:.4g}]; expected [0, 1]{hint}"
            )
        data = np.clip(data, 0.0, 1.0)
    else:
        raise ImageError(
            f"{label}: numpy image has dtype {array.dtype}; use uint8 (0..255) or float in [0, 1]"
        )
    return data if data.ndim == 3 else data[:, :, None]


def _float_to_channels(data: np.ndarray, channels: int) -> tuple[np.ndarray, list[str]]:
    """Convert a float HxWxC (C in 1..4) array in [0,1] to ``channels`` channels, noting changes."""
    changes: list[str] = []
    c = data.shape[2]
    if c in (2, 4):
        data = data[:, :, :-1] * data[:, :, -1:]
        changes.append("transparency composited on black")
        c -= 1
    if c == channels:
        return data, changes
    if channels == 1:
        weights = np.asarray(_LUMA, dtype=np.float32)
        changes.append("converted to grey")
        return (data @ weights)[:, :, None].astype(np.float32), changes
    changes.append("converted grey to RGB")
    return np.repeat(data, 3, axis=2), changes


def _resize_filter(side: int, new_side: int) -> Image.Resampling:
    return Image.Resampling.LANCZOS if new_side < side else Image.Resampling.BICUBIC


def _geometry_note(width: int, height: int, content: int) -> str | None:
    side = min(width, height)
    cropped, resized = width != height, side != content
    if cropped and resized:
        return f"center-cropped and resized to {content}x{content}"
    if cropped:
        return f"center-cropped to {content}x{content}"
    if resized:
        return f"resized to {content}x{content}"
    return None


def _fit_pil(image: Image.Image, content: int) -> Image.Image:
    """Center-crop to a square, then resize to ``content`` (LANCZOS down, bicubic up)."""
    width, height = image.size
    side = min(width, height)
    if width != height:
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != content:
        image = image.resize((content, content), _resize_filter(side, content))
    return image


def _fit_float(data: np.ndarray, content: int) -> np.ndarray:
    """Same as :func:`_fit_pil` for a float32 HxWxC array in [0,1] (resized channel by channel)."""
    height, width = data.shape[:2]
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    data = data[top : top + side, left : left + side]
    if side != content:
        resample = _resize_filter(side, content)
        planes = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(data[:, :, c])).resize((content, content), resample)
            )
            for c in range(data.shape[2])
        ]
        data = np.clip(np.stack(planes, axis=2), 0.0, 1.0)
    return data.astype(np.float32, copy=False)


def _pad(chw: torch.Tensor, size: int) -> torch.Tensor:
    """Pad a ``[C, s, s]`` tensor centred into ``[C, size, size]`` with -1."""
    side = chw.shape[-1]
    if side == size:
        return chw
    out = torch.full((chw.shape[0], size, size), -1.0, dtype=torch.float32)
    off = (size - side) // 2
    out[:, off : off + side, off : off + side] = chw
    return out


def _convert_one(
    item: Image.Image | np.ndarray, label: str, size: int, channels: int, content: int
) -> tuple[torch.Tensor, str | None]:
    """Convert one PIL image or float HxWxC array in [0,1] to a padded [C,size,size] tensor."""
    if isinstance(item, Image.Image):
        width, height = item.size
        source = f"{width}x{height} {item.mode}"
        converted, changes = _pil_to_model_mode(item, channels)
    else:
        height, width = item.shape[:2]
        names = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}
        source = f"{width}x{height} float {names[item.shape[2]]}"
        converted, changes = _float_to_channels(item, channels)
    geometry = _geometry_note(width, height, content)
    if geometry:
        changes.insert(0, geometry)
    if isinstance(converted, Image.Image):
        fitted = _fit_pil(converted, content)
        array = np.asarray(fitted, dtype=np.float32) / 127.5 - 1.0
    else:
        array = _fit_float(converted, content) * 2.0 - 1.0
    if array.ndim == 2:
        array = array[:, :, None]
    chw = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float()
    note = f"{label}: {source} -> {', '.join(changes)}" if changes else None
    return _pad(chw, size), note


def _tensor_items(tensor: torch.Tensor, label: str) -> list[tuple[torch.Tensor, str]]:
    """Split a [C,H,W] / [N,C,H,W] tensor into labelled [C,H,W] float tensors in [-1,1] on the CPU."""
    expected = "[C, H, W] or [N, C, H, W] with C = 1 (grey) or 3 (RGB)"
    if tensor.ndim == 3:
        batch, labels = tensor.unsqueeze(0), [label]
    elif tensor.ndim == 4:
        batch, labels = tensor, [f"{label}[{i}]" for i in range(tensor.shape[0])]
    else:
        raise ImageError(f"{label}: tensor has shape {list(tensor.shape)}; expected {expected}")
    if batch.shape[1] not in (1, 3) or batch.shape[2] == 0 or batch.shape[3] == 0:
        raise ImageError(f"{label}: tensor has shape {list(tensor.shape)}; expected {expected}")
    batch = batch.detach().cpu()
    if batch.dtype == torch.uint8:
        batch = batch.float() / 127.5 - 1.0
    elif batch.is_floating_point():
        batch = batch.float()
        if batch.numel():
            if not torch.isfinite(batch).all():
                raise ImageError(f"{label}: tensor contains NaN or infinite values")
            low, high = float(batch.min()), float(batch.max())
            if low < -1 - _RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
                raise ImageError(
                    f"{label}: tensor values span [{low:.4g}, {high:.4g}] but model tensors must be in "
                    "[-1, 1]; scale them first (x * 2 - 1 for [0, 1] data, x / 127.5 - 1 for 0..255)"
                )
        batch = batch.clamp(-1.0, 1.0)
    else:
        raise ImageError(
            f"{label}: tensor has dtype {batch.dtype}; use a float tensor in [-1, 1] (or uint8 0..255)"
        )
    return list(zip(batch, labels, strict=True))


def to_tensor(
    images: ImageInput | Sequence[ImageInput],
    *,
    size: int,
    channels: int,
    content_size: int | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Convert images to a model input batch, saying what had to be changed.

    Accepts one item or a list/tuple of items, each of:

    * a PIL image (any mode: alpha is composited on black, palettes expanded, 16-bit scaled);
    * a ``str`` / ``Path`` to an image file (read with :func:`load_image`);
    * a numpy array ``HxW`` or ``HxWxC`` (C = 1, 2, 3, 4), uint8 in 0..255 or float in [0, 1]
      (uint16 and bool are accepted too);
    * a torch tensor ``[C, H, W]`` or ``[N, C, H, W]`` (C = 1 or 3), float, assumed to be already
      in [-1, 1] (uint8 tensors are read as 0..255).

    Each image is converted to ``channels`` channels (grey uses Pillow's ITU-R 601-2 luma),
    center-cropped to a square, resized to ``content_size`` (LANCZOS when shrinking, bicubic when
    enlarging) and, when ``content_size < size``, padded centred to ``size`` with -1 (black).
    The padding is part of the model format and is not reported as a change.

    Args:
        images: the image(s).
        size: the model's image side.
        channels: 1 for grey models, 3 for RGB ones.
        content_size: the side the content is drawn at inside the ``size`` frame (default ``size``).

    Returns:
        A float32 CPU tensor ``[N, channels, size, size]`` in [-1, 1] and a list of notes, one per
        image that was changed, e.g. ``"photo.jpg: 640x480 RGB -> center-cropped and resized to
        28x28, converted to grey"``; empty when every image already had the model's format.

    Raises:
        ImageError: an unreadable file, an unsupported type, a wrongly shaped array or tensor, or
            values outside the expected range (the message names the image).
        ValueError: ``size``, ``channels`` or ``content_size`` are invalid.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    content = size if content_size is None else content_size
    if not 0 < content <= size:
        raise ValueError(f"content_size must be between 1 and size={size}, got {content_size}")
    items: Sequence[Any] = list(images) if isinstance(images, list | tuple) else [images]
    if len(items) == 1 and isinstance(items[0], np.ndarray) and items[0].ndim == 4:
        items = list(items[0])  # a numpy batch N x H x W x C
    if not items:
        raise ImageError("no images given; pass at least one image, file or array")

    tensors: list[torch.Tensor] = []
    notes: list[str] = []
    for index, item in enumerate(items):
        label = f"input {index}" if len(items) > 1 else "input"
        if isinstance(item, torch.Tensor):
            for chw, sub_label in _tensor_items(item, label):
                if content < size and chw.shape[1] == chw.shape[2] == size:
                    chw = _crop_center(chw, content)  # already in model format: drop the padding
                if chw.shape[0] == channels and chw.shape[1] == chw.shape[2] == content:
                    tensors.append(_pad(chw, size))
                    continue
                data = ((chw.permute(1, 2, 0).numpy() + 1.0) / 2.0).astype(np.float32)
                tensor, note = _convert_one(data, sub_label, size, channels, content)
                tensors.append(tensor)
                if note:
                    notes.append(note)
            continue
        if isinstance(item, str | os.PathLike):
            label = str(item)
            prepared: Image.Image | np.ndarray = load_image(item)
        elif isinstance(item, Image.Image):
            filename = getattr(item, "filename", "")
            label = str(filename) if filename else label
            prepared = item
        elif isinstance(item, np.ndarray):
            prepared = _array_to_float_hwc(item, label)
        else:
            raise ImageError(
                f"{label}: cannot use a {type(item).__name__} as an image; pass a PIL image, a file "
                "path, a numpy array or a torch tensor"
            )
        tensor, note = _convert_one(prepared, label, size, channels, content)
        tensors.append(tensor)
        if note:
            notes.append(note)
    return torch.stack(tensors), notes


# --------------------------------------------------------------------------- back to pictures


def _check_chw_batch(tensor: torch.Tensor, what: str) -> torch.Tensor:
    """Return a float32 CPU [N,C,H,W] tensor clamped to [-1,1]; reject bad shapes and NaN."""
    if not isinstance(tensor, torch.Tensor):
        raise ImageError(f"{what}: expected a torch tensor, got {type(tensor).__name__}")
    batch = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ImageError(
            f"{what}: tensor has shape {list(tensor.shape)}; expected [C, H, W] or [N, C, H, W] with "
            "C = 1 (grey) or 3 (RGB)"
        )
    batch = batch.detach().to("cpu", torch.float32)
    if torch.isnan(batch).any():
        raise ImageError(f"{what}: tensor contains NaN values; the model output is broken")
    return batch.clamp(-1.0, 1.0)


def _crop_center(batch: torch.Tensor, content_size: int | None) -> torch.Tensor:
    """Crop the centred ``content_size`` square out of [..., H, W] (the inverse of the padding)."""
    if content_size is None:
        return batch
    height, width = batch.shape[-2:]
    if not 0 < content_size <= min(height, width):
        raise ValueError(f"content_size must be between 1 and {min(height, width)}, got {content_size}")
    top, left = (height - content_size) // 2, (width - content_size) // 2
    return batch[..., top : top + content_size, left : left + content_size]


def to_pil(tensor: torch.Tensor, content_size: int | None = None) -> Image.Image | list[Image.Image]:
    """Convert model output in [-1, 1] to PIL image(s).

    Values are clamped to [-1, 1] and mapped to 0..255 with rounding, so ``to_pil(to_tensor(im))``
    gives back a uint8 image exactly. With ``content_size`` the centred ``content_size`` square is
    cropped out, undoing the padding :func:`to_tensor` adds.

    Args:
        tensor: ``[C, H, W]`` (gives one image) or ``[N, C, H, W]`` (gives a list), C = 1 or 3.
        content_size: side of the centred square to keep, or None for the whole image.

    Returns:
        A mode ``L`` (1 channel) or ``RGB`` (3 channels) image, or a list of them.
    """
    single = isinstance(tensor, torch.Tensor) and tensor.ndim == 3
    batch = _crop_center(_check_chw_batch(tensor, "to_pil"), content_size)
    pixels = ((batch + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    images = [Image.fromarray(np.ascontiguousarray(p[:, :, 0] if p.shape[2] == 1 else p)) for p in pixels]
    return images[0] if single else images


def make_grid(tensor: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile a batch ``[N, C, H, W]`` into one image ``[C, H', W']``, ``nrow`` images per row.

    Rows are filled left to right, top to bottom; there are ``min(nrow, N)`` columns and
    ``ceil(N / columns)`` rows. Every cell is surrounded by ``padding`` pixels of ``pad_value``
    (1.0 is white in model space), so ``H' = rows * (H + padding) + padding`` and likewise for
    ``W'``; empty cells in the last row are ``pad_value`` too. Image ``i`` sits at
    ``y = padding + (i // columns) * (H + padding)``, ``x = padding + (i % columns) * (W + padding)``.
    """
    if tensor.ndim != 4 or tensor.shape[0] == 0:
        raise ImageError(
            f"make_grid: tensor has shape {list(tensor.shape)}; expected [N, C, H, W] with N >= 1"
        )
    if nrow < 1:
        raise ValueError(f"nrow must be at least 1, got {nrow}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    count, chans, height, width = tensor.shape
    cols = min(nrow, count)
    rows = math.ceil(count / cols)
    grid = torch.full(
        (chans, rows * (height + padding) + padding, cols * (width + padding) + padding),
        float(pad_value),
        dtype=tensor.dtype,
        device=tensor.device,
    )
    for i in range(count):
        y = padding + (i // cols) * (height + padding)
        x = padding + (i % cols) * (width + padding)
        grid[:, y : y + height, x : x + width] = tensor[i]
    return grid


def _format_for(path: Path) -> str:
    fmt = _SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"{path}: cannot tell the image format from the suffix {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    return fmt


def _upscale(image: Image.Image, factor: int) -> Image.Image:
    if factor < 1:
        raise ValueError(f"upscale must be an integer >= 1, got {factor}")
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def _write_pil(image: Image.Image, path: Path, fmt: str, **options: Any) -> Path:
    """Save atomically; OS errors become ImageError naming the file."""
    try:
        with atomic_write(path) as tmp:
            image.save(tmp, format=fmt, **options)
    except OSError as exc:
        raise ImageError(f"{path}: could not write the image ({exc})") from exc
    return path


def _save_pil(image: Image.Image, path: StrPath) -> Path:
    target = Path(path)
    fmt = _format_for(target)
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        options["quality"] = 95
    elif fmt == "WEBP":
        options["lossless"] = True
    return _write_pil(image, target, fmt, **options)


def save_image(tensor: torch.Tensor, path: StrPath, content_size: int | None = None) -> Path:
    """Save one model image ``[C, H, W]`` (or ``[1, C, H, W]``) in [-1, 1] to ``path`` atomically.

    The format follows the suffix: ``.png``, ``.jpg``/``.jpeg`` (quality 95), ``.webp``
    (lossless) or ``.bmp``. With ``content_size`` only the centred content square is saved.

    Returns:
        The path written.

    Raises:
        ImageError: unknown suffix (the message lists the supported ones), a bad tensor shape,
            or the file could not be written.
    """
    target = Path(path)
    _format_for(target)  # fail before any work on an unknown suffix
    if isinstance(tensor, torch.Tensor) and tensor.ndim == 4 and tensor.shape[0] != 1:
        raise ImageError(
            f"save_image: tensor has shape {list(tensor.shape)}; expected one image [C, H, W] "
            "(use save_grid for a batch)"
        )
    images = to_pil(tensor, content_size)
    image = images[0] if isinstance(images, list) else images
    return _save_pil(image, target)


def save_grid(
    tensor: torch.Tensor,
    path: StrPath,
    nrow: int,
    content_size: int | None = None,
    upscale: int = 1,
    padding: int = 2,
    pad_value: float = 1.0,
) -> Path:
    """Save a batch ``[N, C, H, W]`` in [-1, 1] as one grid image at ``path``, atomically.

    Each cell is first cropped to its centred ``content_size`` square (when given), then the cells
    are tiled with :func:`make_grid` and the result is enlarged ``upscale`` times with
    nearest-neighbour sampling (so a grid of 32x32 images stays crisp and visible).
    The format follows the suffix as in :func:`save_image`.

    Returns:
        The path written.
    """
    target = Path(path)
    _format_for(target)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
        shape = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ImageError(f"save_grid: expected a batch [N, C, H, W], got {shape}")
    batch = _crop_center(_check_chw_batch(tensor, "save_grid"), content_size)
    grid = make_grid(batch, nrow=nrow, padding=padding, pad_value=pad_value)
    image = to_pil(grid)
    assert isinstance(image, Image.Image)
    return _save_pil(_upscale(image, upscale), target)


def save_gif(
    frames: torch.Tensor | Sequence[Image.Image | torch.Tensor],
    path: StrPath,
    duration_ms: int = 100,
    loop: int | None = 0,
    upscale: int = 1,
    content_size: int | None = None,
    boomerang: bool = False,
) -> Path:
    """Save frames as an animated GIF at ``path`` (which must end in ``.gif``), atomically.

    Args:
        frames: a tensor ``[N, C, H, W]`` in [-1, 1], or a list of PIL images (or ``[C, H, W]``
            tensors), all the same size.
        path: the ``.gif`` file to write.
        duration_ms: how long each frame is shown.
        loop: how many times to repeat, 0 for forever, None to play once.
        upscale: integer nearest-neighbour enlargement.
        content_size: crop every frame to its centred square of this side first.
        boomerang: play forwards then backwards (``0 1 2 3 2 1``) for a seamless loop.

    Note that GIF stores at most 256 colours per frame, and Pillow merges consecutive identical
    frames into one longer frame.

    Returns:
        The path written.
    """
    target = Path(path)
    if target.suffix.lower() != ".gif":
        raise ImageError(f"{target}: save_gif writes GIF files; give the path a .gif suffix")
    if duration_ms <= 0:
        raise ValueError(f"duration_ms must be positive, got {duration_ms}")
    images: list[Image.Image] = []
    if isinstance(frames, torch.Tensor):
        converted = to_pil(frames if frames.ndim == 4 else frames.unsqueeze(0), content_size)
        images = converted if isinstance(converted, list) else [converted]
    else:
        for frame in frames:
            if isinstance(frame, torch.Tensor):
                converted = to_pil(frame, content_size)
                images.extend(converted if isinstance(converted, list) else [converted])
            elif isinstance(frame, Image.Image):
                if content_size is not None and (frame.width, frame.height) != (content_size, content_size):
                    left, top = (frame.width - content_size) // 2, (frame.height - content_size) // 2
                    if left < 0 or top < 0:
                        raise ValueError(f"content_size {content_size} is larger than a {frame.size} frame")
                    frame = frame.crop((left, top, left + content_size, top + content_size))
                images.append(frame)
            else:
                raise ImageError(f"save_gif: cannot use a {type(frame).__name__} as a frame")
    if not images:
        raise ImageError("save_gif: no frames given")
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        raise ImageError(f"save_gif: frames have different sizes {sorted(sizes)}; they must all match")
    mode = "RGB" if any(im.mode not in ("L", "1") for im in images) else "L"
    images = [_upscale(im.convert(mode) if im.mode != mode else im, upscale) for im in images]
    if boomerang and len(images) > 2:
        images = images + images[-2:0:-1]
    options: dict[str, Any] = {"save_all": True, "append_images": images[1:], "duration": duration_ms}
    if loop is not None:
        options["loop"] = loop
    return _write_pil(images[0], target, "GIF", **options)
