"""Model tensors out: single images, grids and animated GIFs, each written atomically.

Every write goes through :func:`dcvae_tools.io_utils.atomic_write`, so a failure never leaves a
partial file; write errors are raised as :class:`dcvae_tools.errors.ImageError` naming the file.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from dcvae_tools.errors import ImageError
from dcvae_tools.io_utils import atomic_write

from .convert import _check_chw_batch, crop_center, to_pil
from .files import IMAGE_SUFFIXES, StrPath
from .labels import add_column_labels, add_row_labels

_SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
}


def square_nrow(count: int) -> int:
    """Images per row of a square-ish grid of ``count``: ``ceil(sqrt(count))``, at least 1."""
    return max(1, math.ceil(math.sqrt(count)))


def make_grid(tensor: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile a batch ``[N, C, H, W]`` into one image ``[C, H', W']``, ``nrow`` images per row (default: a square-ish
    grid, ``ceil(sqrt(N))``).

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
    if nrow is None:
        nrow = square_nrow(tensor.shape[0])
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


MAX_GIF_FRAME_MS = 655_350
"""The longest a GIF frame can be shown: its delay is a 16-bit count of hundredths of a second."""

MAX_FRAME_DURATION_MS = 60_000
"""The longest per-frame duration :func:`save_gif` takes (one minute; well inside :data:`MAX_GIF_FRAME_MS`)."""

MAX_SIDE = {"JPEG": 65500, "WEBP": 16383, "GIF": 65535}
"""The longest side these formats' encoders can write (Pillow's libjpeg, libwebp, GIF's 16-bit header)."""


def _write_pil(image: Image.Image, path: Path, fmt: str, **options: Any) -> Path:
    """Save atomically; a size the format cannot hold and OS errors become ImageError naming the file."""
    limit = MAX_SIDE.get(fmt)
    if limit is not None and max(image.size) > limit:
        raise ImageError(
            f"{path}: the image is {image.width}x{image.height} pixels, but {fmt} holds at most {limit} pixels a "
            "side; write a .png, or make it smaller (fewer steps, images or --upscale)"
        )
    try:
        with atomic_write(path) as tmp:
            image.save(tmp, format=fmt, **options)
    except (OSError, ValueError) as exc:  # Pillow reports some encoder limits as ValueError
        raise ImageError(f"{path}: could not write the image ({getattr(exc, 'strerror', None) or exc})") from exc
    except struct.error as exc:  # a GIF frame delay past its 16-bit field, after Pillow merged identical frames
        raise ImageError(
            f"{path}: a GIF frame can be shown for at most {MAX_GIF_FRAME_MS / 1000:g} s, and Pillow merges "
            f"identical neighbouring frames into one; give a shorter duration ({exc})"
        ) from exc
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
    nrow: int | None = None,
    content_size: int | None = None,
    upscale: int = 1,
    padding: int = 2,
    pad_value: float = 1.0,
    column_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
) -> Path:
    """Save a batch ``[N, C, H, W]`` in [-1, 1] (or a list of ``[C, H, W]`` images) as one grid image at ``path``,
    atomically, ``nrow`` images per row (default: a square-ish grid, ``ceil(sqrt(N))``).

    Each cell is first cropped to its centred ``content_size`` square (when given), then the cells
    are tiled with :func:`make_grid` and the result is enlarged ``upscale`` times with
    nearest-neighbour sampling (so a grid of 32x32 images stays crisp and visible).
    With ``column_labels`` (one per column, and there are ``min(nrow, N)`` columns), a white strip
    on top names each column, e.g. the strengths of an edit sweep; the grid below it is unchanged.
    With ``row_labels`` (one per row: ``ceil(N / nrow)``), a white strip on the left names each row, e.g.
    inputs and their reconstructions. The format follows the suffix as in :func:`save_image`.

    Returns:
        The path written.

    Raises:
        ValueError: ``column_labels`` or ``row_labels`` is a string, or does not hold one label per column
        (row).
    """
    target = Path(path)
    _format_for(target)
    for given, kind in ((column_labels, "column"), (row_labels, "row")):
        if isinstance(given, str):
            raise ValueError(f"save_grid: {kind}_labels takes a list of labels, one per {kind}, not one string")
    if isinstance(tensor, list | tuple) and tensor and all(isinstance(t, torch.Tensor) for t in tensor):
        tensor = torch.stack([t.detach().cpu() for t in tensor])  # a list of [C, H, W], as save_gif takes
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
        shape = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ImageError(f"save_grid: expected a batch [N, C, H, W], got {shape}")
    batch = crop_center(_check_chw_batch(tensor, "save_grid"), content_size)
    nrow = square_nrow(batch.shape[0]) if nrow is None else nrow
    grid = make_grid(batch, nrow=nrow, padding=padding, pad_value=pad_value)
    columns = min(nrow, batch.shape[0])
    if column_labels is not None and len(column_labels) != columns:
        raise ValueError(f"save_grid: {len(column_labels)} column labels for a grid of {columns} columns")
    rows = -(-batch.shape[0] // nrow)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"save_grid: {len(row_labels)} row labels for a grid of {rows} rows")
    image = to_pil(grid)
    assert isinstance(image, Image.Image)
    image = _upscale(image, upscale)
    if column_labels is not None:
        width = batch.shape[-1]
        image = add_column_labels(
            image,
            column_labels,
            cell_width=width * upscale,
            pitch=(width + padding) * upscale,
            first_x=padding * upscale,
        )
    if row_labels is not None:
        height = batch.shape[-2]
        strip = image.height - grid.shape[-2] * upscale  # the column labels' strip above the grid, if any
        image = add_row_labels(
            image,
            row_labels,
            cell_height=height * upscale,
            pitch=(height + padding) * upscale,
            first_y=strip + padding * upscale,
        )
    return _save_pil(image, target)


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
        duration_ms: how long each frame is shown, in milliseconds (at most a minute).
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
    if not 0 < duration_ms <= MAX_FRAME_DURATION_MS:
        raise ValueError(f"duration_ms must be from 1 to {MAX_FRAME_DURATION_MS} (one minute), got {duration_ms}")
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
