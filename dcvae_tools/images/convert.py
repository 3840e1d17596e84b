"""The one conversion between images and model tensors, used at inference and in training.

Model tensors are float32 ``[C, size, size]`` (batched ``[N, C, size, size]``) with values in ``[-1, 1]``
(``-1`` is black), ``C`` being 1 (grey) or 3 (RGB). An image is brought to the model's channels (alpha
composited on black, grey by Pillow's ITU-R 601-2 luma, 16-bit scaled), center-cropped to a square,
resized to the model's ``content_size`` (LANCZOS when shrinking, bicubic when enlarging) and padded,
centred, with ``-1`` to ``size``. :func:`convert_image` does this for one image; :func:`to_tensor` for
any mix of inputs; :func:`to_pil` goes back (cropping the padding out again).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from dcvae_tools.errors import ImageError, outside_package_stacklevel

from .files import LOAD_CHANGES_KEY, load_image

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, the weights Pillow uses for RGB -> L
_RANGE_TOLERANCE = 1e-3

ImageInput = Image.Image | str | os.PathLike[str] | np.ndarray | torch.Tensor


class ImageRangeWarning(UserWarning):
    """A float tensor whose values all lie in [0, 1]: probably [0, 1] image data (torchvision's ``ToTensor``)
    given where the model reads [-1, 1], which makes every image much brighter than meant."""


def _zero_one_warning(labels: list[str]) -> None:
    """One :class:`ImageRangeWarning` for the float tensors (``labels``) of one call whose values all lie in [0, 1]."""
    listed = ", ".join(labels[:3]) + (", ..." if len(labels) > 3 else "")
    which = labels[0] if len(labels) == 1 else f"{len(labels)} tensors ({listed})"
    warnings.warn(
        f"{which}: every value is in [0, 1], but float tensors are read as [-1, 1] (0 is mid-grey), so these "
        "images will look far too bright to the model; if they are [0, 1] data (torchvision's ToTensor), pass "
        "x * 2 - 1 (numpy arrays and PIL images are read as they are)",
        ImageRangeWarning,
        stacklevel=outside_package_stacklevel(),
    )



_U8_TO_MODEL = np.arange(256, dtype=np.float32) / np.float32(255.0) * np.float32(2.0) - np.float32(1.0)
"""uint8 value -> model value, ``v / 255 * 2 - 1`` in float32 (one table lookup per pixel)."""

_GREY_MODES = frozenset({"1", "L", "LA", "La"})


def _pil_to_model_mode(image: Image.Image, channels: int) -> tuple[Image.Image | np.ndarray, list[str]]:
    """Bring a PIL image to mode L/RGB (uint8) or, for 16-bit/float modes, to a float HxWxC array."""
    source = image.mode
    changes: list[str] = []
    if source == "F" or source.startswith("I"):
        # 16-bit PNGs open as I;16 / I, and Pillow's own I -> L conversion clips instead of scaling.
        raw = np.asarray(image, dtype=np.float64)
        scale = 65535.0
        if source == "F":  # float TIFFs hold 0-255 or 0-1 data: values all within [0, 1] (give or take float
            # rounding, 1e-3) are read as the latter, anything beyond as 0-255
            unit = raw.size > 0 and float(raw.min()) >= -1e-3 and float(raw.max()) <= 1.0 + 1e-3
            scale = 1.0 if unit else 255.0
            changes.append("read float values in [0, 1] as [0, 1]" if unit else "read float values as 0-255")
        data = np.clip(raw / scale, 0.0, 1.0).astype(np.float32)
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
        channels_first = array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[2] > 4
        hint = "; it looks channels-first: pass array.transpose(1, 2, 0)" if channels_first else ""
        raise ImageError(
            f"{label}: numpy image has shape {tuple(array.shape)}; expected HxW (grey) or HxWxC with "
            f"C in 1, 2, 3, 4 (grey, grey+alpha, RGB, RGBA){hint}"
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
            if high <= 255 and low >= 0:
                hint = " (divide by 255 if it holds 0..255 values)"
            elif low >= -1 - _RANGE_TOLERANCE and high <= 1 + _RANGE_TOLERANCE:
                hint = " (it looks like the model's [-1, 1]: pass (x + 1) / 2, or a torch tensor, read as [-1, 1])"
            else:
                hint = ""
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


def _pad_nhwc(nhwc: np.ndarray, size: int) -> torch.Tensor:
    """A float32 ``NxHxWxC`` array of side ``s`` -> an ``[N, C, size, size]`` tensor, centred, padded with -1."""
    count, side, _, channels = nhwc.shape
    out = np.full((count, channels, size, size), -1.0, dtype=np.float32)
    off = (size - side) // 2
    out[:, :, off : off + side, off : off + side] = nhwc.transpose(0, 3, 1, 2)
    return torch.from_numpy(out)


def _pad_hwc(hwc: np.ndarray, size: int) -> torch.Tensor:
    """A float32 ``HxW[xC]`` array of side ``s`` -> a ``[C, size, size]`` tensor, centred, padded with -1."""
    if hwc.ndim == 2:
        hwc = hwc[:, :, None]
    return _pad_nhwc(hwc[None], size)[0]


def model_batch_from_uint8(pixels: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[N, s, s, C]`` pixels already at the model's content side -> the model batch ``[N, C, size, size]``.

    The values are those :func:`convert_image` gives each image (same table, same padding), for a whole
    batch at once: readers of data-set files that need no conversion hand their pixels over this way.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1] != pixels.shape[2]:
        raise ValueError(f"expected uint8 pixels [N, s, s, C], got {pixels.dtype} {tuple(pixels.shape)}")
    return _pad_nhwc(_U8_TO_MODEL[pixels], size)


def _convert_one(
    item: Image.Image | np.ndarray, label: str, size: int, channels: int, content: int
) -> tuple[torch.Tensor, str | None]:
    """Convert one PIL image or float HxWxC array in [0,1] to a padded [C,size,size] tensor."""
    if isinstance(item, Image.Image):
        width, height = item.size
        source = f"{width}x{height} {item.mode}"
        try:
            converted, changes = _pil_to_model_mode(item, channels)
        except ValueError as exc:  # a mode Pillow cannot convert (LAB, La, ...): this image's fault, not a crash
            raise ImageError(
                f"{label}: cannot convert an image of mode {item.mode} ({exc}); save it as an RGB or grey image"
            ) from None
    else:
        height, width = item.shape[:2]
        names = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}
        source = f"{width}x{height} float {names[item.shape[2]]}"
        converted, changes = _float_to_channels(item, channels)
    geometry = _geometry_note(width, height, content)
    if geometry:
        changes.insert(0, geometry)
    if isinstance(item, Image.Image):  # what load_image did first: the first frame, the EXIF rotation
        changes[:0] = [str(change) for change in item.info.get(LOAD_CHANGES_KEY, ())]
    # In numpy, one array per image: per-op torch overhead used to cost more than decoding a small PNG.
    note = f"{label}: {source} -> {', '.join(changes)}" if changes else None
    if isinstance(converted, Image.Image):
        fitted = _fit_pil(converted, content)
        pixels = np.frombuffer(fitted.tobytes(), dtype=np.uint8).reshape(content, content, -1)
        return _pad_hwc(_U8_TO_MODEL[pixels], size), note
    # Each step is one IEEE float32 operation, as in the uint8 table, so equal inputs give equal bits.
    hwc = _fit_float(converted, content).astype(np.float32, copy=True)
    hwc *= np.float32(2.0)
    hwc -= np.float32(1.0)
    return _pad_hwc(hwc, size), note


def _tensor_batch(
    tensor: torch.Tensor, label: str
) -> tuple[torch.Tensor, list[str], tuple[float, float] | None]:
    """Validate a [C,H,W] / [N,C,H,W] tensor: a float [N,C,H,W] batch in [-1,1] on the CPU, a label per image, and
    for a non-empty float tensor the (low, high) of its values as clamped (None for uint8 or empty)."""
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
    value_range = None
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
            value_range = (max(low, -1.0), min(high, 1.0))
        batch = batch.clamp(-1.0, 1.0)
    else:
        raise ImageError(
            f"{label}: tensor has dtype {batch.dtype}; use a float tensor in [-1, 1] (or uint8 0..255)"
        )
    return batch, labels, value_range


def _check_geometry(size: int, channels: int, content_size: int | None) -> int:
    """Validate the model geometry; return the content side."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    content = size if content_size is None else content_size
    if not 0 < content <= size:
        raise ValueError(f"content_size must be between 1 and size={size}, got {content_size}")
    return content


def _prepare(item: Any, label: str) -> tuple[Image.Image | np.ndarray, str]:
    """A file, PIL image or numpy array -> (a PIL image or float HxWxC array in [0, 1], its label)."""
    if isinstance(item, str | os.PathLike):
        return load_image(item), str(item)
    if isinstance(item, Image.Image):
        filename = getattr(item, "filename", "")
        return item, str(filename) if filename else label
    if isinstance(item, np.ndarray):
        return _array_to_float_hwc(item, label), label
    raise ImageError(
        f"{label}: cannot use a {type(item).__name__} as an image; pass a PIL image, a file "
        "path, a numpy array or a torch tensor"
    )


def convert_image(
    image: Image.Image | str | os.PathLike[str] | np.ndarray,
    *,
    size: int,
    channels: int,
    content_size: int | None = None,
    label: str = "input",
) -> tuple[torch.Tensor, str | None]:
    """Convert one image to a model tensor ``[channels, size, size]`` in [-1, 1].

    This is the conversion every model input goes through, at inference (:func:`to_tensor`, the ``dcvae``
    commands) and in training (the datasets of ``training.data``), so a model sees the same pixels in
    both. The rules are in the module docstring; a uint8 value ``v`` becomes ``v / 255 * 2 - 1``.

    Args:
        image: a PIL image (any mode), an image file's path, or a numpy array ``HxW`` / ``HxWxC``
            (C = 1..4), uint8 in 0..255 or float in [0, 1].
        size: the model's image side.
        channels: 1 (grey) or 3 (RGB).
        content_size: the side the content is drawn at inside the ``size`` frame (default ``size``).
        label: names the image in notes and errors when it is not a file.

    Returns:
        The tensor, and a note saying what was changed (None when the image already had the format).

    Raises:
        ImageError: an unreadable file, an unsupported type or a bad array (the message names it).
        ValueError: ``size``, ``channels`` or ``content_size`` are invalid.
    """
    content = _check_geometry(size, channels, content_size)
    prepared, label = _prepare(image, label)
    return _convert_one(prepared, label, size, channels, content)


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
    * a ``str`` / ``Path`` to an image file (read with :func:`load_image`: an animated GIF or WebP gives its
      first frame, and a file with an EXIF orientation is turned the way viewers show it; both are noted);
    * a numpy array ``HxW`` or ``HxWxC`` (C = 1, 2, 3, 4), uint8 in 0..255 or float in [0, 1]
      (uint16 and bool are accepted too);
    * a torch tensor ``[C, H, W]`` or ``[N, C, H, W]`` (C = 1 or 3), float, assumed to be already
      in [-1, 1] (uint8 tensors are read as 0..255); a float tensor with every value in [0, 1] warns
      (:class:`ImageRangeWarning`, once per call), since [0, 1] data (torchvision's ``ToTensor``) must be given
      as ``x * 2 - 1`` (a tensor in the model's exact format is not judged when the model has no padding, as
      the package passes its own converted images that way). A tensor of exactly the model's format
      (``channels`` x ``size`` x ``size``) is taken to be a model image (what ``decode`` returns): it is not
      resized, only its frame outside the content is set to -1. Files and arrays of that size are images
      like any other and are resized to the content.

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
    content = _check_geometry(size, channels, content_size)
    items: Sequence[Any] = list(images) if isinstance(images, list | tuple) else [images]
    if len(items) == 1 and isinstance(items[0], np.ndarray) and items[0].ndim == 4:
        items = list(items[0])  # a numpy batch N x H x W x C
    if not items:
        raise ImageError("no images given; pass at least one image, file or array")

    tensors: list[torch.Tensor] = []
    notes: list[str] = []
    zero_one: list[str] = []  # float tensors that look like [0, 1] data
    for index, item in enumerate(items):
        label = f"input {index}" if len(items) > 1 else "input"
        if isinstance(item, torch.Tensor):
            batch, labels, value_range = _tensor_batch(item, label)
            model_format = batch.shape[1] == channels and batch.shape[2] == batch.shape[3] == size
            # Every batch the package converts itself is model format and, when the model pads, has a frame of -1,
            # so it never looks like [0, 1] data. Unpadded model-format batches are not judged: a light image
            # converted from a file is all above mid-grey too.
            if value_range is not None and not (model_format and content == size):
                low, high = value_range
                if low >= 0.0 and 0.0 < high <= 1.0:  # a [-1, 1] image with no pixel below mid-grey is rare
                    zero_one.append(label)
            if model_format:
                # Already model format: one vectorised copy (the per-image path below cost more than the
                # encoder on a batch); the frame outside the content is reset to -1, as the crop and pad do.
                framed = torch.full_like(batch, -1.0)
                off = (size - content) // 2
                inner = (..., slice(off, off + content), slice(off, off + content))
                framed[inner] = batch[inner]
                if len(items) == 1:
                    if zero_one:
                        _zero_one_warning(zero_one)
                    return framed, notes
                tensors.extend(framed.unbind(0))
                continue
            for chw, sub_label in zip(batch, labels, strict=True):
                if chw.shape[0] == channels and chw.shape[1] == chw.shape[2] == content:
                    tensors.append(_pad_hwc(chw.permute(1, 2, 0).numpy(), size))
                    continue
                data = ((chw.permute(1, 2, 0).numpy() + 1.0) / 2.0).astype(np.float32)
                tensor, note = _convert_one(data, sub_label, size, channels, content)
                tensors.append(tensor)
                if note:
                    notes.append(note)
            continue
        prepared, label = _prepare(item, label)
        tensor, note = _convert_one(prepared, label, size, channels, content)
        tensors.append(tensor)
        if note:
            notes.append(note)
    if zero_one:
        _zero_one_warning(zero_one)
    return torch.stack(tensors), notes


# --------------------------------------------------------------------------- back to pictures



def _check_chw_batch(tensor: torch.Tensor, what: str) -> torch.Tensor:
    """Return a float32 CPU [N,C,H,W] tensor clamped to [-1,1] (uint8 read as 0..255); reject bad shapes and NaN."""
    if not isinstance(tensor, torch.Tensor):
        raise ImageError(f"{what}: expected a torch tensor, got {type(tensor).__name__}")
    batch = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ImageError(
            f"{what}: tensor has shape {list(tensor.shape)}; expected [C, H, W] or [N, C, H, W] with "
            "C = 1 (grey) or 3 (RGB)"
        )
    pixels = batch.dtype == torch.uint8  # 0..255, as to_tensor reads them
    if not pixels and not batch.is_floating_point():
        raise ImageError(f"{what}: tensor has dtype {batch.dtype}; expected float in [-1, 1] (model output) or "
                         "uint8 pixels 0..255")
    batch = batch.detach().to("cpu", torch.float32)
    if pixels:
        batch = batch / 127.5 - 1.0
    if torch.isnan(batch).any():
        raise ImageError(f"{what}: tensor contains NaN values; the model output is broken")
    return batch.clamp(-1.0, 1.0)


def crop_center(batch: torch.Tensor, content_size: int | None) -> torch.Tensor:
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
    gives back a uint8 image exactly; a uint8 tensor is taken as pixels 0..255. With ``content_size`` the
    centred ``content_size`` square is cropped out, undoing the padding :func:`to_tensor` adds.

    Args:
        tensor: ``[C, H, W]`` (gives one image) or ``[N, C, H, W]`` (gives a list), C = 1 or 3.
        content_size: side of the centred square to keep, or None for the whole image.

    Returns:
        A mode ``L`` (1 channel) or ``RGB`` (3 channels) image, or a list of them.
    """
    single = isinstance(tensor, torch.Tensor) and tensor.ndim == 3
    batch = crop_center(_check_chw_batch(tensor, "to_pil"), content_size)
    pixels = ((batch + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    images = [Image.fromarray(np.ascontiguousarray(p[:, :, 0] if p.shape[2] == 1 else p)) for p in pixels]
    return images[0] if single else images
