"""Image files in: finding them in folders, and opening them safely.

Every problem with an input file is raised as :class:`dcvae_tools.errors.ImageError` with a message
that names the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from dcvae_tools.errors import ImageError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""File suffixes (lowercase) treated as images when a folder is expanded, and accepted for saving."""

MAX_IMAGE_PIXELS: int = 64_000_000
"""Images with more pixels than this are refused by :func:`load_image` (decompression-bomb guard)."""

SUPPORTED_NAMES = "PNG, JPEG, WebP, BMP"

StrPath = str | os.PathLike[str]



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
                    f"{p}: not an image file Pillow can read (supported: {SUPPORTED_NAMES})"
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
