"""Tests for dcvae_tools.images and dcvae_tools.io_utils."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from dcvae_tools import images
from dcvae_tools.errors import DCVAEError, ImageError
from dcvae_tools.images import (
    expand_image_paths,
    load_image,
    make_grid,
    save_gif,
    save_grid,
    save_image,
    to_pil,
    to_tensor,
)
from dcvae_tools.images.labels import edit_heading, interpolation_labels, shortened, strength_labels
from dcvae_tools.io_utils import atomic_write, atomic_write_bytes, atomic_write_text, sha256_file

RNG = np.random.default_rng(0)


def _grey(h: int = 16, w: int = 16) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w), dtype=np.uint8)


def _rgb(h: int = 16, w: int = 16) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("make", [_grey, _rgb], ids=["grey", "rgb"])
def test_pil_round_trip_is_exact(make) -> None:
    array = make()
    image = Image.fromarray(array)
    channels = 1 if array.ndim == 2 else 3
    tensor, notes = to_tensor(image, size=16, channels=channels)
    assert tensor.shape == (1, channels, 16, 16)
    assert tensor.dtype == torch.float32
    assert float(tensor.min()) >= -1.0 and float(tensor.max()) <= 1.0
    assert notes == []
    back = to_pil(tensor[0])
    assert isinstance(back, Image.Image)
    assert back.mode == ("L" if channels == 1 else "RGB")
    np.testing.assert_array_equal(np.asarray(back), array)


def test_to_pil_batch_returns_list() -> None:
    batch = torch.rand(3, 3, 8, 8) * 2 - 1
    out = to_pil(batch)
    assert isinstance(out, list) and len(out) == 3
    assert all(im.size == (8, 8) and im.mode == "RGB" for im in out)


def test_to_pil_clamps_and_rounds() -> None:
    tensor = torch.tensor([[[-5.0, 5.0, 0.0, 1.0 / 255.0]]])  # [1, 1, 4]
    pixels = np.asarray(to_pil(tensor))
    assert pixels.tolist() == [[0, 255, 128, 128]]  # 127.5 and 128.0 both round to 128


def test_to_pil_reads_uint8_tensors_as_pixels_and_refuses_other_integers() -> None:
    pixels = torch.tensor([[[0, 128, 255]]], dtype=torch.uint8)
    assert np.asarray(to_pil(pixels)).tolist() == [[0, 128, 255]]  # as to_tensor reads uint8, not clamped white
    with pytest.raises(ImageError, match=r"dtype torch\.int64; expected float in \[-1, 1\]"):
        to_pil(pixels.long())


def test_grey_to_rgb_and_rgb_to_grey() -> None:
    grey = _grey()
    tensor, notes = to_tensor(Image.fromarray(grey), size=16, channels=3)
    assert tensor.shape == (1, 3, 16, 16)
    assert torch.equal(tensor[0, 0], tensor[0, 1]) and torch.equal(tensor[0, 1], tensor[0, 2])
    np.testing.assert_array_equal(np.asarray(to_pil(tensor[0]))[:, :, 0], grey)
    assert len(notes) == 1 and "converted grey to RGB" in notes[0]

    rgb = _rgb()
    tensor, notes = to_tensor(Image.fromarray(rgb), size=16, channels=1)
    assert tensor.shape == (1, 1, 16, 16)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(np.asarray(to_pil(tensor[0])), expected)
    assert len(notes) == 1 and "converted to grey" in notes[0]


def test_rgba_is_composited_on_black() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0  # fully transparent red -> black
    rgba[0, 0, 3] = 255  # one opaque red pixel
    tensor, notes = to_tensor(Image.fromarray(rgba), size=4, channels=3)
    pixels = np.asarray(to_pil(tensor[0]))
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[1, 1].tolist() == [0, 0, 0]
    assert any("transparency" in n for n in notes)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    image = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16).repeat(3, axis=0))
    assert image.mode.startswith("I")
    tensor, _ = to_tensor(image, size=3, channels=1)
    assert np.asarray(to_pil(tensor[0]))[0].tolist() == [0, 128, 255]


@pytest.mark.parametrize(("values", "note"), [([0.0, 128 / 255, 1.0], "as [0, 1]"), ([-1e-6, 128 / 255, 1.00001],
                                                 "as [0, 1]"), ([0.0, 128.0, 255.0], "0-255")])
def test_float_images_are_read_on_the_scale_their_values_show(values: list[float], note: str) -> None:
    """A float TIFF (PIL mode F) holds 0-1 or 0-255 data; 0-1 data read as 0-255 came out almost black."""
    image = Image.fromarray(np.array([values], dtype=np.float32).repeat(3, axis=0))
    assert image.mode == "F"
    tensor, notes = to_tensor(image, size=3, channels=1)
    assert np.asarray(to_pil(tensor[0]))[0].tolist() == [0, 128, 255]
    assert any(note in n for n in notes), notes


def test_padding_with_content_size() -> None:
    grey = _grey(28, 28)
    tensor, notes = to_tensor(Image.fromarray(grey), size=32, channels=1, content_size=28)
    assert tensor.shape == (1, 1, 32, 32)
    assert notes == []
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert bool((tensor[0, 0][border] == -1).all())
    expected = torch.from_numpy(grey.astype(np.float32) / 127.5 - 1)
    assert torch.equal(tensor[0, 0, 2:30, 2:30], expected)
    back = to_pil(tensor[0], content_size=28)
    assert back.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(back), grey)


def test_model_format_tensor_passes_through() -> None:
    tensor = torch.rand(2, 1, 32, 32) * 2 - 1
    out, notes = to_tensor(tensor, size=32, channels=1, content_size=28)
    assert notes == []
    assert torch.equal(out[:, :, 2:30, 2:30], tensor[:, :, 2:30, 2:30])
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert bool((out[:, :, border] == -1).all())  # every side of the frame, not only the top
    assert not bool((tensor[:, :, border] == -1).all())  # the caller's tensor is left as it was
    # the same values when the batch comes as one of several inputs, and image by image
    listed, _ = to_tensor([tensor, tensor[0]], size=32, channels=1, content_size=28)
    assert torch.equal(listed[:2], out) and torch.equal(listed[2], out[0])


def test_a_tensor_of_the_models_side_but_other_channels_is_resized_like_an_array() -> None:
    """Only the exact model format passes through: a 3x32x32 RGB tensor given to a grey 28-in-32 model is a
    32x32 image (CIFAR-like), resized to 28 as the same image as an array is, not cropped to its middle 28."""
    rgb = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(3))
    from_tensor, notes = to_tensor(rgb * 2 - 1, size=32, channels=1, content_size=28)
    from_array, _ = to_tensor(rgb.permute(1, 2, 0).numpy(), size=32, channels=1, content_size=28)
    assert notes and "resized to 28x28" in notes[0]
    assert torch.allclose(from_tensor, from_array, atol=2e-2)


def test_resize_of_non_square_image_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(_rgb(48, 64)).save(path)
    tensor, notes = to_tensor(path, size=32, channels=1, content_size=28)
    assert tensor.shape == (1, 1, 32, 32)
    assert len(notes) == 1
    note = notes[0]
    assert "photo.png" in note and "64x48" in note
    assert "center-cropped and resized to 28x28" in note and "converted to grey" in note


def test_downscaling_is_antialiased() -> None:
    checker = (np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)  # 1-pixel checkerboard
    for item in (Image.fromarray(checker), checker.astype(np.float32) / 255.0):
        tensor, notes = to_tensor(item, size=8, channels=1)
        assert notes and "resized to 8x8" in notes[0]
        assert float(tensor.abs().max()) < 0.1  # averaged to mid-grey, not aliased to black/white


def test_center_crop_keeps_the_middle() -> None:
    array = np.zeros((4, 8), dtype=np.uint8)
    array[:, 2:6] = 255  # the centred 4x4 square is white, the sides black
    tensor, notes = to_tensor(Image.fromarray(array), size=4, channels=1)
    assert bool((tensor == 1).all())
    assert notes and "center-cropped to 4x4" in notes[0]


def test_numpy_uint8_and_float_inputs() -> None:
    rgb = _rgb(8, 8)
    from_uint8, notes = to_tensor(rgb, size=8, channels=3)
    assert notes == []
    from_float, notes = to_tensor(rgb.astype(np.float32) / 255.0, size=8, channels=3)
    assert notes == []
    assert torch.allclose(from_uint8, from_float, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(to_pil(from_float[0])), rgb)

    grey = _grey(8, 8)
    for array in (grey, grey[:, :, None], grey.astype(np.float64) / 255.0):
        tensor, _ = to_tensor(array, size=8, channels=1)
        np.testing.assert_array_equal(np.asarray(to_pil(tensor[0])), grey)


def test_list_of_mixed_inputs(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(_grey(8, 8)).save(path)
    items = [path, str(path), Image.fromarray(_grey(8, 8)), _grey(8, 8), torch.zeros(1, 8, 8)]
    batch, _ = to_tensor(items, size=8, channels=1)
    assert batch.shape == (5, 1, 8, 8)
    for row, item in zip(batch, items, strict=True):  # each row is what that input gives alone
        assert torch.equal(row, to_tensor(item, size=8, channels=1)[0][0])
    assert not torch.equal(batch[0], batch[4])  # the grey image and the zeros tensor stay apart


def test_numpy_float_out_of_range_and_bad_shape() -> None:
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        to_tensor(np.full((4, 4), 200.0), size=4, channels=1)
    with pytest.raises(ImageError, match="HxW"):
        to_tensor(np.zeros((4, 4, 5), dtype=np.uint8), size=4, channels=1)
    with pytest.raises(ImageError, match=r"pass \(x \+ 1\) / 2"):  # the model's own range, as numpy
        to_tensor(np.linspace(-1, 1, 16).reshape(4, 4), size=4, channels=1)
    with pytest.raises(ImageError, match=r"channels-first: pass array\.transpose\(1, 2, 0\)"):
        to_tensor(np.zeros((3, 8, 8), dtype=np.uint8), size=8, channels=3)


def test_tensor_out_of_range_and_bad_shape() -> None:
    with pytest.raises(ImageError, match=r"scale them first"):
        to_tensor(torch.full((1, 4, 4), 255.0), size=4, channels=1)
    # slightly outside [-1, 1] is tolerated (and clamped)
    tensor, _ = to_tensor(torch.full((1, 4, 4), 1.0005), size=4, channels=1)
    assert float(tensor.max()) == 1.0
    with pytest.raises(ImageError, match=r"\[C, H, W\]"):
        to_tensor(torch.zeros(4, 4), size=4, channels=1)
    with pytest.raises(ImageError, match=r"\[C, H, W\]"):
        to_tensor(torch.zeros(2, 4, 4), size=4, channels=1)


def test_zero_one_tensor_warns_at_the_callers_line() -> None:
    import warnings

    data = torch.rand(2, 1, 6, 6)
    for geometry in ({"size": 8}, {"size": 6, "content_size": 4}):  # another size; the format of a padded model
        with pytest.warns(images.ImageRangeWarning, match=r"pass x \* 2 - 1") as record:
            to_tensor(data, channels=1, **geometry)
        assert len(record) == 1 and record[0].filename == __file__  # points at this call, not inside the package
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor, _ = to_tensor(data, size=6, channels=1)  # an unpadded model's own format is not judged
        assert torch.equal(tensor, data)  # read as given, never rescaled
        to_tensor(data * 2 - 1, size=8, channels=1)  # [-1, 1] data
        to_tensor(torch.zeros(1, 6, 6), size=8, channels=1)  # all mid-grey: nothing says it is [0, 1]
        to_tensor((data * 255).to(torch.uint8), size=8, channels=1)  # uint8 is 0..255 by definition


def test_unsupported_type_and_empty_list() -> None:
    with pytest.raises(ImageError, match="cannot use a int"):
        to_tensor(3, size=4, channels=1)  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="no images"):
        to_tensor([], size=4, channels=1)


# --------------------------------------------------------------------------- bad files


def test_corrupt_png_raises_image_error(tmp_path: Path) -> None:
    data = _png_bytes(_rgb(64, 64))
    path = tmp_path / "broken.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt") as info:
        load_image(path)
    assert "broken.png" in str(info.value)
    with pytest.raises(ImageError, match=r"broken\.png"):
        to_tensor(path, size=8, channels=3)


def test_text_file_named_png_raises_image_error(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_text("hello, I am not a picture\n")
    with pytest.raises(ImageError, match="not an image file Pillow can read") as info:
        load_image(path)
    assert "x.png" in str(info.value)
    assert isinstance(info.value, DCVAEError)


def test_a_mode_pillow_cannot_convert_raises_image_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.tif"
    Image.new("LAB", (28, 28), (50, 0, 0)).save(path)  # a real TIFF mode Pillow cannot convert to grey
    with pytest.raises(ImageError, match=r"lab\.tif: cannot convert an image of mode LAB"):
        to_tensor(path, size=32, channels=1, content_size=28)


def test_missing_file_and_folder_raise_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.png"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_png_header_claiming_huge_size_is_refused(tmp_path: Path) -> None:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)  # 10^10 grey pixels
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="decompression bomb") as info:
        load_image(path)
    assert "bomb.png" in str(info.value)


def test_pixel_limit_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "modest.png"
    Image.fromarray(_grey(20, 20)).save(path)
    assert load_image(path).size == (20, 20)
    monkeypatch.setattr(images.files, "MAX_IMAGE_PIXELS", 100)  # where load_image reads it
    with pytest.raises(ImageError, match=r"400 pixels, more than the limit 100") as info:
        load_image(path)
    assert "modest.png" in str(info.value)


def test_pillow_bomb_warning_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warned.png"
    Image.fromarray(_grey(20, 20)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 > 300 -> Pillow warns (no error until 600)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(path)


# --------------------------------------------------------------------------- expand_image_paths


def test_expand_image_paths(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt", ".d.png", ".hidden/e.png", "f.gif", "g.TIF",
                 "h.tiff"):
        (folder / name).write_bytes(b"x")
    single = tmp_path / "single.bmp"
    single.write_bytes(b"x")
    odd = tmp_path / "odd.xyz"
    odd.write_bytes(b"x")

    read_too = [folder / "f.gif", folder / "g.TIF", folder / "h.tiff"]  # read (first frame), never written
    with pytest.warns(UserWarning, match=r"left out 1 image in subfolders; pass -r/--recursive"):
        result = expand_image_paths([single, str(folder), odd])
    assert result == [single, folder / "a.JPG", folder / "b.png", *read_too, odd]
    recursive = expand_image_paths([single, str(folder), odd], recursive=True)
    assert recursive == [single, folder / "a.JPG", folder / "b.png", *read_too, folder / "sub" / "c.webp", odd]
    assert expand_image_paths(str(single)) == [single]


def test_a_folder_with_images_only_in_subfolders_says_how_to_include_them(tmp_path: Path) -> None:
    (tmp_path / "outer" / "inner").mkdir(parents=True)
    (tmp_path / "outer" / "inner" / "a.png").write_bytes(b"x")
    with pytest.raises(ImageError, match=r"subfolders hold 1: pass -r/--recursive"):
        expand_image_paths([tmp_path / "outer"])
    assert expand_image_paths([tmp_path / "outer"], recursive=True) == [tmp_path / "outer" / "inner" / "a.png"]


def test_recursive_order_is_path_order_and_symlinked_folders_are_not_entered(tmp_path: Path) -> None:
    # 'a-b' sorts before 'a/...' as a string ('-' < '/') but after 'a' as a path: rows follow Path order.
    folder = tmp_path / "data"
    for name in ("a/x/3.jpg", "a/2.PNG", "a-b/4.webp", "b.png/8.bmp", "1.png", "z.jpeg", "c/7.txt", "y.png."):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    (folder / "link").symlink_to(folder / "a", target_is_directory=True)
    (folder / "l.png").symlink_to(folder / "1.png")
    (folder / "broken.png").symlink_to(folder / "missing.png")
    found = expand_image_paths([folder], recursive=True)
    names = [p.relative_to(folder).as_posix() for p in found]
    assert names == ["1.png", "a/2.PNG", "a/x/3.jpg", "a-b/4.webp", "b.png/8.bmp", "l.png", "z.jpeg"]
    assert found == sorted(found)


def test_unreadable_folders_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder the user cannot read says so (not 'no image files'); an unreadable subfolder is left out with a
    warning naming it. (The tests run as root, which reads everything, so the OS's refusal is simulated.)"""
    import os

    folder = tmp_path / "data"
    for name in ("1.png", "locked/2.png", "open/3.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    real_scandir = os.scandir
    locked = {str(folder / "locked")}

    def scandir(path):
        if os.fspath(path) in locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.warns(UserWarning, match=r"left out the images in .*locked \(Permission denied\).*make it readable"):
        found = expand_image_paths([folder], recursive=True)
    assert [p.relative_to(folder).as_posix() for p in found] == ["1.png", "open/3.png"]
    locked.add(str(folder))
    with pytest.raises(ImageError, match=r"data: cannot read the folder \(Permission denied\); make it readable"):
        expand_image_paths([folder])


def test_expand_image_paths_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"missing\.png"):
        expand_image_paths([tmp_path / "missing.png"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ImageError, match="empty") as info:
        expand_image_paths([empty])
    assert "no image files" in str(info.value)


# --------------------------------------------------------------------------- grids


def test_make_grid_shape_and_placement() -> None:
    batch = torch.stack([torch.full((1, 3, 4), float(i) / 10) for i in range(5)])  # 5 x [1, 3, 4]
    grid = make_grid(batch, nrow=3, padding=2, pad_value=1.0)
    assert grid.shape == (1, 2 * (3 + 2) + 2, 3 * (4 + 2) + 2)
    for i in range(5):
        y = 2 + (i // 3) * 5
        x = 2 + (i % 3) * 6
        assert bool((grid[:, y : y + 3, x : x + 4] == float(i) / 10).all())
    assert bool((grid[:, :2] == 1.0).all()) and bool((grid[:, :, :2] == 1.0).all())
    assert bool((grid[:, 7:10, 14:18] == 1.0).all())  # the empty sixth cell


def test_make_grid_fewer_images_than_nrow() -> None:
    grid = make_grid(torch.zeros(2, 3, 5, 5), nrow=8, padding=0)
    assert grid.shape == (3, 5, 10)


def test_save_grid_crops_and_upscales(tmp_path: Path) -> None:
    batch = torch.full((4, 1, 32, 32), -1.0)
    batch[:, :, 2:30, 2:30] = 1.0
    path = save_grid(batch, tmp_path / "grid.png", nrow=2, content_size=28, upscale=2, padding=2)
    with Image.open(path) as image:
        assert image.size == ((2 * 30 + 2) * 2, (2 * 30 + 2) * 2)
        pixels = np.asarray(image)
    assert pixels.min() == 255  # the -1 padding was cropped away; only white content and padding remain


@pytest.mark.parametrize(("count", "columns", "rows"), [(2, 2, 1), (5, 3, 2), (9, 3, 3), (10, 4, 3)])
def test_grids_default_to_square_and_take_lists(tmp_path: Path, count: int, columns: int, rows: int) -> None:
    cells = [torch.full((1, 4, 4), -1.0 + i / 10) for i in range(count)]
    assert make_grid(torch.stack(cells), padding=0).shape == (1, rows * 4, columns * 4)
    path = save_grid(cells, tmp_path / "grid.png", padding=0)  # a list of [C, H, W], as save_gif takes
    with Image.open(path) as image:
        assert image.size == (columns * 4, rows * 4)
        pixels = np.asarray(image)
    assert np.array_equal(pixels[:4, 4:8], np.asarray(to_pil(cells[1])))  # the second image, in row 0, column 1


def _labelled_and_bare(tmp_path: Path, labels: list[str], upscale: int) -> tuple[np.ndarray, np.ndarray]:
    batch = torch.full((6, 1, 32, 32), -1.0)  # black cells: only the labels can be dark in the strip on top
    bare = save_grid(batch, tmp_path / "bare.png", nrow=3, content_size=28, upscale=upscale)
    labelled = save_grid(batch, tmp_path / "labelled.png", nrow=3, content_size=28, upscale=upscale,
                         column_labels=labels)
    with Image.open(bare) as a, Image.open(labelled) as b:
        return np.asarray(a.convert("L")), np.asarray(b.convert("L"))


@pytest.mark.parametrize("upscale", [1, 2, 4])
def test_save_grid_column_labels_sit_over_their_columns(tmp_path: Path, upscale: int) -> None:
    bare, labelled = _labelled_and_bare(tmp_path, ["original", "-2", "a label far wider than any cell"], upscale)
    header = labelled.shape[0] - bare.shape[0]
    assert labelled.shape[1] == bare.shape[1] and header > 0
    np.testing.assert_array_equal(labelled[header:], bare)  # the grid below the strip is unchanged
    strip = labelled[:header]
    cell, pitch, first = 28 * upscale, 30 * upscale, 2 * upscale
    for column in range(3):
        assert strip[:, first + column * pitch : first + column * pitch + cell].min() < 128, column  # inked
    gaps = np.ones(strip.shape[1], dtype=bool)
    for column in range(3):
        gaps[first + column * pitch : first + column * pitch + cell] = False
    assert strip[:, gaps].min() == 255  # no label spills over the padding into its neighbour's column


@pytest.mark.parametrize("upscale", [1, 3])
def test_save_grid_row_labels_sit_beside_their_rows(tmp_path: Path, upscale: int) -> None:
    batch = torch.full((6, 1, 32, 32), -1.0)  # black cells: only the labels can be dark in the strip on the left
    bare = save_grid(batch, tmp_path / "bare.png", nrow=3, content_size=28, upscale=upscale,
                     column_labels=["a", "b", "c"])
    labelled = save_grid(batch, tmp_path / "rows.png", nrow=3, content_size=28, upscale=upscale,
                         column_labels=["a", "b", "c"], row_labels=["input", "reconstruction"])
    with Image.open(bare) as a, Image.open(labelled) as b:
        bare_pixels, pixels = np.asarray(a.convert("L")), np.asarray(b.convert("L"))
    strip = pixels.shape[1] - bare_pixels.shape[1]
    assert pixels.shape[0] == bare_pixels.shape[0] and strip > 0
    np.testing.assert_array_equal(pixels[:, strip:], bare_pixels)  # column labels and grid unchanged, moved right
    header = bare_pixels.shape[0] - 2 * 30 * upscale - 2 * upscale  # the column labels' strip above the grid
    cell, pitch, first = 28 * upscale, 30 * upscale, header + 2 * upscale
    for row in range(2):
        assert pixels[first + row * pitch : first + row * pitch + cell, :strip].min() < 128, row  # inked
    assert pixels[:first, :strip].min() == 255  # nothing beside the column labels' strip
    with pytest.raises(ValueError, match="1 row labels for a grid of 2 rows"):
        save_grid(batch, tmp_path / "g.png", nrow=3, row_labels=["input"])
    with pytest.raises(ValueError, match="row_labels takes a list of labels, one per row, not one string"):
        save_grid(batch, tmp_path / "g.png", nrow=3, row_labels="ab")
    assert not (tmp_path / "g.png").exists()


def test_save_grid_refuses_a_wrong_number_of_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 column labels for a grid of 3 columns"):
        save_grid(torch.zeros(6, 1, 32, 32), tmp_path / "g.png", nrow=3, column_labels=["a", "b"])
    with pytest.raises(ValueError, match="not one string"):
        save_grid(torch.zeros(6, 1, 32, 32), tmp_path / "g.png", nrow=3, column_labels="abc")
    assert not (tmp_path / "g.png").exists()


def test_an_edit_column_is_headed_with_its_edit_where_that_fits() -> None:
    assert edit_heading([("boot", 1.0)]) == "boot +1"
    assert edit_heading([("ink", -0.5)]) == "ink -0.5"
    # too long beside "original": the strength alone, or how many directions
    assert edit_heading([("long_sleeves", -1.25)]) == "-1.25"
    assert edit_heading([("long_sleeves", 2.0), ("ink", -0.5)]) == "2 edits"
    # the limit follows the first column's heading ("decoded" for latents)
    assert edit_heading([("boot", 0.5)], beside="original") == "boot +0.5"
    assert edit_heading([("boot", 0.5)], beside="decoded") == "+0.5"


def test_strength_and_interpolation_headings_are_short_signed_and_distinct() -> None:
    assert strength_labels([-2, -0.5, 0, 1, 3]) == ["-2", "-0.5", "0", "+1", "+3"]
    assert len(set(strength_labels([10, 10.005, 10.01]))) == 3  # more digits where three would repeat one
    assert interpolation_labels(2) == ["A", "B"]
    assert interpolation_labels(5) == ["A", "0.25", "0.50", "0.75", "B"]
    many = interpolation_labels(1000)
    assert len(many) == 1000 and len(set(many)) == 1000 and many[1] == "0.001"


@pytest.mark.parametrize("font", [ImageFont.load_default(size=10), ImageFont.load_default_imagefont()],
                         ids=["freetype", "bitmap"])
def test_a_long_label_is_cut_to_its_column_with_an_ellipsis_the_font_can_draw(font) -> None:
    long = "0-3,5,7-9," * 300  # a --dims spec of 3,000 characters
    cut = shortened(font, long, 56)
    mark = "…" if isinstance(font, ImageFont.FreeTypeFont) else "..."
    assert cut.endswith(mark) and long.startswith(cut[: -len(mark)]) and len(cut) > len(mark)
    left, _, right, _ = font.getbbox(cut)
    assert right - left <= 56
    left, _, right, _ = font.getbbox(long[: len(cut) - len(mark) + 1] + mark)
    assert right - left > 56  # the longest prefix that fits, not merely one that does
    assert shortened(font, "-2", 56) == "-2" and shortened(font, long, 1) == ""


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".webp"])
def test_lossless_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    rgb = _rgb(12, 12)
    tensor, _ = to_tensor(rgb, size=12, channels=3)
    path = save_image(tensor[0], tmp_path / f"out{suffix}")
    assert path.exists()
    np.testing.assert_array_equal(np.asarray(load_image(path).convert("RGB")), rgb)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
def test_jpeg_save_and_load(tmp_path: Path, suffix: str) -> None:
    grey = np.full((16, 16), 100, dtype=np.uint8)
    grey[4:12, 4:12] = 200
    tensor, _ = to_tensor(grey, size=16, channels=1)
    path = save_image(tensor[0], tmp_path / f"out{suffix}")
    loaded = load_image(path)
    assert loaded.format == "JPEG" and loaded.size == (16, 16)
    back, _ = to_tensor(path, size=16, channels=1)
    assert float((back - tensor).abs().max()) < 0.1


def test_save_image_with_content_size(tmp_path: Path) -> None:
    grey = _grey(28, 28)
    tensor, _ = to_tensor(grey, size=32, channels=1, content_size=28)
    path = save_image(tensor[0], tmp_path / "digit.png", content_size=28)
    np.testing.assert_array_equal(np.asarray(load_image(path)), grey)


def test_save_image_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"\.png") as info:
        save_image(torch.zeros(1, 4, 4), tmp_path / "out.tiff")
    assert ".webp" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_save_gif_frame_count(tmp_path: Path) -> None:
    frames = torch.stack([torch.full((3, 8, 8), -1.0 + 0.4 * i) for i in range(4)])
    path = save_gif(frames, tmp_path / "anim.gif", duration_ms=50, upscale=2)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 4
        assert gif.size == (16, 16)
        assert gif.info.get("loop") == 0
    boomerang = save_gif(frames, tmp_path / "boomerang.gif", boomerang=True)
    with Image.open(boomerang) as gif:
        assert gif.n_frames == 6  # 0 1 2 3 2 1


def test_save_gif_refuses_frames_longer_than_a_gif_holds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="from 1 to 60000"):
        save_gif(torch.zeros(2, 1, 8, 8), tmp_path / "long.gif", duration_ms=60_001)
    # Pillow merges identical neighbours: twelve one-minute frames make one 720 s frame, past the 655.35 s field
    with pytest.raises(ImageError, match=r"at most 655\.35 s.*merges identical"):
        save_gif(torch.zeros(12, 1, 8, 8), tmp_path / "same.gif", duration_ms=60_000)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    path = save_gif(torch.zeros(2, 1, 8, 8), tmp_path / "minute.gif", duration_ms=60_000)
    with Image.open(path) as gif:
        assert gif.info["duration"] == 120_000  # the two identical frames merged, still inside the field


def test_save_gif_from_pil_with_content_size(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((32, 32), 40 * i, dtype=np.uint8)) for i in range(3)]
    path = save_gif(frames, tmp_path / "pil.gif", content_size=28)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (28, 28)
    with pytest.raises(ImageError, match=r"\.gif"):
        save_gif(frames, tmp_path / "pil.png")


# --------------------------------------------------------------------------- io_utils


def test_atomic_write_success_replaces(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "file.png"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".file.png.tmp-") and tmp.suffix == ".png"
        assert not target.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.png"]
    assert target.stat().st_mode & 0o044  # not left with the private mode of a temp file


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]

    # folders the failed write created go too; one that already existed, or gained a file meanwhile, stays
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "kept" / "new" / "deeper" / "out.bin") as tmp:
        raise RuntimeError("boom")
    assert list((tmp_path / "kept").iterdir()) == []
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "a" / "b" / "out.bin") as tmp:
        (tmp_path / "a" / "other.txt").write_text("another writer's file")
        raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["other.txt"]


def test_atomic_write_takes_any_name_the_file_system_takes_and_names_it_in_errors(tmp_path: Path) -> None:
    """The temporary's ".NAME.tmp-XXXXXXXX" made a valid 250-byte name fail; a failure names the file asked for."""
    longest = tmp_path / ("y" * 246 + ".png")  # 250 bytes: fits (the limit is 255)
    assert atomic_write_bytes(longest, b"ok").read_bytes() == b"ok"
    wide = tmp_path / ("\U0001f600" * 62 + ".png")  # 252 bytes in UTF-8, 66 characters
    assert atomic_write_bytes(wide, b"ok").read_bytes() == b"ok"
    wide.unlink()
    too_long = tmp_path / ("z" * 300 + ".png")
    with pytest.raises(OSError) as failed:
        atomic_write_bytes(too_long, b"no")
    assert failed.value.filename == str(too_long) and ".tmp-" not in str(failed.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [longest.name]


def test_failed_image_save_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="could not write"):
        save_image(torch.zeros(1, 4, 4), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes_text_and_sha256(tmp_path: Path) -> None:
    path = atomic_write_bytes(tmp_path / "a.bin", b"abc")
    assert path.read_bytes() == b"abc"
    assert sha256_file(path) == hashlib.sha256(b"abc").hexdigest()
    assert sha256_file(path, chunk=1) == hashlib.sha256(b"abc").hexdigest()
    text = atomic_write_text(tmp_path / "t.txt", "line 1\nünïcode\n")
    assert text.read_bytes() == "line 1\nünïcode\n".encode()


def test_lazy_package_names_submodules_and_dir() -> None:
    import dcvae_tools.encoding as encoding

    assert {"IMAGE_SUFFIXES", "save_grid", "files"} <= set(dir(images))
    assert images.files.IMAGE_SUFFIXES is images.IMAGE_SUFFIXES  # a submodule reachable without importing it
    assert {"read_index", "load_latents", "index"} <= set(dir(encoding))
    assert encoding.index.read_index is encoding.read_index is encoding.shards.read_index  # moved, still here
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        images.nothing  # noqa: B018


def test_safetensors_bytes_are_the_same_on_every_call_and_read_back(tmp_path: Path) -> None:
    import json

    from safetensors import safe_open

    from dcvae_tools.io_utils import safetensors_bytes, safetensors_header

    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(4, dtype=torch.float64)}
    # safetensors keeps metadata in a hash map: five keys come out in a new order on almost every call
    metadata = {f"key{i}": json.dumps({"n": i, "text": 'é "quoted"\nline', "slash": "a/b"}) for i in (3, 1, 4, 0, 2)}
    outputs = {safetensors_bytes(tensors, metadata) for _ in range(20)}
    assert len(outputs) == 1
    data = outputs.pop()
    header = safetensors_header(data, "the bytes", "")
    assert list(header["__metadata__"]) == sorted(metadata)  # the reordered header was kept, not the fallback
    path = tmp_path / "t.safetensors"
    path.write_bytes(data)
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == metadata
        assert all(torch.equal(f.get_tensor(k), v) for k, v in tensors.items())
    assert safetensors_bytes(tensors) == safetensors_bytes(tensors)  # no metadata
