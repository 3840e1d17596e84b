"""A quick reader for the commonest file of an image data set: an 8-bit PNG already in the model's shape.

Data sets exported to files (Fashion-MNIST, MNIST, thumbnails) are thousands of small PNGs that need no
conversion: 8-bit grey (or RGB for an RGB model), exactly the model's content size, not interlaced, no
transparency, no orientation tag, one frame. For such a file, opening it through Pillow's plugin machinery and
the checks of :func:`~dcvae_tools.images.convert_image` cost twice as much as decoding it, so
:func:`read_model_ready_png` walks the chunks itself (checking every CRC) and hands the image data to Pillow's
own PNG ("zip") decoder. Any other file, and any file with something unusual or wrong in it, gives ``None``
and the caller converts it the usual way, which then also reports errors in its own words. The pixels
returned give the same model tensor, bit for bit, as ``convert_image``: the same decoder, and one uint8 table.

torchvision's ``decode_png`` would be quicker still, but (0.29) it ends the whole process with a segmentation
fault on a PNG whose data or CRC is damaged, where an encoder of untrusted files must report and go on.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY, _RGB = 0, 2  # PNG colour types
_IGNORED_CHUNKS = frozenset({b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs", b"tIME", b"bKGD", b"hIST"})
"""Ancillary chunks Pillow reads into ``image.info`` without changing the pixels or the conversion."""
_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_ORIENTATION_KEYWORDS = frozenset({b"Raw profile type exif", b"XML:com.adobe.xmp"})
"""Text chunks Pillow reads an EXIF orientation from (the usual path then turns the image)."""


def _image_data(data: bytes, header: tuple[int, ...]) -> bytes | None:
    """The concatenated IDAT data of a PNG whose IHDR equals ``header``, if nothing else in it matters."""
    pos, end = len(PNG_SIGNATURE), len(data)
    idat: list[bytes] = []
    first = True
    while pos + 12 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        body, after = pos + 8, pos + 8 + length
        if after + 4 > end or zlib.crc32(data[pos + 4 : after]) != struct.unpack_from(">I", data, after)[0]:
            return None
        if first:
            if kind != b"IHDR" or length != 13 or struct.unpack_from(">IIBBBBB", data, body) != header:
                return None
            first = False
        elif kind == b"IDAT":
            idat.append(data[body:after])
        elif kind == b"IEND":
            return b"".join(idat) if idat else None
        elif kind in _TEXT_CHUNKS:
            if data[body:after].split(b"\0", 1)[0] in _ORIENTATION_KEYWORDS:
                return None
        elif kind not in _IGNORED_CHUNKS:  # tRNS, PLTE, acTL, eXIf, anything unknown
            return None
        pos = after + 4
    return None  # no IEND: truncated


def read_model_ready_png(path: Path, channels: int, content_size: int) -> np.ndarray | None:
    """The uint8 ``[content_size, content_size, channels]`` pixels of a PNG the model takes as it is, else None.

    ``None`` means "convert this file the usual way": another format, size, mode or bit depth, interlacing,
    transparency, an orientation tag, several frames, a damaged or unreadable file.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if data[:8] != PNG_SIGNATURE:
        return None
    colour, mode = (_GREY, "L") if channels == 1 else (_RGB, "RGB")
    compressed = _image_data(data, (content_size, content_size, 8, colour, 0, 0, 0))
    if compressed is None:
        return None
    try:
        image = Image.frombytes(mode, (content_size, content_size), compressed, "zip", mode)
    except (ValueError, OSError):  # damaged compressed data: the usual path says what is wrong
        return None
    return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(content_size, content_size, channels)
