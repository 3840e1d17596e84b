"""A quick reader for the commonest file of an image data set: an 8-bit PNG already in the model's shape.

Data sets exported to files (Fashion-MNIST, MNIST, thumbnails) are thousands of small PNGs that need no
conversion: 8-bit grey (or RGB for an RGB model), exactly the model's content size, not interlaced, no
transparency, no orientation tag, one frame. For such a file, opening it through Pillow's plugin machinery and
the checks of :func:`~dcvae_tools.images.convert_image` cost twice as much as decoding it, so
:func:`read_model_ready_png` walks the chunks itself (checking every CRC) and hands the image data to Pillow's
own PNG ("zip") decoder. The rule is to accept only what the usual path would take unchanged and without a
note: any other file, and anything unusual in one (a chunk this module does not know, compressed text, an
embedded colour profile, a malformed chunk, image data interrupted by another chunk), gives ``None``, and the
caller converts the file the usual way, which also reports errors in its own words. The pixels returned give
the same model tensor, bit for bit, as ``convert_image``: the same decoder, and one uint8 table.

torchvision's ``decode_png`` would be quicker still, but (0.29) it ends the whole process with a segmentation
fault on a PNG whose data or CRC is damaged, where an encoder of untrusted files must report and go on.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .files import LOAD_CHANGES_KEY, ORIENTATION_SOURCES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEADER_BYTES = 33  # signature, then the IHDR chunk: length, type, 13 bytes of data, CRC
_GREY, _RGB = 0, 2  # PNG colour types
_MIN_LENGTHS = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9}
"""Ancillary chunks Pillow reads without changing the pixels, and the length below which it refuses the file."""
_SKIPPED_CHUNKS = frozenset({b"sBIT", b"bKGD", b"hIST", b"tIME"})
"""Ancillary chunks Pillow does not read at all."""
_TEXT_LIMIT = 1 << 20
"""More text than this (Pillow refuses single chunks over 1 MiB, 64 MiB in all) goes the usual way."""
_MEANINGFUL_KEYWORDS = frozenset(
    key.encode("latin-1") for key in (*ORIENTATION_SOURCES, "transparency", LOAD_CHANGES_KEY)
)
"""Text keywords that land in ``image.info`` under a key the usual path acts on (an orientation, transparency,
the notes of :func:`~dcvae_tools.images.load_image`): such files go the usual way."""


def _image_data(data: bytes, header: tuple[int, ...]) -> bytes | None:
    """The IDAT data of a PNG whose IHDR equals ``header``, if nothing else in the file matters."""
    pos, end = len(PNG_SIGNATURE), len(data)
    idat: list[bytes] = []
    idat_ended = False
    text = 0
    first = True
    while pos + 12 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        body, after = pos + 8, pos + 8 + length
        if after + 4 > end or zlib.crc32(data[pos + 4 : after]) != struct.unpack_from(">I", data, after)[0]:
            return None
        if idat and kind != b"IDAT":
            idat_ended = True
        if first:
            if kind != b"IHDR" or length != 13 or struct.unpack_from(">IIBBBBB", data, body) != header:
                return None
            first = False
        elif kind == b"IDAT":
            if idat_ended:  # image data interrupted by another chunk: Pillow stops at the interruption
                return None
            idat.append(data[body:after])
        elif kind == b"IEND":
            return b"".join(idat) if idat else None
        elif kind == b"tEXt":
            text += length
            if text > _TEXT_LIMIT or data[body:after].split(b"\0", 1)[0] in _MEANINGFUL_KEYWORDS:
                return None
        elif kind in _MIN_LENGTHS:
            if length < _MIN_LENGTHS[kind]:
                return None
        elif kind not in _SKIPPED_CHUNKS:  # tRNS, PLTE, iCCP, zTXt, iTXt, acTL, eXIf, anything unknown
            return None
        pos = after + 4
    return None  # no IEND: truncated


def _read_png(path: Path, header: tuple[int, ...], channels: int) -> bytes | None:
    """The file's bytes when its IHDR equals ``header`` and it is not larger than such a PNG can be."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
        if len(head) < _HEADER_BYTES or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
            return None
        if struct.unpack_from(">IIBBBBB", head, 16) != header:
            return None
        info = os.fstat(handle.fileno())
        raw = header[1] * (header[0] * channels + 1)  # the filtered rows, before compression
        if not stat.S_ISREG(info.st_mode) or info.st_size > 2 * raw + _TEXT_LIMIT + 4096:
            return None
        return head + handle.read()


def read_model_ready_png(path: Path, channels: int, content_size: int) -> np.ndarray | None:
    """The uint8 ``[content_size, content_size, channels]`` pixels of a PNG the model takes as it is, else None.

    ``None`` means "convert this file the usual way": another format, size, mode or bit depth, interlacing,
    transparency, an orientation tag, several frames, anything unusual, a damaged or unreadable file. Never
    raises.
    """
    mode, colour = ("L", _GREY) if channels == 1 else ("RGB", _RGB)
    header = (content_size, content_size, 8, colour, 0, 0, 0)  # width, height, depth, colour, not interlaced
    try:
        data = _read_png(path, header, channels)
        if data is None:
            return None
        compressed = _image_data(data, header)
        if compressed is None:
            return None
        image = Image.frombytes(mode, (content_size, content_size), compressed, "zip", mode)
        return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(content_size, content_size, channels)
    except Exception:  # unreadable, damaged compressed data, out of memory: the usual path says what is wrong
        return None
