"""The quick reader of model-ready PNG files (dcvae_tools.images.ready_png) and the encoder's batches built on it.

The quick path must give exactly the tensor ``convert_image`` gives, and must hand every file it does not fully
understand (other modes and sizes, transparency, orientation tags, animation, damage) back to the usual path,
so that what a file becomes, or which error it raises, never depends on which path read it.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from dcvae_tools.encoding.reading import ImageFiles
from dcvae_tools.errors import ImageError
from dcvae_tools.images import convert_image
from dcvae_tools.images.convert import model_batch_from_uint8
from dcvae_tools.images.ready_png import read_model_ready_png

SIZE, CONTENT = 32, 28
RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (CONTENT, CONTENT), dtype=np.uint8)
RGB = RNG.integers(0, 256, (CONTENT, CONTENT, 3), dtype=np.uint8)


def _png_bytes(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _chunk(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset of the chunk's type field, length of its data)."""
    at = data.index(kind)
    return at, struct.unpack(">I", data[at - 4 : at])[0]


def _with_good_crc(data: bytearray, kind: bytes) -> bytes:
    at, length = _chunk(bytes(data), kind)
    data[at + 4 + length : at + 8 + length] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 4 + length])))
    return bytes(data)


def _chunk_bytes(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _insert(data: bytes, kind: bytes, body: bytes, before: bytes = b"IDAT") -> bytes:
    """``data`` with a chunk ``kind`` inserted before the first chunk of type ``before``."""
    at = data.index(before) - 4
    return data[:at] + _chunk_bytes(kind, body) + data[at:]


def _split_idat(data: bytes, between: bytes) -> bytes:
    """The image data cut in two IDAT chunks, with a ``between`` chunk (a gAMA) in the middle."""
    at, length = _chunk(data, b"IDAT")
    body = data[at + 4 : at + 4 + length]
    parts = _chunk_bytes(b"IDAT", body[:10]) + _chunk_bytes(between, struct.pack(">I", 45455))
    parts += _chunk_bytes(b"IDAT", body[10:])
    return data[: at - 4] + parts + data[at + 8 + length :]


def _expected(path: Path, channels: int) -> torch.Tensor:
    tensor, note = convert_image(path, size=SIZE, channels=channels, content_size=CONTENT)
    assert note is None
    return tensor


@pytest.mark.parametrize(
    ("image", "channels", "options"),
    [
        (Image.fromarray(GREY), 1, {}),
        (Image.fromarray(RGB), 3, {}),
        (Image.fromarray(GREY), 1, {"optimize": True}),
        (Image.fromarray(GREY), 1, {"compress_level": 0}),
        (Image.fromarray(GREY), 1, {"pnginfo": PngImagePlugin.PngInfo(), "dpi": (72, 72)}),
    ],
    ids=["grey", "rgb", "optimized", "stored", "with-dpi"],
)
def test_model_ready_pngs_give_the_usual_tensor_bit_for_bit(tmp_path: Path, image: Image.Image, channels: int,
                                                            options: dict) -> None:
    path = _write(tmp_path, "x.png", _png_bytes(image, **options))
    pixels = read_model_ready_png(path, channels, CONTENT)
    assert pixels is not None and pixels.dtype == np.uint8 and pixels.shape == (CONTENT, CONTENT, channels)
    assert torch.equal(model_batch_from_uint8(pixels[None], SIZE)[0], _expected(path, channels))


def test_plain_text_chunks_are_read_quickly(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "a scanner")
    info.add_text("Comment", "")
    path = _write(tmp_path, "x.png", _png_bytes(Image.fromarray(GREY), pnginfo=info))
    pixels = read_model_ready_png(path, 1, CONTENT)
    assert pixels is not None and np.array_equal(pixels[:, :, 0], GREY)


def test_a_text_named_like_an_info_key_takes_the_usual_path_which_ignores_it(tmp_path: Path) -> None:
    """Pillow files PNG text under its keyword in image.info: text named ``transparency`` used to crash the
    conversion, and text named like load_image's notes key to add its characters as notes."""
    plain = _png_bytes(Image.fromarray(GREY))
    for keyword in (b"transparency", b"dcvae_tools.load_changes"):
        path = _write(tmp_path, "x.png", _insert(plain, b"tEXt", keyword + b"\0hi"))
        assert read_model_ready_png(path, 1, CONTENT) is None
        tensor, note = convert_image(path, size=SIZE, channels=1, content_size=CONTENT)
        assert note is None
        assert torch.equal(tensor, model_batch_from_uint8(GREY[None, :, :, None], SIZE)[0])


def _orientation_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated
    return exif


def _xmp_orientation() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
                  '1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
                  'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    return info


OTHER_FILES = {
    "rgb file, grey model": (lambda: _png_bytes(Image.fromarray(RGB)), 1),
    "grey file, rgb model": (lambda: _png_bytes(Image.fromarray(GREY)), 3),
    "other size": (lambda: _png_bytes(Image.fromarray(GREY).resize((32, 32))), 1),
    "not square": (lambda: _png_bytes(Image.fromarray(GREY[:, :20])), 1),
    "16-bit": (lambda: _png_bytes(Image.fromarray(GREY.astype(np.uint16) * 257)), 1),
    "palette": (lambda: _png_bytes(Image.fromarray(GREY).convert("P")), 1),
    "transparency": (lambda: _png_bytes(Image.fromarray(GREY), transparency=0), 1),
    "grey+alpha": (lambda: _png_bytes(Image.fromarray(GREY).convert("LA")), 1),
    "exif orientation": (lambda: _png_bytes(Image.fromarray(GREY), exif=_orientation_exif()), 1),
    "xmp orientation": (lambda: _png_bytes(Image.fromarray(GREY), pnginfo=_xmp_orientation()), 1),
    "two frames": (lambda: _png_bytes(Image.fromarray(GREY), save_all=True,
                                      append_images=[Image.fromarray(255 - GREY)]), 1),
    "jpeg": (lambda: (lambda b: (Image.fromarray(GREY).save(b, "JPEG"), b.getvalue())[1])(io.BytesIO()), 1),
    "exif orientation in tEXt": (lambda: _insert(_png_bytes(Image.fromarray(GREY)), b"tEXt",
                                                 b"exif\0" + _orientation_exif().tobytes()), 1),
    "compressed text": (lambda: _insert(_png_bytes(Image.fromarray(GREY)), b"zTXt",
                                        b"Comment\0\0" + zlib.compress(b"hello")), 1),
    "colour profile": (lambda: _png_bytes(Image.fromarray(RGB), icc_profile=b"not really a profile"), 3),
    "text after the image data": (lambda: _insert(_png_bytes(Image.fromarray(GREY)), b"tEXt",
                                                  b"XML:com.adobe.xmp\0<x/>", before=b"IEND"), 1),
}


@pytest.mark.parametrize("name", list(OTHER_FILES))
def test_files_that_need_converting_take_the_usual_path(tmp_path: Path, name: str) -> None:
    make, channels = OTHER_FILES[name]
    path = _write(tmp_path, "x.png", make())
    assert read_model_ready_png(path, channels, CONTENT) is None
    tensor, _ = convert_image(path, size=SIZE, channels=channels, content_size=CONTENT)  # a valid file
    assert tensor.shape == (channels, SIZE, SIZE)


def _damaged() -> dict[str, bytes]:
    good = _png_bytes(Image.fromarray(GREY))
    at, length = _chunk(good, b"IDAT")
    crc = bytearray(good)
    crc[at + 4 + length] ^= 0xFF
    data = bytearray(good)
    data[at + 10] ^= 0x55
    header = bytearray(good)
    header[_chunk(good, b"IHDR")[0] + 8] ^= 0x01  # width 28 -> 29 under a stale CRC
    return {
        "idat crc": bytes(crc),
        "idat data (crc recomputed)": _with_good_crc(data, b"IDAT"),
        "ihdr crc": bytes(header),
        "truncated": good[: at + 20],
        "no IEND": good[:-12],
        "empty": b"",
        "image data split by another chunk": _split_idat(good, b"gAMA"),
        "empty gAMA chunk": _insert(good, b"gAMA", b""),
        "short pHYs chunk": _insert(good, b"pHYs", b"\0\0"),
        "huge trailing data": good + bytes(3 << 20),
    }


@pytest.mark.parametrize("name", list(_damaged()))
def test_damaged_pngs_are_left_to_the_usual_path(tmp_path: Path, name: str) -> None:
    """The usual path then decides: it refuses the file with its own message, or reads what Pillow can."""
    path = _write(tmp_path, "x.png", _damaged()[name])
    assert read_model_ready_png(path, 1, CONTENT) is None


def test_missing_files_and_devices_are_left_to_the_usual_path(tmp_path: Path) -> None:
    assert read_model_ready_png(tmp_path / "absent.png", 1, CONTENT) is None
    assert read_model_ready_png(tmp_path, 1, CONTENT) is None
    if Path("/dev/zero").exists():
        assert read_model_ready_png(Path("/dev/zero"), 1, CONTENT) is None  # endless: read no further than 33 bytes


def test_usual_path_refuses_the_damage_the_quick_path_declines(tmp_path: Path) -> None:
    """Where Pillow refuses the file, the quick path must not have accepted it: same error whichever path reads."""
    for name in ("image data split by another chunk", "empty gAMA chunk", "short pHYs chunk"):
        path = _write(tmp_path, "x.png", _damaged()[name])
        assert read_model_ready_png(path, 1, CONTENT) is None
        with pytest.raises(ImageError):
            convert_image(path, size=SIZE, channels=1, content_size=CONTENT)


def test_model_batch_from_uint8_refuses_what_it_cannot_take() -> None:
    with pytest.raises(ValueError, match="uint8 pixels"):
        model_batch_from_uint8(GREY[None, :, :, None].astype(np.float32), SIZE)


def test_encoder_batches_mix_both_paths_in_file_order(tmp_path: Path) -> None:
    """A batch of a ready PNG, a file that needs resizing, a broken file and another ready PNG: the images in
    order, each as convert_image makes it, the note of the resized one, the error of the broken one."""
    ready_a = _write(tmp_path, "a.png", _png_bytes(Image.fromarray(GREY)))
    resized = _write(tmp_path, "b.png", _png_bytes(Image.fromarray(GREY).resize((40, 40))))
    broken = _write(tmp_path, "c.png", _damaged()["truncated"])
    ready_d = _write(tmp_path, "d.png", _png_bytes(Image.fromarray(255 - GREY)))
    files = ImageFiles([ready_a, resized, broken, ready_d], SIZE, 1, CONTENT)
    batch = files.collate([files[i] for i in range(4)])
    assert batch.indices == [0, 1, 2, 3]
    expected = [convert_image(p, size=SIZE, channels=1, content_size=CONTENT)[0] for p in (ready_a, resized, ready_d)]
    assert batch.images is not None and torch.equal(batch.images, torch.stack(expected))
    assert [i for i, _ in batch.notes] == [1] and "resized to 28x28" in batch.notes[0][1]
    assert [i for i, _ in batch.errors] == [2]
    with pytest.raises(ImageError, match="truncated or corrupt"):
        convert_image(broken, size=SIZE, channels=1, content_size=CONTENT)
    assert "truncated or corrupt" in batch.errors[0][1]


def test_encoder_batches_are_float32_whatever_torch_s_default(tmp_path: Path) -> None:
    ready = _write(tmp_path, "a.png", _png_bytes(Image.fromarray(GREY)))
    resized = _write(tmp_path, "b.png", _png_bytes(Image.fromarray(GREY).resize((40, 40))))
    files = ImageFiles([ready, resized], SIZE, 1, CONTENT)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        batch = files.collate([files[0], files[1]])
    finally:
        torch.set_default_dtype(default)
    assert batch.images is not None and batch.images.dtype == torch.float32


@pytest.mark.parametrize("channels", [1, 3])
def test_a_batch_decodes_as_each_file_alone_and_marks_the_data_pillow_refuses(tmp_path: Path, channels: int) -> None:
    """Decoding many files into one image must give each file's own pixels; damaged data is marked, not raised,
    and the one-at-a-time fallback (for a Pillow without the decoder entry point) gives the same."""
    from dcvae_tools.images import ready_png

    sources = [RGB if channels == 3 else GREY, 255 - (RGB if channels == 3 else GREY)]
    good = [_png_bytes(Image.fromarray(a)) for a in sources]
    bad = bytearray(good[0])
    bad[_chunk(good[0], b"IDAT")[0] + 10] ^= 0x55
    files = [_write(tmp_path, f"{k}.png", data) for k, data in
             enumerate([good[0], _with_good_crc(bad, b"IDAT"), good[1], good[0]])]
    streams = [ready_png.read_model_ready_data(f, channels, CONTENT) for f in files]
    assert all(isinstance(s, bytes) for s in streams)  # the damage is inside the compressed data
    for decode in (ready_png.decode_model_ready, ready_png._decode_each):
        pixels, decoded = decode(streams, channels, CONTENT)
        assert decoded == [True, False, True, True]
        assert pixels.shape == (4, CONTENT, CONTENT, channels) and pixels.dtype == np.uint8
        for k, source in ((0, sources[0]), (2, sources[1]), (3, sources[0])):
            assert np.array_equal(pixels[k].reshape(source.shape), source)
    assert ready_png.decode_model_ready([], channels, CONTENT)[0].shape == (0, CONTENT, CONTENT, channels)


def test_encoder_batches_send_data_that_does_not_decode_the_usual_way(tmp_path: Path) -> None:
    """A model-ready PNG whose compressed data is damaged under a valid CRC passes the chunk walk; in a batch it
    must become the usual path's error, and the files around it stay in place."""
    good = _png_bytes(Image.fromarray(GREY))
    damaged = _write(tmp_path, "b.png", _damaged()["idat data (crc recomputed)"])
    before = _write(tmp_path, "a.png", good)
    after = _write(tmp_path, "c.png", _png_bytes(Image.fromarray(255 - GREY)))
    files = ImageFiles([before, damaged, after], SIZE, 1, CONTENT)
    items = [files[i] for i in range(3)]
    assert isinstance(items[1][1], bytes)  # read as model-ready: only decoding finds the damage
    batch = files.collate(items)
    expected = [convert_image(p, size=SIZE, channels=1, content_size=CONTENT)[0] for p in (before, after)]
    assert batch.images is not None and torch.equal(batch.images, torch.stack(expected))
    with pytest.raises(ImageError) as refused:
        convert_image(damaged, size=SIZE, channels=1, content_size=CONTENT)
    assert batch.errors == [(1, " ".join(str(refused.value).split()))]
