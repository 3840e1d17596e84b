"""A quick reader for the commonest file of an image data set: an 8-bit PNG already in the model's shape.

Data sets exported to files (Fashion-MNIST, MNIST, thumbnails) are thousands of small PNGs that need no
conversion: 8-bit grey (or RGB for an RGB model), exactly the model's content size, not interlaced, no
transparency, no orientation tag, one frame. For such a file, opening it through Pillow's plugin machinery and
the checks of :func:`~dcvae_tools.images.convert_image` cost twice as much as decoding it, so
:func:`read_model_ready_data` walks the chunks itself (checking every CRC) and :func:`decode_model_ready` hands
the image data to Pillow's own PNG ("zip") decoder, a whole batch into one image, so that per-image Pillow
objects cost nothing. The rule is to accept only what the usual path would take unchanged and without a
note: any other file, and anything unusual in one (a chunk this module does not know, compressed text, an
embedded colour profile, a malformed chunk, image data interrupted by another chunk, data the decoder refuses),
is declined, and the caller converts the file the usual way, which also reports errors in its own words. The
pixels returned give the same model tensor, bit for bit, as ``convert_image``: the same decoder, and one uint8
table.

torchvision's ``decode_png`` would be quicker still, but (0.29) it ends the whole process with a segmentation
fault on a PNG whose data or CRC is damaged, where an encoder of untrusted files must report and go on.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from collections.abc import Sequence
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


def _mode(channels: int) -> tuple[str, int]:
    """Pillow's mode and the PNG colour type of a model-ready file for a model with ``channels``."""
    return ("L", _GREY) if channels == 1 else ("RGB", _RGB)


def read_model_ready_data(path: Path, channels: int, content_size: int) -> bytes | None:
    """The compressed image data of a PNG the model takes as it is, else None; decode it with
    :func:`decode_model_ready`.

    ``None`` means "convert this file the usual way": another format, size, mode or bit depth, interlacing,
    transparency, an orientation tag, several frames, anything unusual, a damaged or unreadable file. Never
    raises.
    """
    header = (content_size, content_size, 8, _mode(channels)[1], 0, 0, 0)  # width, height, depth, colour, no interlace
    try:
        data = _read_png(path, header, channels)
        return None if data is None else _image_data(data, header)
    except Exception:  # unreadable, out of memory: the usual path says what is wrong
        return None


_pillow_decoder = getattr(Image, "_getdecoder", None)
"""What ``Image.frombytes`` decodes with; called directly it decodes into part of an image. Should a Pillow
release drop it, :func:`decode_model_ready` decodes one image at a time through ``Image.frombytes``."""


def decode_model_ready(
    data: Sequence[bytes], channels: int, content_size: int
) -> tuple[np.ndarray, list[bool]]:
    """Decode the image data of model-ready PNGs (:func:`read_model_ready_data`) together.

    Returns the uint8 ``[N, content_size, content_size, channels]`` pixels and, per image, whether it decoded;
    an image that did not (damaged compressed data) has undefined pixels and goes the usual way. Never raises
    for bad data.
    """
    if _pillow_decoder is None:
        return _decode_each(data, channels, content_size)
    mode, side, count = _mode(channels)[0], content_size, len(data)
    canvas = Image.new(mode, (side, side * max(count, 1)))  # the images one above the other
    decoded = [_decode_region(canvas, (0, side * k, side, side * (k + 1)), stream, mode)
               for k, stream in enumerate(data)]
    pixels = np.asarray(canvas).reshape(max(count, 1), side, side, channels)[:count]
    return pixels, decoded


def _decode_region(canvas: Image.Image, box: tuple[int, int, int, int], stream: bytes, mode: str) -> bool:
    """Decode one zlib image stream into ``box`` of ``canvas``, as ``Image.frombytes`` would; True when whole."""
    assert _pillow_decoder is not None
    try:
        decoder = _pillow_decoder(mode, "zip", (mode,))
        decoder.setimage(canvas.im, box)
        consumed, error = decoder.decode(stream)
    except Exception:
        return False
    return consumed < 0 and error == 0  # frombytes's test: the image is complete, and nothing went wrong


def _decode_each(data: Sequence[bytes], channels: int, content_size: int) -> tuple[np.ndarray, list[bool]]:
    """:func:`decode_model_ready` one image at a time through ``Image.frombytes`` (the same decoder)."""
    mode, side = _mode(channels)[0], content_size
    pixels = np.zeros((len(data), side, side, channels), dtype=np.uint8)
    decoded = []
    for k, stream in enumerate(data):
        try:
            image = Image.frombytes(mode, (side, side), stream, "zip", mode)
            pixels[k] = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(side, side, channels)
        except Exception:
            decoded.append(False)
        else:
            decoded.append(True)
    return pixels, decoded


def read_model_ready_png(path: Path, channels: int, content_size: int) -> np.ndarray | None:
    """The uint8 ``[content_size, content_size, channels]`` pixels of a PNG the model takes as it is, else None.

    One file's :func:`read_model_ready_data` and :func:`decode_model_ready`; ``None`` means "convert this file
    the usual way" (see there). Never raises.
    """
    data = read_model_ready_data(path, channels, content_size)
    if data is None:
        return None
    pixels, decoded = decode_model_ready([data], channels, content_size)
    return pixels[0].copy() if decoded[0] else None
