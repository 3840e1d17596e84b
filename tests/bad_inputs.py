"""The bad-input corpus for the ``dcvae`` command line: hundreds of generated broken (and a few valid but
unusual) inputs, each with the command a user would run on it.

Nothing here is a committed binary: every file is written at test time, by the ``build`` function of its
:class:`Case`, into a temporary folder. ``tests/test_bad_inputs.py`` runs every case. A case of a bad
input passes when the command exits with status 1 or 2, prints one ``error:`` line naming the offending
file, shows no traceback and leaves no file behind (no output, no temporary file); a valid-but-unusual
input passes when the command exits 0, writes its outputs (and nothing outside the output folder) and,
where the input had to be converted, prints the note that says so.

Categories (see :func:`corpus`):

* ``image``: truncated, corrupt, empty, mislabelled and oversized image files, each given to ``encode``,
  ``reconstruct``, ``edit`` and ``attribute``;
* ``valid-image``: 16-bit, CMYK, palette with transparency, animated GIF/WebP, EXIF-rotated JPEG and other
  unusual but valid images, through the same four commands;
* ``latents``: latents files for ``decode`` and ``interpolate`` with NaN/inf values, wrong dtypes and shapes,
  missing tensors, hostile or truncated safetensors headers and files that are not safetensors at all;
* ``attributes``: attribute files for ``edit -a FILE`` and ``attribute --append`` with the same defects;
* ``model``: checkpoint folders for ``-m ./folder`` with malformed, mistyped, absurd or hostile config.json
  values and missing, truncated or mismatched weights.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

__all__ = ["Case", "Invocation", "corpus", "image_bytes"]

GOOD_NAME = "good.png"
"""A valid image written next to the bad one in every image case (the bad one must be the one named)."""

SHIPPED_ATTRIBUTE = "long_sleeves"
"""An attribute the default model ships, for ``edit`` cases."""


@dataclass(frozen=True)
class Invocation:
    """What one case runs and what it must (not) leave behind.

    Attributes:
        args: the ``dcvae`` arguments (paths are absolute).
        names: fragments the error line must contain (the offending file's name); unused for valid cases.
        outputs: the files or folders a successful run writes; a failed run must write none of them.
        note: for valid cases, a fragment that must appear in the command's notes (the documented
            conversion), or None.
    """

    args: list[str]
    names: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Case:
    """One corpus entry.

    Attributes:
        id: a short unique name, ``category-what-command``.
        category: ``image``, ``valid-image``, ``latents``, ``attributes`` or ``model``.
        build: writes the case's inputs under ``root/in`` (``root/out`` is where outputs go) and
            returns the invocation.
        valid: the input is valid (exit 0 expected) rather than bad (exit 1 or 2 expected).
        subprocess: also run through a real ``python -m dcvae_tools.cli`` process.
        xfail: why the case is expected to fail (strict), or None.
    """

    id: str
    category: str
    build: Callable[[Path], Invocation]
    valid: bool = False
    subprocess: bool = False
    xfail: str | None = None


# ---------------------------------------------------------------------------- image bytes


@functools.cache
def _base_array() -> np.ndarray:
    """A 40x36 RGB test picture (gradients and noise, so that compressed formats have real data)."""
    rng = np.random.default_rng(0)
    array = np.zeros((36, 40, 3), np.uint8)
    array[..., 0] = np.arange(40, dtype=np.uint8)[None, :] * 6
    array[..., 1] = np.arange(36, dtype=np.uint8)[:, None] * 7
    array[..., 2] = rng.integers(0, 256, (36, 40), dtype=np.uint8)
    return array


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@functools.cache
def image_bytes(fmt: str) -> bytes:
    """The base picture encoded as ``fmt`` (PNG, JPEG, WEBP, GIF or BMP)."""
    return _encode(Image.fromarray(_base_array()), fmt)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, rows: bytes | None = None, *, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG from raw parts; ``rows`` is the filtered scanline data (default: a few zero bytes only)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    data = zlib.compress(rows if rows is not None else bytes(64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


@functools.cache
def _huge_png() -> bytes:
    """A complete, valid 9000x8000 grey PNG (72 million pixels, over the 64 million limit) of ~70 kB."""
    width, height = 9000, 8000
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then black pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _gif_bomb() -> bytes:
    """A GIF whose screen and frame claim 65535x65535 pixels, with a few bytes of image data."""
    header = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHH", 0, 0, 65535, 65535) + b"\x00" + b"\x02\x02\x4c\x01\x00"
    return header + frame + b";"


def _bmp_bomb() -> bytes:
    """A 24-bit BMP whose header claims 50000x50000 pixels, with 16 bytes of pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, 50000, 50000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    body = info + bytes(16)
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, 54) + body


def _jpeg_bomb() -> bytes:
    """The base JPEG with its frame header patched to claim 65500x65500 pixels."""
    data = bytearray(image_bytes("JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65500, 65500)
    return bytes(data)


def _webp_bomb() -> bytes:
    """The base lossy WebP with its VP8 frame header patched to claim 16383x16383 pixels."""
    data = bytearray(image_bytes("WEBP"))
    frame = data.find(b"\x9d\x01\x2a")
    data[frame + 3 : frame + 7] = struct.pack("<HH", 16383, 16383)
    return bytes(data)


def _patched(fmt: str, offset: int | float, fill: bytes) -> bytes:
    """The base picture as ``fmt`` with ``fill`` written at byte ``offset`` (a float: that share of the file)."""
    data = bytearray(image_bytes(fmt))
    start = int(len(data) * offset) if isinstance(offset, float) else offset
    data[start : start + len(fill)] = fill
    return bytes(data)


# Header corruptions that no decoder can read past, and compressed-data corruptions that the format's checks
# catch (pixel data of formats without checks, such as BMP or baseline JPEG, decodes to a wrong but valid
# picture: that is not a bad input).
_CORRUPTIONS: dict[str, list[tuple[str, int | float, bytes]]] = {
    "png": [("ihdr", 16, b"\xff" * 8), ("ihdr-zero", 16, b"\x00" * 8), ("idat", 0.5, b"\x00" * 8)],
    "jpeg": [("dqt", 14, b"\xff" * 8), ("dqt-zero", 20, b"\x00" * 8), ("marker", 22, b"\xff" * 8)],
    "webp": [("vp8-header", 16, b"\x00" * 8), ("vp8-size", 26, b"\xff" * 8), ("vp8-frame", 28, b"\xff" * 8)],
    "gif": [("screen", 10, b"\x00" * 8), ("lzw", 0.5, b"\xff" * 8), ("lzw-long", 0.34, b"\xff" * 64)],
    "bmp": [("offset", 10, b"\xff" * 8), ("header-size", 14, b"\x00" * 8), ("depth", 28, b"\x00" * 8)],
}
_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP"}
_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "gif": ".gif", "bmp": ".bmp"}


def _bad_images() -> list[tuple[str, str, Callable[[], bytes]]]:
    """(id, file name, bytes maker) for every bad image file."""
    items: list[tuple[str, str, Callable[[], bytes]]] = []
    for key, fmt in _FORMATS.items():
        suffix = _SUFFIXES[key]
        for cut in ("8", "20", "40", "25pct", "50pct", "75pct", "90pct"):

            def truncated(fmt: str = fmt, cut: str = cut) -> bytes:
                data = image_bytes(fmt)
                size = int(len(data) * int(cut[:-3]) / 100) if cut.endswith("pct") else int(cut)
                return data[:size]

            items.append((f"{key}-truncated-{cut}", f"truncated-{cut}{suffix}", truncated))
        for what, offset, fill in _CORRUPTIONS[key]:
            items.append(
                (f"{key}-corrupt-{what}", f"corrupt-{what}{suffix}", functools.partial(_patched, fmt, offset, fill))
            )
    for suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"):
        items.append((f"empty{suffix.replace('.', '-')}", f"empty{suffix}", bytes))
    text = b"this is not an image, just a few words of text\n"
    items += [
        ("text-as-png", "notes.png", lambda: text),
        ("text-as-jpg", "notes.jpg", lambda: text),
        ("html-as-webp", "page.webp", lambda: b"<!doctype html><html><body>hello</body></html>\n"),
        ("json-as-gif", "data.gif", lambda: b'{"an": "object"}\n'),
        ("zeros-as-bmp", "zeros.bmp", lambda: bytes(4096)),
        ("random-as-jpeg", "noise.jpeg", lambda: np.random.default_rng(1).bytes(2048)),
        ("safetensors-as-png", "latents.png", lambda: _latents_bytes({"latents": np.zeros((1, 64), np.float32)})),
        ("png-bomb", "bomb.png", lambda: _png(100_000, 100_000)),
        ("png-bomb-16bit-rgba", "bomb16.png", lambda: _png(30_000, 30_000, bit_depth=16, colour=6)),
        ("gif-bomb", "bomb.gif", _gif_bomb),
        ("bmp-bomb", "bomb.bmp", _bmp_bomb),
        ("jpeg-bomb", "bomb.jpg", _jpeg_bomb),
        ("webp-bomb", "bomb.webp", _webp_bomb),
        ("png-huge-dimensions", "huge.png", _huge_png),
        ("png-zero-width", "zero-width.png", lambda: _png(0, 16)),
    ]
    return items


def _rotated(fmt: str, how: str) -> bytes:
    """A 40x20 image stored landscape with orientation 6 (display rotated 90 degrees clockwise), marked in
    ``how``: the EXIF block, a TIFF tag, an XMP packet or ImageMagick's raw-profile text chunk."""
    image = Image.fromarray(_base_array()[:20])
    exif = Image.Exif()
    exif[0x0112] = 6
    if how == "exif":
        return _encode(image, fmt, exif=exif.tobytes())
    if how == "tiff-tag":
        return _encode(image, fmt, tiffinfo={0x0112: 6})
    info = PngImagePlugin.PngInfo()
    if how == "xmp":
        info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>')
    else:  # ImageMagick's text chunk: a hex dump of the EXIF block after three header lines
        data = exif.tobytes()
        info.add_text("Raw profile type exif", f"\nexif\n{len(data)}\n{data.hex()}")
    return _encode(image, fmt, pnginfo=info)


def _animated(fmt: str) -> bytes:
    frames = [Image.fromarray(np.roll(_base_array(), 7 * i, axis=1)) for i in range(3)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_with_transparency() -> bytes:
    image = Image.fromarray(_base_array()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(image, "PNG", transparency=0)


def _grey_alpha() -> bytes:
    grey = Image.fromarray(_base_array()).convert("L")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (36, 1)))
    return _encode(Image.merge("LA", (grey, alpha)), "PNG")


def _sixteen_bit_grey() -> bytes:
    array = (np.arange(40 * 36, dtype=np.uint32).reshape(36, 40) * 45).astype(np.uint16)
    return _encode(Image.fromarray(array), "PNG")


# (id, file name, bytes maker, the note fragment the conversion must print, or None)
_VALID_IMAGES: list[tuple[str, str, Callable[[], bytes], str | None]] = [
    ("png-16bit-grey", "deep.png", _sixteen_bit_grey, "converted mode I"),
    ("jpeg-cmyk", "cmyk.jpg", lambda: _encode(Image.fromarray(_base_array()).convert("CMYK"), "JPEG"), "CMYK"),
    ("png-palette-transparency", "palette.png", _palette_with_transparency, "transparency composited on black"),
    ("gif-palette-transparency", "palette.gif", lambda: _encode(Image.open(io.BytesIO(_palette_with_transparency())),
                                                                 "GIF", transparency=0), "transparency"),
    ("gif-animated", "anim.gif", lambda: _animated("GIF"), "first of its 3 frames"),
    ("webp-animated", "anim.webp", lambda: _animated("WEBP"), "first of its 3 frames"),
    ("jpeg-exif-rotated", "rotated.jpg", lambda: _rotated("JPEG", "exif"), "EXIF orientation"),
    ("png-exif-rotated", "rotated.png", lambda: _rotated("PNG", "exif"), "EXIF orientation"),
    ("png-xmp-rotated", "rotated-xmp.png", lambda: _rotated("PNG", "xmp"), "EXIF orientation"),
    ("png-raw-profile-rotated", "rotated-raw.png", lambda: _rotated("PNG", "raw-profile"), "EXIF orientation"),
    ("webp-exif-rotated", "rotated.webp", lambda: _rotated("WEBP", "exif"), "EXIF orientation"),
    # Pillow turns a TIFF by its orientation tag itself while loading it, so no note is printed
    ("tiff-rotated", "rotated.tiff", lambda: _rotated("TIFF", "tiff-tag"), None),
    ("png-grey-alpha", "la.png", lambda: _grey_alpha(), "transparency composited on black"),
    ("bmp-1bit", "mono.bmp", lambda: _encode(Image.fromarray(_base_array()).convert("1"), "BMP"), "mode 1"),
    ("png-1x1", "dot.png", lambda: _encode(Image.new("L", (1, 1), 200), "PNG"), "resized to 28x28"),
    ("png-4000x1", "line.png", lambda: _encode(Image.new("RGB", (4000, 1), (9, 99, 199)), "PNG"), "center-cropped"),
    ("jpeg-progressive", "progressive.jpg",
     lambda: _encode(Image.fromarray(_base_array()), "JPEG", progressive=True), "converted to grey"),
    ("png-interlaced", "interlaced.png", lambda: _png_interlaced(), "resized to 28x28"),
    ("webp-lossless-rgba", "rgba.webp",
     lambda: _encode(Image.fromarray(_base_array()).convert("RGBA"), "WEBP", lossless=True), "converted to grey"),
    ("png-named-jpg", "really-a-png.jpg", lambda: image_bytes("PNG"), "converted to grey"),
    ("png-no-suffix", "picture", lambda: image_bytes("PNG"), "converted to grey"),
    ("png-upper-suffix", "SHOUT.PNG", lambda: image_bytes("PNG"), "converted to grey"),
    ("tiff", "scan.tiff", lambda: _encode(Image.fromarray(_base_array()), "TIFF"), "converted to grey"),
]


def _png_interlaced() -> bytes:
    """An Adam7-interlaced grey PNG (Pillow cannot write one, so it is built by hand)."""
    width, height = 16, 16
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = b""
    for x0, y0, dx, dy in passes:
        for y in range(y0, height, dy):
            row = bytes((x * 16 + y) % 256 for x in range(x0, width, dx))
            if row:
                rows += b"\x00" + row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------- image cases


def _dirs(root: Path) -> tuple[Path, Path]:
    inputs, outputs = root / "in", root / "out"
    inputs.mkdir(parents=True, exist_ok=True)
    outputs.mkdir(parents=True, exist_ok=True)
    return inputs, outputs


def _image_invocation(command: str, image: Path, good: Path, out: Path, note: str | None) -> Invocation:
    """Run ``command`` on ``image``; for the bad-input cases ``good`` comes first, so the error must name
    the right file."""
    first = [str(good)] if note is None else []
    if command == "encode":
        target = out / "z.safetensors"
        return Invocation(["encode", *first, str(image), "-o", str(target)], (image.name,), (target,), note)
    if command == "reconstruct":
        folder, grid = out / "recon", out / "grid.png"
        args = ["reconstruct", *first, str(image), "-o", str(folder), "--grid", str(grid)]
        return Invocation(args, (image.name,), (folder, grid), note)
    if command == "edit":
        folder = out / "edited"
        args = ["edit", *first, str(image), "-a", f"{SHIPPED_ATTRIBUTE}=1.5", "-o", str(folder)]
        return Invocation(args, (image.name,), (folder,), note)
    if command == "attribute":
        target = out / "attrs.safetensors"
        # the negative example must differ from the base picture: the same image on both sides is no direction
        negative = good.with_name("negative.png")
        negative.write_bytes(_encode(Image.fromarray(255 - _base_array()), "PNG"))
        args = ["attribute", "-p", str(image), "-n", str(negative), "--name", "probe", "-o", str(target)]
        return Invocation(args, (image.name,), (target,), note)
    raise ValueError(command)


def _image_case(name: str, make: Callable[[], bytes], command: str, note: str | None) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        inputs, out = _dirs(root)
        good = inputs / GOOD_NAME
        good.write_bytes(image_bytes("PNG"))
        image = inputs / name
        image.write_bytes(make())
        return _image_invocation(command, image, good, out, note)

    return build


def _dangling_link(command: str) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        inputs, out = _dirs(root)
        good = inputs / GOOD_NAME
        good.write_bytes(image_bytes("PNG"))
        link = inputs / "gone.png"
        link.symlink_to(inputs / "deleted-target.png")
        return _image_invocation(command, link, good, out, None)

    return build


def _folder_named_png(command: str) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        inputs, out = _dirs(root)
        good = inputs / GOOD_NAME
        good.write_bytes(image_bytes("PNG"))
        folder = inputs / "album.png"
        folder.mkdir()
        (folder / "readme.txt").write_text("no images here\n")
        return _image_invocation(command, folder, good, out, None)

    return build


IMAGE_COMMANDS = ("encode", "reconstruct", "edit", "attribute")
_SUBPROCESS_IDS = {  # also run through a real process: one of each kind of input
    "image-webp-truncated-50pct-encode",
    "image-png-bomb-reconstruct",
    "latents-nan-decode",
    "model-absurd-autogan32",
}


def _image_cases() -> list[Case]:
    cases = []
    for command in IMAGE_COMMANDS:
        for key, name, make in _bad_images():
            cases.append(Case(f"image-{key}-{command}", "image", _image_case(name, make, command, None)))
        cases.append(Case(f"image-dangling-symlink-{command}", "image", _dangling_link(command)))
        cases.append(Case(f"image-folder-named-png-{command}", "image", _folder_named_png(command)))
        for key, name, make, note in _VALID_IMAGES:
            cases.append(Case(f"valid-image-{key}-{command}", "valid-image", _image_case(name, make, command, note),
                              valid=True))
    return cases


# ---------------------------------------------------------------------------- safetensors bytes


def _latents_bytes(tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of numpy arrays (or torch tensors, for dtypes numpy lacks)."""
    import torch
    from safetensors.torch import save

    converted = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in tensors.items()}
    return save(converted, metadata=metadata)


def _raw_safetensors(header: Any, data: bytes = b"", declared: int | None = None) -> bytes:
    """A safetensors file written by hand: 8-byte little-endian header length, JSON header, data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if declared is None else declared) + text + data


def _good_latents(rows: int = 2, dim: int = 64) -> np.ndarray:
    return np.random.default_rng(2).standard_normal((rows, dim)).astype(np.float32) * 0.5


def _with(values: dict[tuple[int, int], float]) -> np.ndarray:
    array = _good_latents()
    for index, value in values.items():
        array[index] = value
    return array


def _torch_latents(dtype_name: str) -> Any:
    import torch

    return torch.from_numpy(_good_latents()).to(getattr(torch, dtype_name))


_F32_64 = {"dtype": "F32", "shape": [2, 64], "data_offsets": [0, 512]}

# (id, file name, bytes maker); each is given to decode and to interpolate FILE:0 FILE:1
_BAD_LATENTS: list[tuple[str, str, Callable[[], bytes]]] = [
    ("nan", "nan.safetensors", lambda: _latents_bytes({"latents": _with({(0, 3): np.nan})})),
    ("inf", "inf.safetensors", lambda: _latents_bytes({"latents": _with({(1, 0): np.inf})})),
    ("minus-inf", "minf.safetensors", lambda: _latents_bytes({"latents": _with({(1, 63): -np.inf})})),
    ("huge-finite", "huge.safetensors", lambda: _latents_bytes({"latents": _with({(0, 0): 3e38})})),
    ("int32", "int32.safetensors", lambda: _latents_bytes({"latents": np.ones((2, 64), np.int32)})),
    ("int64", "int64.safetensors", lambda: _latents_bytes({"latents": np.ones((2, 64), np.int64)})),
    ("uint8", "uint8.safetensors", lambda: _latents_bytes({"latents": np.ones((2, 64), np.uint8)})),
    ("bool", "bool.safetensors", lambda: _latents_bytes({"latents": np.ones((2, 64), np.bool_)})),
    ("shape-1d", "flat.safetensors", lambda: _latents_bytes({"latents": _good_latents(1)[0]})),
    ("shape-3d", "cube.safetensors", lambda: _latents_bytes({"latents": _good_latents()[None]})),
    ("shape-empty", "none.safetensors", lambda: _latents_bytes({"latents": np.zeros((0, 64), np.float32)})),
    ("shape-scalar", "scalar.safetensors", lambda: _latents_bytes({"latents": np.array(1.0, np.float32)})),
    ("dim-63", "dim63.safetensors", lambda: _latents_bytes({"latents": _good_latents(2, 63)})),
    ("dim-128", "dim128.safetensors", lambda: _latents_bytes({"latents": _good_latents(2, 128)})),
    ("transposed", "transposed.safetensors", lambda: _latents_bytes({"latents": _good_latents(64, 2)})),
    ("key-missing", "z-named.safetensors", lambda: _latents_bytes({"z": _good_latents()})),
    ("key-case", "capital.safetensors", lambda: _latents_bytes({"Latents": _good_latents()})),
    ("no-tensors", "empty-set.safetensors", lambda: _raw_safetensors({"__metadata__": {"format": "pt"}})),
    ("header-huge-declared", "big-header.safetensors", lambda: _raw_safetensors({"latents": _F32_64}, bytes(512),
                                                                                  declared=2**62)),
    ("header-longer-than-file", "long-header.safetensors",
     lambda: _raw_safetensors({"latents": _F32_64}, bytes(512), declared=10**6)),
    ("header-not-json", "garbled.safetensors", lambda: _raw_safetensors(b"{not json at all", bytes(512))),
    ("header-json-array", "array.safetensors", lambda: _raw_safetensors([1, 2, 3], bytes(512))),
    ("header-huge-tensor", "huge-shape.safetensors",
     lambda: _raw_safetensors({"latents": {"dtype": "F32", "shape": [10**9, 64], "data_offsets": [0, 256 * 10**9]}},
                              bytes(512))),
    ("header-offsets-past-end", "past-end.safetensors",
     lambda: _raw_safetensors({"latents": {"dtype": "F32", "shape": [2, 64], "data_offsets": [0, 10**7]}},
                              bytes(512))),
    ("header-unknown-dtype", "f128.safetensors",
     lambda: _raw_safetensors({"latents": {"dtype": "F128", "shape": [2, 64], "data_offsets": [0, 512]}},
                              bytes(512))),
    ("header-negative-shape", "negative.safetensors",
     lambda: _raw_safetensors({"latents": {"dtype": "F32", "shape": [-2, 64], "data_offsets": [0, 512]}},
                              bytes(512))),
    ("truncated-4", "cut4.safetensors", lambda: _latents_bytes({"latents": _good_latents()})[:4]),
    ("truncated-8", "cut8.safetensors", lambda: _latents_bytes({"latents": _good_latents()})[:8]),
    ("truncated-header", "cut-header.safetensors", lambda: _latents_bytes({"latents": _good_latents()})[:40]),
    ("truncated-data", "cut-data.safetensors", lambda: _latents_bytes({"latents": _good_latents()})[:-100]),
    ("truncated-last-byte", "cut-1.safetensors", lambda: _latents_bytes({"latents": _good_latents()})[:-1]),
    ("empty-file", "empty.safetensors", bytes),
    ("png-file", "picture.safetensors", lambda: image_bytes("PNG")),
    ("text-file", "notes.safetensors", lambda: b"latents: [0.1, 0.2, 0.3]\n"),
    ("torch-pickle", "pickled.safetensors", lambda: _torch_pickle()),
    ("numpy-npy", "array.safetensors", lambda: _npy_bytes()),
]

# Valid latents files that look unusual: other float dtypes, and hostile-looking "files" metadata that only
# names the outputs (and must never place them outside the output folder).
_VALID_LATENTS: list[tuple[str, str, Callable[[], bytes]]] = [
    ("float16", "half.safetensors", lambda: _latents_bytes({"latents": _torch_latents("float16")})),
    ("bfloat16", "bf16.safetensors", lambda: _latents_bytes({"latents": _torch_latents("bfloat16")})),
    ("float64", "double.safetensors", lambda: _latents_bytes({"latents": _torch_latents("float64")})),
    ("files-traversal", "sneaky.safetensors",
     lambda: _latents_bytes({"latents": _good_latents()}, {"files": json.dumps(["../../../etc/passwd", "/x.png"])})),
    ("files-dot-names", "dots.safetensors",
     lambda: _latents_bytes({"latents": _good_latents()}, {"files": json.dumps(["..", "."])})),
    ("files-not-json", "meta.safetensors", lambda: _latents_bytes({"latents": _good_latents()}, {"files": "[oops"})),
    ("files-wrong-count", "count.safetensors",
     lambda: _latents_bytes({"latents": _good_latents()}, {"files": json.dumps(["a.png"] * 5)})),
    ("files-not-strings", "types.safetensors",
     lambda: _latents_bytes({"latents": _good_latents()}, {"files": json.dumps([{"a": 1}, None])})),
    ("extra-tensors", "extra.safetensors", lambda: _latents_bytes({"latents": _good_latents(), "other": np.ones(3)})),
]


def _torch_pickle() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"latents": torch.zeros(2, 64)}, buffer)
    return buffer.getvalue()


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, _good_latents())
    return buffer.getvalue()


def _latents_case(name: str, make: Callable[[], bytes], command: str) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        inputs, out = _dirs(root)
        path = inputs / name
        path.write_bytes(make())
        if command == "decode":
            folder, grid = out / "decoded", out / "grid.png"
            return Invocation(["decode", str(path), "-o", str(folder), "--grid", str(grid)], (name,), (folder, grid))
        strip = out / "strip.png"
        return Invocation(["interpolate", f"{path}:0", f"{path}:1", "--steps", "3", "-o", str(strip)], (name,),
                          (strip,))

    return build


def _latents_folder(root: Path) -> Invocation:
    inputs, out = _dirs(root)
    folder = inputs / "dir.safetensors"
    folder.mkdir()
    return Invocation(["decode", str(folder), "-o", str(out / "decoded")], (folder.name,), (out / "decoded",))


def _latents_row_out_of_range(root: Path) -> Invocation:
    inputs, out = _dirs(root)
    path = inputs / "two.safetensors"
    path.write_bytes(_latents_bytes({"latents": _good_latents()}))
    strip = out / "strip.png"
    return Invocation(["interpolate", f"{path}:0", f"{path}:7", "-o", str(strip)], (path.name,), (strip,))


def _edit_huge_strength(root: Path) -> Invocation:
    """A finite strength so large that the edited latents decode to NaN: refused, naming the image."""
    inputs, out = _dirs(root)
    good = inputs / GOOD_NAME
    good.write_bytes(image_bytes("PNG"))
    folder = out / "edited"
    return Invocation(["edit", str(good), "-a", f"{SHIPPED_ATTRIBUTE}=1e38", "-o", str(folder)], (GOOD_NAME,),
                      (folder,))


def _latents_cases() -> list[Case]:
    cases = []
    for command in ("decode", "interpolate"):
        for key, name, make in _BAD_LATENTS:
            cases.append(Case(f"latents-{key}-{command}", "latents", _latents_case(name, make, command)))
        for key, name, make in _VALID_LATENTS:
            cases.append(Case(f"valid-latents-{key}-{command}", "valid-latents", _latents_case(name, make, command),
                              valid=True))
    cases.append(Case("latents-folder-decode", "latents", _latents_folder))
    cases.append(Case("latents-row-out-of-range-interpolate", "latents", _latents_row_out_of_range))
    cases.append(Case("latents-huge-strength-edit", "latents", _edit_huge_strength))
    return cases


# ---------------------------------------------------------------------------- attribute files


def _attributes_bytes(tensors: dict[str, Any], meta: Any = None) -> bytes:
    metadata = {"format": "pt"}
    if meta is not None:
        metadata["attributes"] = meta if isinstance(meta, str) else json.dumps(meta)
    return _latents_bytes(tensors, metadata)


def _direction(dim: int = 64, values: dict[int, float] | None = None) -> np.ndarray:
    array = np.random.default_rng(3).standard_normal(dim).astype(np.float32)
    for index, value in (values or {}).items():
        array[index] = value
    return array


_BAD_ATTRIBUTES: list[tuple[str, str, Callable[[], bytes]]] = [
    ("nan", "nan-attrs.safetensors", lambda: _attributes_bytes({"a": _direction(values={5: np.nan})})),
    ("inf", "inf-attrs.safetensors", lambda: _attributes_bytes({"a": _direction(values={0: np.inf})})),
    ("int", "int-attrs.safetensors", lambda: _attributes_bytes({"a": np.ones(64, np.int64)})),
    ("bool", "bool-attrs.safetensors", lambda: _attributes_bytes({"a": np.ones(64, np.bool_)})),
    ("dim-32", "dim32-attrs.safetensors", lambda: _attributes_bytes({"a": _direction(32)})),
    ("shape-2d", "2d-attrs.safetensors", lambda: _attributes_bytes({"a": _direction()[None]})),
    ("no-tensors", "none-attrs.safetensors", lambda: _raw_safetensors({"__metadata__": {"format": "pt"}})),
    ("meta-not-json", "meta-attrs.safetensors", lambda: _attributes_bytes({"a": _direction()}, "{oops")),
    ("meta-list", "list-attrs.safetensors", lambda: _attributes_bytes({"a": _direction()}, [1, 2])),
    ("meta-entry-list", "entry-attrs.safetensors", lambda: _attributes_bytes({"a": _direction()}, {"a": [1]})),
    ("meta-count-text", "count-attrs.safetensors",
     lambda: _attributes_bytes({"a": _direction()}, {"a": {"num_positive": "twenty"}})),
    ("meta-metadata-list", "md-attrs.safetensors",
     lambda: _attributes_bytes({"a": _direction()}, {"a": {"metadata": [1, 2]}})),
    ("header-huge-declared", "big-attrs.safetensors",
     lambda: _raw_safetensors({"a": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}}, bytes(256),
                              declared=2**62)),
    ("truncated", "cut-attrs.safetensors", lambda: _attributes_bytes({"a": _direction()})[:-20]),
    ("png-file", "picture-attrs.safetensors", lambda: image_bytes("PNG")),
    ("empty-file", "empty-attrs.safetensors", bytes),
]


def _edit_with_attributes(name: str, make: Callable[[], bytes]) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        inputs, out = _dirs(root)
        good = inputs / GOOD_NAME
        good.write_bytes(image_bytes("PNG"))
        path = inputs / name
        path.write_bytes(make())
        folder = out / "edited"
        return Invocation(["edit", str(good), "-a", f"{path}=1.0", "-o", str(folder)], (name,), (folder,))

    return build


def _append_to_attributes(name: str, make: Callable[[], bytes]) -> Callable[[Path], Invocation]:
    """``attribute --append`` onto a broken existing file: it must be refused and left as it was."""

    def build(root: Path) -> Invocation:
        inputs, out = _dirs(root)
        good = inputs / GOOD_NAME
        good.write_bytes(image_bytes("PNG"))
        path = out / name
        path.write_bytes(make())
        args = ["attribute", "-p", str(good), "-n", str(good), "--name", "probe", "-o", str(path), "--append"]
        return Invocation(args, (name,), ())

    return build


def _attribute_cases() -> list[Case]:
    cases = []
    for key, name, make in _BAD_ATTRIBUTES:
        cases.append(Case(f"attributes-{key}-edit", "attributes", _edit_with_attributes(name, make)))
        if key != "no-tensors":  # a file with no attributes yet is a fine file to --append to
            cases.append(Case(f"attributes-{key}-append", "attributes", _append_to_attributes(name, make)))
    return cases


# ---------------------------------------------------------------------------- model folders


@functools.cache
def _tiny_model_files() -> dict[str, bytes]:
    """config.json and model.safetensors of a tiny random grey model with the default model's geometry
    (32x32 frames, 28x28 content, 64 latents), a few kB instead of the bundled model's 1 MB."""
    import torch
    from safetensors.torch import save

    from dcvae_tools import DCVAE, ModelConfig
    from dcvae_tools.release import state_dict_for_release

    config = ModelConfig(architecture="autogan32", image_size=32, channels=1, latent_dim=64, content_size=28,
                         architecture_args={"gf_dim": 4, "df_dim": 4})
    torch.manual_seed(0)
    weights = save(state_dict_for_release(DCVAE(config)), metadata={"format": "pt"})
    return {"config.json": config.to_json().encode(), "model.safetensors": weights}


def _copy_model(root: Path, name: str = "model") -> Path:
    """Write the tiny model's release folder as ``root/in/NAME``."""
    folder = root / "in" / name
    folder.mkdir(parents=True)
    for file_name, data in _tiny_model_files().items():
        (folder / file_name).write_bytes(data)
    return folder


def _config(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def _write_config(folder: Path, data: Any) -> None:
    (folder / "config.json").write_text(json.dumps(data), encoding="utf-8")


def _model_invocation(root: Path, folder: Path, names: tuple[str, ...], model_arg: str | None = None) -> Invocation:
    inputs, out = _dirs(root)
    good = inputs / GOOD_NAME
    good.write_bytes(image_bytes("PNG"))
    target = out / "z.safetensors"
    return Invocation(["encode", str(good), "-m", model_arg or str(folder), "-o", str(target)], names, (target,))


def _config_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Invocation]:
    """A copy of the bundled model whose config.json is ``change(config)`` (or the dict changed in place)."""

    def build(root: Path) -> Invocation:
        folder = _copy_model(root)
        data = _config(folder)
        result = change(data)
        _write_config(folder, data if result is None else result)
        return _model_invocation(root, folder, ("config.json",))

    return build


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``a.b`` in the config."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = data
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del data[key]

    return change


def _config_text(text: bytes) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        folder = _copy_model(root)
        (folder / "config.json").write_bytes(text)
        return _model_invocation(root, folder, ("config.json",))

    return build


def _weights(change: Callable[[dict[str, Any]], dict[str, Any] | bytes]) -> Callable[[Path], Invocation]:
    """A copy of the bundled model whose model.safetensors is rewritten from ``change(tensors)``."""

    def build(root: Path) -> Invocation:
        from safetensors.torch import load_file, save_file

        folder = _copy_model(root)
        weights = folder / "model.safetensors"
        result = change(load_file(str(weights)))
        if isinstance(result, bytes):
            weights.write_bytes(result)
        else:
            save_file(result, str(weights))
        return _model_invocation(root, folder, ("model.safetensors",))

    return build


def _weights_bytes(change: Callable[[bytes], bytes]) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        folder = _copy_model(root)
        weights = folder / "model.safetensors"
        weights.write_bytes(change(weights.read_bytes()))
        return _model_invocation(root, folder, ("model.safetensors",))

    return build


def _first_key(tensors: dict[str, Any], prefix: str = "decoder.") -> str:
    return sorted(k for k in tensors if k.startswith(prefix) and tensors[k].is_floating_point())[0]


def _nan_weights(tensors: dict[str, Any]) -> dict[str, Any]:
    key = _first_key(tensors)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    return tensors


def _int_weights(tensors: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.round().long() if v.is_floating_point() else v) for k, v in tensors.items()}


def _wrong_shape(tensors: dict[str, Any]) -> dict[str, Any]:
    key = _first_key(tensors, "encoder.")
    tensors[key] = tensors[key].flatten()[:-1].clone()
    return tensors


def _renamed(tensors: dict[str, Any], new: str) -> dict[str, Any]:
    key = _first_key(tensors)
    tensors[new] = tensors.pop(key)
    return tensors


def _missing_weights(root: Path) -> Invocation:
    folder = _copy_model(root)
    (folder / "model.safetensors").unlink()
    return _model_invocation(root, folder, ("model.safetensors",))


def _weights_folder(root: Path) -> Invocation:
    folder = _copy_model(root)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()
    return _model_invocation(root, folder, ("model.safetensors",))


def _missing_config(root: Path) -> Invocation:
    folder = _copy_model(root)
    (folder / "config.json").unlink()
    return _model_invocation(root, folder, ("config.json",))


def _empty_folder(root: Path) -> Invocation:
    folder = root / "in" / "blank-model"
    folder.mkdir(parents=True)
    return _model_invocation(root, folder, (folder.name,))


def _nonexistent(root: Path) -> Invocation:
    _dirs(root)
    return _model_invocation(root, root / "in" / "no-such-model", ("no-such-model",))


def _traversal_argument(root: Path) -> Invocation:
    _dirs(root)
    arg = str(root / "in" / ".." / ".." / ".." / "no-such-place" / "model")
    return _model_invocation(root, root, ("no-such-place",), model_arg=arg)


def _bad_shipped_attributes(make: Callable[[], bytes]) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        folder = _copy_model(root)
        (folder / "attributes.safetensors").write_bytes(make())
        return _model_invocation(root, folder, ("attributes.safetensors",))

    return build


def _bad_shipped_latent_stats(make: Callable[[], bytes]) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        folder = _copy_model(root)
        (folder / "latent_stats.safetensors").write_bytes(make())
        return _model_invocation(root, folder, ("latent_stats.safetensors",))

    return build


def _bad_shipped_latent_prior(make: Callable[[], bytes]) -> Callable[[Path], Invocation]:
    def build(root: Path) -> Invocation:
        folder = _copy_model(root)
        (folder / "latent_prior.safetensors").write_bytes(make())
        return _model_invocation(root, folder, ("latent_prior.safetensors",))

    return build


def _latent_prior_bytes(change: Callable[[dict[str, Any]], None], dim: int = 64, components: int = 3,
                        **meta_change: Any) -> bytes:
    """A latent_prior.safetensors file for ``dim``-dimensional latents, its tensors altered by ``change`` and its
    metadata by ``meta_change``."""
    import torch
    from safetensors.torch import save

    tensors = {
        "weights": torch.full((components,), 1.0 / components),
        "means": torch.randn(components, dim, generator=torch.Generator().manual_seed(0)),
        "scale_tril": torch.eye(dim).expand(components, dim, dim).contiguous(),
    }
    change(tensors)
    meta = json.dumps({"format_version": 1, **meta_change})
    return save(tensors, metadata={"format": "pt", "latent_prior": meta})


def _latent_stats_bytes(change: Callable[[dict[str, Any]], None], dim: int = 64, nested_depth: int = 0,
                        **meta_change: Any) -> bytes:
    """A latent_stats.safetensors file for ``dim``-dimensional latents, its tensors altered by ``change`` and its
    metadata by ``meta_change``."""
    import torch
    from safetensors.torch import save

    g = torch.Generator().manual_seed(0)
    tensors = {
        "mean": torch.zeros(dim, dtype=torch.float64),
        "covariance": torch.eye(dim, dtype=torch.float64),
        "quantile_levels": torch.tensor([0.5, 0.9, 1.0], dtype=torch.float64),
        "mahalanobis_quantiles": torch.tensor([7.0, 9.0, 12.0], dtype=torch.float64),
        "cycle_quantiles": torch.tensor([4.0, 6.0, 9.0], dtype=torch.float64),
        "recon_error_quantiles": torch.tensor([0.04, 0.08, 0.2], dtype=torch.float64),
        "far_score_limit": torch.tensor([25.0], dtype=torch.float64),
    }
    tensors["mean"] += torch.randn(dim, generator=g, dtype=torch.float64)
    change(tensors)
    meta = json.dumps({"format_version": 2, "reference_count": 1000, "far_level": 0.995, **meta_change})
    if nested_depth:  # a JSON value nested deeper than a recursive parser can follow
        meta = meta[:-1] + ', "domain": ' + "[" * nested_depth + "]" * nested_depth + "}"
    return save(tensors, metadata={"format": "pt", "latent_stats": meta})


def _set_tensor(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(tensors: dict[str, Any]) -> None:
        tensors[name] = value(tensors[name]) if callable(value) else value

    return change


def _asymmetric(cov: Any) -> Any:
    cov = cov.clone()
    cov[0, 1] = 0.5
    return cov


def _absurd(architecture: str, image_size: int, args: dict[str, int], latent_dim: int = 65536,
            channels: int = 3) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A config whose every value is in range but whose networks would need tens of gigabytes."""

    def change(data: dict[str, Any]) -> dict[str, Any]:
        return {"architecture": architecture, "image_size": image_size, "channels": channels,
                "latent_dim": latent_dim, "architecture_args": args}

    return change


_DEEP_JSON = b"[" * 100_000 + b"]" * 100_000

_BAD_MODELS: list[tuple[str, Callable[[Path], Invocation]]] = [
    ("config-invalid-json", _config_text(b'{"architecture": "autogan32",')),
    ("config-empty", _config_text(b"")),
    ("config-not-utf8", _config_text(b'{"architecture": "\xff\xfe"}')),
    ("config-deeply-nested", _config_text(_DEEP_JSON)),
    ("config-too-large", _config_text(b"{" + b" " * 3_000_000 + b"}")),
    ("config-array", _config_edit(lambda data: [data])),
    ("config-null", _config_text(b"null")),
    ("config-string", _config_edit(lambda data: "autogan32")),
    ("config-missing-latent-dim", _config_edit(_drop("latent_dim"))),
    ("config-missing-architecture", _config_edit(_drop("architecture"))),
    ("latent-dim-string", _config_edit(_set("latent_dim", "64"))),
    ("latent-dim-float", _config_edit(_set("latent_dim", 64.0))),
    ("latent-dim-bool", _config_edit(_set("latent_dim", True))),
    ("latent-dim-null", _config_edit(_set("latent_dim", None))),
    ("latent-dim-list", _config_edit(_set("latent_dim", [64]))),
    ("latent-dim-zero", _config_edit(_set("latent_dim", 0))),
    ("latent-dim-negative", _config_edit(_set("latent_dim", -64))),
    ("latent-dim-1e9", _config_edit(_set("latent_dim", 10**9))),
    ("latent-dim-bignum", _config_edit(_set("latent_dim", 10**400))),
    ("latent-dim-wrong-for-weights", _config_edit(_set("latent_dim", 65))),
    ("image-size-string", _config_edit(_set("image_size", "32"))),
    ("image-size-unsupported", _config_edit(_set("image_size", 33))),
    ("image-size-huge", _config_edit(_set("image_size", 2**31))),
    ("channels-two", _config_edit(_set("channels", 2))),
    ("channels-four", _config_edit(_set("channels", 4))),
    ("channels-float", _config_edit(_set("channels", 1.5))),
    ("content-size-larger", _config_edit(_set("content_size", 33))),
    ("content-size-zero", _config_edit(_set("content_size", 0))),
    ("content-size-string", _config_edit(_set("content_size", "28"))),
    ("sample-clamp-nan", _config_text(b'{"architecture": "autogan32", "image_size": 32, "channels": 1, '
                                      b'"latent_dim": 64, "sample_clamp": NaN}')),
    ("sample-clamp-infinity", _config_text(b'{"architecture": "autogan32", "image_size": 32, "channels": 1, '
                                           b'"latent_dim": 64, "sample_clamp": Infinity}')),
    ("sample-clamp-string", _config_edit(_set("sample_clamp", "1.0"))),
    ("pixel-range-wrong", _config_edit(_set("pixel_range", [0, 1]))),
    ("pixel-range-string", _config_edit(_set("pixel_range", "[-1, 1]"))),
    ("format-version-2", _config_edit(_set("format_version", 2))),
    ("format-version-string", _config_edit(_set("format_version", "1"))),
    ("metrics-list", _config_edit(_set("metrics", [1, 2]))),
    ("dataset-number", _config_edit(_set("dataset", 5))),
    ("unknown-key", _config_edit(_set("surprise", True))),
    ("unknown-key-traversal", _config_edit(lambda data: {**data, "../../etc/passwd": "x"})),
    ("architecture-unknown", _config_edit(_set("architecture", "stylegan9"))),
    ("architecture-empty", _config_edit(_set("architecture", ""))),
    ("architecture-number", _config_edit(_set("architecture", 32))),
    ("architecture-traversal", _config_edit(_set("architecture", "../../../etc/passwd"))),
    ("architecture-module-path", _config_edit(_set("architecture", "autogan32/../progan"))),
    ("architecture-dunder", _config_edit(_set("architecture", "__init__"))),
    ("architecture-args-list", _config_edit(_set("architecture_args", [48, 32]))),
    ("architecture-args-unknown", _config_edit(_set("architecture_args.depth", 9))),
    ("gf-dim-string", _config_edit(_set("architecture_args.gf_dim", "48"))),
    ("gf-dim-float", _config_edit(_set("architecture_args.gf_dim", 48.5))),
    ("gf-dim-zero", _config_edit(_set("architecture_args.gf_dim", 0))),
    ("gf-dim-1e12", _config_edit(_set("architecture_args.gf_dim", 10**12))),
    ("gf-dim-wrong-for-weights", _config_edit(_set("architecture_args.gf_dim", 49))),
    ("absurd-autogan32", _config_edit(_absurd("autogan32", 64, {"gf_dim": 4096, "df_dim": 4096}))),
    ("absurd-autogan32-widths", _config_edit(_absurd("autogan32", 32, {"gf_dim": 4096, "df_dim": 4096}, 64, 1))),
    ("absurd-dcgan32", _config_edit(_absurd("dcgan32", 32, {"ngf": 4096, "ndf": 4096}))),
    ("absurd-progan", _config_edit(_absurd("progan", 1024, {"fmap_base": 65536, "fmap_max": 1024,
                                                             "max_resolution": 1024}))),
    ("progan-resolution-below-image", _config_edit(_absurd("progan", 64, {"max_resolution": 32}, 64, 1))),
    ("config-missing", _missing_config),
    ("folder-empty", _empty_folder),
    ("folder-nonexistent", _nonexistent),
    ("folder-traversal-argument", _traversal_argument),
    ("weights-missing", _missing_weights),
    ("weights-folder", _weights_folder),
    ("weights-empty", _weights_bytes(lambda data: b"")),
    ("weights-truncated", _weights_bytes(lambda data: data[: len(data) // 2])),
    ("weights-truncated-header", _weights_bytes(lambda data: data[:100])),
    ("weights-header-huge", _weights_bytes(lambda data: struct.pack("<Q", 2**62) + data[8:])),
    ("weights-png", _weights_bytes(lambda data: image_bytes("PNG"))),
    ("weights-pickle", _weights_bytes(lambda data: _torch_pickle())),
    ("weights-nan", _weights(_nan_weights)),
    ("weights-int", _weights(_int_weights)),
    ("weights-wrong-shape", _weights(_wrong_shape)),
    ("weights-missing-tensor", _weights(lambda t: {k: v for k, v in t.items() if k != _first_key(t)})),
    ("weights-extra-tensor", _weights(lambda t: {**t, "decoder.extra": t[_first_key(t)].clone()})),
    ("weights-traversal-key", _weights(lambda t: _renamed(t, "../../decoder.weight"))),
    ("weights-no-tensors", _weights_bytes(lambda data: _raw_safetensors({"__metadata__": {"format": "pt"}}))),
    ("shipped-attributes-corrupt", _bad_shipped_attributes(lambda: image_bytes("PNG"))),
    ("shipped-attributes-wrong-dim", _bad_shipped_attributes(lambda: _attributes_bytes({"a": _direction(8)}))),
    ("shipped-attributes-nan",
     _bad_shipped_attributes(lambda: _attributes_bytes({"a": _direction(values={1: np.nan})}))),
    ("shipped-latent-stats-corrupt", _bad_shipped_latent_stats(lambda: image_bytes("PNG"))),
    ("shipped-latent-stats-empty", _bad_shipped_latent_stats(lambda: b"")),
    ("shipped-latent-stats-wrong-dim", _bad_shipped_latent_stats(lambda: _latent_stats_bytes(lambda t: None, 8))),
    ("shipped-latent-stats-missing-tensor",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(lambda t: t.pop("covariance")))),
    ("shipped-latent-stats-nan",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(_set_tensor("mean", lambda m: m * float("nan"))))),
    ("shipped-latent-stats-asymmetric",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(_set_tensor("covariance", _asymmetric)))),
    ("shipped-latent-stats-negative-covariance",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(_set_tensor("covariance", lambda c: -c)))),
    ("shipped-latent-stats-levels-decreasing", _bad_shipped_latent_stats(lambda: _latent_stats_bytes(
        _set_tensor("quantile_levels", lambda q: q.flip(0))))),
    ("shipped-latent-stats-quantiles-decreasing", _bad_shipped_latent_stats(lambda: _latent_stats_bytes(
        _set_tensor("mahalanobis_quantiles", lambda q: q.flip(0))))),
    ("shipped-latent-stats-cycle-decreasing", _bad_shipped_latent_stats(lambda: _latent_stats_bytes(
        _set_tensor("cycle_quantiles", lambda q: q.flip(0))))),
    ("shipped-latent-stats-limit-zero", _bad_shipped_latent_stats(lambda: _latent_stats_bytes(
        _set_tensor("far_score_limit", lambda q: q * 0.0)))),
    ("shipped-latent-stats-far-level-missing",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(lambda t: None, far_level=None))),
    ("shipped-latent-stats-far-level-text",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(lambda t: None, far_level="abc"))),
    ("shipped-latent-stats-deeply-nested-metadata",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(lambda t: None, nested_depth=100_000))),
    ("shipped-latent-stats-oversized",
     _bad_shipped_latent_stats(lambda: _latent_stats_bytes(lambda t: None) + b" " * (2 << 20))),
    ("shipped-latent-prior-corrupt", _bad_shipped_latent_prior(lambda: image_bytes("PNG"))),
    ("shipped-latent-prior-empty", _bad_shipped_latent_prior(lambda: b"")),
    ("shipped-latent-prior-wrong-dim", _bad_shipped_latent_prior(lambda: _latent_prior_bytes(lambda t: None, 8))),
    ("shipped-latent-prior-missing-tensor",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(lambda t: t.pop("scale_tril")))),
    ("shipped-latent-prior-nan",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(_set_tensor("means", lambda m: m * float("nan"))))),
    ("shipped-latent-prior-huge",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(_set_tensor("means", lambda m: m.double() * 1e300)))),
    ("shipped-latent-prior-weights-not-summing-to-one",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(_set_tensor("weights", lambda w: w * 2)))),
    ("shipped-latent-prior-not-triangular",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(_set_tensor("scale_tril", lambda s: s + 0.1)))),
    ("shipped-latent-prior-too-many-components",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(lambda t: None, 4, components=300))),
    ("shipped-latent-prior-version-text",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(lambda t: None, format_version="1"))),
    ("shipped-latent-prior-oversized",
     _bad_shipped_latent_prior(lambda: _latent_prior_bytes(lambda t: None) + b" " * (12 << 20))),
]


def _valid_free_text(root: Path) -> Invocation:
    """Path-like text in free-text fields is only text: nothing is read from or written to it."""
    folder = _copy_model(root)
    data = _config(folder)
    data.update(dataset="../../../etc/passwd", preset="/dev/zero", description="$(rm -rf /); ../..")
    _write_config(folder, data)
    return _model_invocation(root, folder, ())


def _valid_dotted_path(root: Path) -> Invocation:
    folder = _copy_model(root, "odd name; with spaces")
    arg = str(folder.parent / ".." / "in" / folder.name)
    return _model_invocation(root, folder, (), model_arg=arg)


def _valid_half_weights(root: Path) -> Invocation:
    return _weights(lambda t: {k: (v.half() if v.is_floating_point() else v) for k, v in t.items()})(root)


_VALID_MODELS: list[tuple[str, Callable[[Path], Invocation]]] = [
    ("free-text-traversal", _valid_free_text),
    ("dotted-path-with-spaces", _valid_dotted_path),
    ("weights-float16", _valid_half_weights),
]


def _model_cases() -> list[Case]:
    cases = [Case(f"model-{key}", "model", build) for key, build in _BAD_MODELS]
    cases += [Case(f"valid-model-{key}", "valid-model", build, valid=True) for key, build in _VALID_MODELS]
    return cases


# ---------------------------------------------------------------------------- the corpus


def corpus() -> list[Case]:
    """Every case, in a stable order; ids are unique."""
    cases = _image_cases() + _latents_cases() + _attribute_cases() + _model_cases()
    cases = [
        Case(c.id, c.category, c.build, c.valid, c.id in _SUBPROCESS_IDS, c.xfail) if c.id in _SUBPROCESS_IDS else c
        for c in cases
    ]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases
