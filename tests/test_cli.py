"""Tests of the ``dcvae`` command line, on a tiny checkpoint and real-looking images made here.

Most tests drive the Typer app in-process with ``CliRunner``; a few run the installed ``dcvae`` entry
point in a subprocess (help without torch, the error line, and offline use after a download from the
local Hub server of tests/hub_server.py). Nothing reaches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from typer.testing import CliRunner

from dcvae_tools import DCVAE, AttributeVector, ModelConfig, load_model, save_pretrained
from dcvae_tools.cli import app
from dcvae_tools.io_utils import sha256_file
from dcvae_tools.manifest import MANIFEST_ENV, load_manifest

LATENT_DIM = 16
CONTENT = 28  # the tiny model draws 28x28 content in a 32x32 frame, like the Fashion-MNIST models
CELL = CONTENT + 2  # a grid cell: the image plus the 2-pixel padding
REPO_ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _grid_size(cols: int, rows: int, upscale: int = 2) -> tuple[int, int]:
    """(width, height) of a saved grid of 28x28 cells (grids of 32x32 models are upscaled 2x)."""
    return ((cols * CELL + 2) * upscale, (rows * CELL + 2) * upscale)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def _latents(path: Path) -> tuple[torch.Tensor, dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("latents"), dict(f.metadata() or {})


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders left behind by a failed write."""
    return [p.name for p in folder.rglob(".*")]


def run(*args: object, env: dict[str, str] | None = None):
    """Invoke the app in-process; arguments are stringified."""
    return runner.invoke(app, [str(a) for a in args], env=env)


def ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def failed(result, *fragments: str) -> str:
    """Assert a command failed with one ``error:`` line on stderr naming ``fragments``, no traceback."""
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight grey 32x32 checkpoint (28x28 content) shipping two attributes."""
    torch.manual_seed(0)
    model = DCVAE(ModelConfig(architecture="autogan32", image_size=32, channels=1, latent_dim=LATENT_DIM,
                              content_size=CONTENT, architecture_args={"gf_dim": 16, "df_dim": 16}))
    generator = torch.Generator().manual_seed(1)
    model.attributes["bright"] = AttributeVector("bright", torch.randn(LATENT_DIM, generator=generator), 20, 20)
    model.attributes["wide"] = AttributeVector("wide", torch.randn(LATENT_DIM, generator=generator), 5, 7, True)
    return save_pretrained(model, tmp_path_factory.mktemp("ckpt") / "tiny")


def _fashion_images(count: int) -> np.ndarray:
    """``count`` Fashion-MNIST test images (uint8 [N, 28, 28]), or smooth random ones without the data."""
    try:
        from training.data import load_fashion_mnist

        return load_fashion_mnist("test")[0][:count]
    except (ImportError, FileNotFoundError):
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, size=(count, 7, 7), dtype=np.uint8)
        return np.stack([np.asarray(Image.fromarray(s).resize((28, 28), Image.Resampling.BICUBIC)) for s in small])


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 8 images: four 28x28 grey PNGs, two 40x30 RGB PNGs and two 40x30 RGB JPEGs."""
    folder = tmp_path_factory.mktemp("images")
    for i, array in enumerate(_fashion_images(8)):
        image = Image.fromarray(array)
        if i < 4:
            image.save(folder / f"{i}_grey.png")
        else:
            rgb = Image.merge("RGB", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image))
            rgb = rgb.resize((40, 30), Image.Resampling.BILINEAR)
            rgb.save(folder / (f"{i}_rgb.png" if i < 6 else f"{i}_rgb.jpg"), quality=90)
    return folder


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the manifest at a file of the test's choosing: ``manifest(data)``; no models by default."""

    def use(data: dict) -> Path:
        path = tmp_path / "weights_manifest.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        monkeypatch.setenv(MANIFEST_ENV, str(path))
        load_manifest.cache_clear()
        with pytest.warns(UserWarning, match=MANIFEST_ENV):  # the swapped trust root is announced (once: cached)
            load_manifest()
        return path

    use({"format_version": 1, "default_model": None, "models": {}})
    yield use
    monkeypatch.delenv(MANIFEST_ENV)
    load_manifest.cache_clear()


# ---------------------------------------------------------------------------- round trips


def test_encode_then_decode_equals_reconstruct(ckpt: Path, images: Path, tmp_path: Path) -> None:
    z = tmp_path / "z.safetensors"
    result = run("encode", images, "-o", z, "-m", ckpt, "-b", 3)
    ok(result)
    assert "wrote" in result.stdout
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 4 and all("40x30 RGB" in n and "converted to grey" in n for n in notes), result.stderr

    latents, meta = _latents(z)
    assert latents.shape == (8, LATENT_DIM) and latents.dtype == torch.float32
    files = json.loads(meta["files"])
    assert [Path(f).name for f in files] == sorted(p.name for p in images.iterdir())
    assert meta["model"] == str(ckpt) and json.loads(meta["sample"]) is False

    ok(run("decode", z, "-o", tmp_path / "decoded", "--grid", tmp_path / "decoded.png", "-m", ckpt, "-b", 3))
    an_image = sorted(images.iterdir())[0]
    failed(run("decode", an_image, "-o", tmp_path / "wrong", "-m", ckpt), f"{an_image} is not a readable",
           "it looks like an image: `dcvae reconstruct` takes images")
    (tmp_path / "notes.bin").write_bytes(b"not latents")
    failed(run("decode", tmp_path / "notes.bin", "-o", tmp_path / "wrong", "-m", ckpt),
           "written by `dcvae encode IMAGES -o z.safetensors`")
    failed(run("decode", images, "-o", tmp_path / "wrong", "-m", ckpt), "it holds images: `dcvae reconstruct`")
    assert not (tmp_path / "wrong").exists()
    ok(result := run("reconstruct", images, "-o", tmp_path / "recon", "--grid", tmp_path / "recon.png",
                     "-m", ckpt, "-b", 3, "-q"))
    assert result.stderr == "" and result.stdout == ""  # -q: no notes, no summary

    decoded = sorted(p.name for p in (tmp_path / "decoded").iterdir())
    assert decoded == [Path(f).stem + ".png" for f in files]  # named after the sources
    assert decoded == sorted(p.name for p in (tmp_path / "recon").iterdir())
    for name in decoded:
        with Image.open(tmp_path / "decoded" / name) as image:
            assert image.size == (CONTENT, CONTENT) and image.mode == "L"
        np.testing.assert_array_equal(_pixels(tmp_path / "decoded" / name), _pixels(tmp_path / "recon" / name))

    with Image.open(tmp_path / "decoded.png") as grid:
        assert grid.size == _grid_size(3, 3)  # 8 images, square-ish
    with Image.open(tmp_path / "recon.png") as grid:
        strip = grid.size[0] - _grid_size(8, 2)[0]  # the row labels, "input" and "reconstruction", on the left
        assert grid.size[1] == _grid_size(8, 2)[1] and strip > 0  # one row of inputs above one of reconstructions
    recon_grid = _pixels(tmp_path / "recon.png")
    first_input = np.asarray(Image.open(images / "0_grey.png"))
    np.testing.assert_array_equal(
        recon_grid[4 : 4 + 2 * CONTENT : 2, strip + 4 : strip + 4 + 2 * CONTENT : 2], first_input)
    assert recon_grid[:, :strip].min() < 128 and recon_grid[:, :strip].max() == 255  # labels inked on white
    ten = [*sorted(images.iterdir()), *sorted(images.iterdir())[:2]]  # 10 inputs: a second, partial pair of rows
    ok(run("reconstruct", *ten, "--grid", tmp_path / "wrapped.png", "-m", ckpt, "-q"))
    ok(run("reconstruct", *ten, "--grid", tmp_path / "bare.png", "--no-labels", "-m", ckpt, "-q"))
    with Image.open(tmp_path / "wrapped.png") as wrapped, Image.open(tmp_path / "bare.png") as bare:
        assert bare.size == _grid_size(8, 4) and wrapped.size == (bare.size[0] + strip, bare.size[1])
    np.testing.assert_array_equal(_pixels(tmp_path / "wrapped.png")[:, strip:], _pixels(tmp_path / "bare.png"))
    (tmp_path / "wrapped.png").unlink()
    (tmp_path / "bare.png").unlink()
    assert _leftovers(tmp_path) == []


def test_encode_sample_is_seeded(ckpt: Path, images: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = run("encode", images / "0_grey.png", images / "1_grey.png", "-o", tmp_path / f"{name}.safetensors",
                     "--sample", "--seed", 7, "-m", ckpt, "--json")
        ok(result)
    summary = json.loads(result.stdout)
    assert summary == {"output": str(tmp_path / "b.safetensors"), "count": 2, "latent_dim": LATENT_DIM,
                       "shape": [2, LATENT_DIM], "model": str(ckpt), "sample": True, "seed": 7}
    (za, meta), (zb, _) = _latents(tmp_path / "a.safetensors"), _latents(tmp_path / "b.safetensors")
    assert torch.equal(za, zb) and meta["seed"] == "7"
    ok(run("encode", images / "0_grey.png", images / "1_grey.png", "-o", tmp_path / "mean.safetensors", "-m", ckpt))
    assert not torch.equal(za, _latents(tmp_path / "mean.safetensors")[0])


def test_sample(ckpt: Path, tmp_path: Path) -> None:
    result = run("sample", "-n", 5, "--seed", 0, "-o", tmp_path / "s.png", "--out-dir", tmp_path / "s", "-m", ckpt)
    ok(result)
    assert "seed 0" in result.stdout
    with Image.open(tmp_path / "s.png") as grid:
        assert grid.size == _grid_size(3, 2)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [f"{i:05d}.png" for i in range(5)]
    ok(run("sample", "-n", 5, "--seed", 0, "-o", tmp_path / "again.png", "--upscale", 1, "--nrow", 5, "-m", ckpt))
    with Image.open(tmp_path / "again.png") as grid:
        assert grid.size == _grid_size(5, 1, upscale=1)
    np.testing.assert_array_equal(_pixels(tmp_path / "s" / "00004.png"),
                                  _pixels(tmp_path / "again.png")[2:30, 4 * CELL + 2 : 4 * CELL + 30])
    ok(run("sample", "-n", 2, "--no-clamp", "--seed", 1, "--out-dir", tmp_path / "nc", "--upscale", 3, "-m", ckpt))
    with Image.open(tmp_path / "nc" / "00000.png") as image:
        assert image.size == (3 * CONTENT, 3 * CONTENT)
    result = run("sample", "--clamp", 1, "--no-clamp", "-o", tmp_path / "x.png", "-m", ckpt)
    assert result.exit_code == 2 and "not both" in result.stderr


def test_sample_refuses_a_grid_in_the_way_before_writing_anything(ckpt: Path, tmp_path: Path) -> None:
    """A grid named like one of the samples would silently replace it; a folder where the grid goes used to fail
    only after the samples had been moved into --out-dir."""
    out = tmp_path / "sd"
    failed(run("sample", "-n", 3, "-o", out / "00000.png", "--out-dir", out, "-m", ckpt),
           f"-o {out / '00000.png'} has the name of one of the images written to --out-dir {out}")
    (tmp_path / "isdir.png").mkdir()
    failed(run("sample", "-n", 2, "-o", tmp_path / "isdir.png", "--out-dir", tmp_path / "fresh", "-m", ckpt),
           "isdir.png is a folder")
    (tmp_path / "afile").write_text("not a folder")
    failed(run("sample", "-n", 2, "--out-dir", tmp_path / "afile", "-m", ckpt), "--out-dir", "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "isdir.png"]
    assert list((tmp_path / "isdir.png").iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be caught on Windows")
def test_sigterm_leaves_no_staged_output(tmp_path: Path) -> None:
    """`timeout` and batch schedulers stop a command with SIGTERM: it must clean up like Ctrl-C does."""
    import signal

    from dcvae_tools.cli._io import _staged_dir
    from dcvae_tools.cli._output import TERMINATED_EXIT_CODE, session

    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("the test runner handles SIGTERM itself")
    with pytest.raises(SystemExit) as stopped, session(quiet=True), _staged_dir(tmp_path / "out") as stage:
        (stage / "00000.png").write_bytes(b"half of the outputs")
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler raises at the next bytecode; never reached when it works
            pass
        pytest.fail("SIGTERM did not stop the command")
    assert stopped.value.code == TERMINATED_EXIT_CODE == 143
    assert list(tmp_path.iterdir()) == []  # the staging folder and the folder it created are gone
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored for whatever runs next


def test_interpolate_images_and_latent_rows(ckpt: Path, images: Path, tmp_path: Path) -> None:
    z = tmp_path / "z.safetensors"
    ok(run("encode", images, "-o", z, "-m", ckpt))
    ok(run("interpolate", images / "0_grey.png", f"{z}:3", "--steps", 5, "--slerp", "-o", tmp_path / "strip.png",
           "--gif", tmp_path / "anim.gif", "-m", ckpt, "--no-labels"))
    with Image.open(tmp_path / "strip.png") as strip:
        assert strip.size == _grid_size(5, 1)
    with Image.open(tmp_path / "anim.gif") as gif:
        assert gif.size == (2 * CONTENT, 2 * CONTENT) and gif.n_frames >= 5
    # the ends are the reconstructions of A and B
    ok(run("reconstruct", images / "0_grey.png", images / "3_grey.png", "-o", tmp_path / "recon", "-m", ckpt))
    strip = _pixels(tmp_path / "strip.png")[::2, ::2]
    np.testing.assert_array_equal(strip[2:30, 2:30], _pixels(tmp_path / "recon" / "0_grey.png"))
    np.testing.assert_array_equal(strip[2:30, 4 * CELL + 2 : 4 * CELL + 30],
                                  _pixels(tmp_path / "recon" / "3_grey.png"))
    # the ends are checked before the model loads (-m names nothing)
    nothing = tmp_path / "nothing"
    failed(run("interpolate", f"{z}:8", f"{z}:0", "-o", tmp_path / "x.png", "-m", nothing), "row 8 is out of range")
    failed(run("interpolate", z, f"{z}:0", "-o", tmp_path / "x.png", "-m", nothing), "pick one with")
    failed(run("interpolate", f"{z}:x", f"{z}:0", "-o", tmp_path / "x.png", "-m", nothing), "must be a whole number")
    assert not (tmp_path / "x.png").exists()


def _labelled(path: Path, bare: Path) -> np.ndarray:
    """The strip on top of a labelled grid, after checking the grid below it equals the bare one."""
    labelled, plain = _pixels(path), _pixels(bare)
    header = labelled.shape[0] - plain.shape[0]
    assert labelled.shape[1] == plain.shape[1] and header > 0, (labelled.shape, plain.shape)
    np.testing.assert_array_equal(labelled[header:], plain)
    return labelled[:header]


def _inked_columns(strip: np.ndarray, columns: int) -> list[bool]:
    """For each cell column of a 2x grid (28-pixel cells), whether its part of the label strip has dark ink."""
    return [bool(strip[:, (2 + c * CELL) * 2 : (c * CELL + 30) * 2].min() < 128) for c in range(columns)]


def test_sweeps_mixes_and_interpolations_name_their_columns(ckpt: Path, images: Path, tmp_path: Path) -> None:
    one, two = images / "0_grey.png", images / "3_grey.png"
    for name, args, columns in (
        ("edit", [one, two, "-a", "bright", "--sweep=-1:1:3", "--grid"], 4),
        ("edit", [one, two, "-a", "bright=1", "--grid"], 2),  # the original, then the edit
        ("interpolate", [one, two, "--steps", 5, "-o"], 5),
        ("mix", [one, two, "--dims", "0-7", "--dims", "0-3,9", "-o"], 4),
    ):
        ok(result := run(name, *args, tmp_path / f"{name}.png", "-m", ckpt))
        ok(run(name, *args, tmp_path / f"{name}-bare.png", "-m", ckpt, "--no-labels"))
        strip = _labelled(tmp_path / f"{name}.png", tmp_path / f"{name}-bare.png")
        assert _inked_columns(strip, columns) == [True] * columns, name
    assert "with the --dims subsets 0-7; 0-3,9" in result.stdout  # in full, where a heading may be cut
    ok(run("edit", one, "-a", "bright", "--sweep=-1:1:3", "-o", tmp_path / "strips", "-m", ckpt))
    ok(run("edit", one, "-a", "bright", "--sweep=-1:1:3", "-o", tmp_path / "bare", "-m", ckpt, "--no-labels"))
    _labelled(tmp_path / "strips" / one.name, tmp_path / "bare" / one.name)  # each input's strip is labelled too
    # a single-strength edit writes plain images: nothing to label
    ok(run("edit", one, "-a", "bright=1", "-o", tmp_path / "plain", "-m", ckpt))
    assert Image.open(tmp_path / "plain" / one.name).size == (CONTENT, CONTENT)


def test_mix_grid(ckpt: Path, images: Path, tmp_path: Path) -> None:
    a = [images / f"{i}_grey.png" for i in range(3)]
    args = ["--a", a[0], "--a", a[1], "--a", a[2], "--b", images / "4_rgb.png", "--count", 4, "--seed", 0]
    ok(result := run("mix", *args, "-o", tmp_path / "mix.png", "-m", ckpt, "--no-labels"))
    assert "3 rows (A, B, 4 mixes)" in result.stdout and "8/16 dimensions, seed 0" in result.stdout
    with Image.open(tmp_path / "mix.png") as grid:
        assert grid.size == _grid_size(6, 3)
    ok(run("mix", *args, "-o", tmp_path / "again.png", "-m", ckpt, "--no-labels"))
    np.testing.assert_array_equal(_pixels(tmp_path / "mix.png"), _pixels(tmp_path / "again.png"))

    ok(run("mix", a[0], a[1], "--dims", "0-7", "--dims", "8-15", "-o", tmp_path / "dims.png", "-m", ckpt,
           "--no-labels"))
    with Image.open(tmp_path / "dims.png") as grid:
        assert grid.size == _grid_size(4, 1)
    # taking every dimension from B gives B's reconstruction
    ok(run("mix", a[0], a[1], "--dims", "0-15", "-o", tmp_path / "all.png", "-m", ckpt, "--upscale", 1, "--no-labels"))
    ok(run("reconstruct", a[1], "-o", tmp_path / "recon", "-m", ckpt))
    np.testing.assert_array_equal(_pixels(tmp_path / "all.png")[2:30, 2 * CELL + 2 : 2 * CELL + 30],
                                  _pixels(tmp_path / "recon" / "1_grey.png"))
    failed(run("mix", a[0], a[1], "--dims", "10-16", "-o", tmp_path / "x.png", "-m", ckpt), "--dims: ", "out of range")
    failed(run("mix", a[0], a[1], "--fraction", "0.01", "-o", tmp_path / "x.png", "-m", ckpt),
           "--fraction 0.01 takes none of", "16 latent dimensions", "every mix would be A")
    result = run("mix", a[0], a[1], "--a", a[2], "-o", tmp_path / "x.png", "-m", ckpt)
    assert result.exit_code == 2 and "not both" in result.stderr
    # a bad file among A's images: named, and no hint at a --skip-bad that mix does not have
    (tmp_path / "bad.png").write_bytes(b"")
    message = failed(run("mix", "--a", a[0], "--a", tmp_path / "bad.png", "--b", a[1], "-o", tmp_path / "x.png",
                         "-m", ckpt), "bad.png")
    assert "--skip-bad" not in message


def test_mix_takes_latents_as_they_are(ckpt: Path, images: Path, tmp_path: Path) -> None:
    greys = [images / f"{i}_grey.png" for i in range(3)]
    z, shards = tmp_path / "z.safetensors", tmp_path / "shards"
    ok(run("encode", *greys, "-o", z, "-m", ckpt))
    ok(run("encode", *greys, "-o", shards, "-m", ckpt))
    ok(run("reconstruct", *greys, "-o", tmp_path / "recon", "-m", ckpt))
    recon = [_pixels(tmp_path / "recon" / grey.name).astype(np.int16) for grey in greys]

    def cell(grid: Path, row: int, col: int) -> np.ndarray:
        return _pixels(grid)[row * CELL + 2 : row * CELL + 30, col * CELL + 2 : col * CELL + 30].astype(np.int16)

    # every row of a latents file as A (shown decoded), one row of a sharded folder as B; all of B's dims taken
    result = run("mix", z, f"{shards}:1", "--dims", "0-15", "-o", tmp_path / "m.png", "-m", ckpt, "--upscale", 1,
                 "--no-labels")
    ok(result)
    assert "3 rows (A, B, 1 mix)" in result.stdout
    assert Image.open(tmp_path / "m.png").size == _grid_size(3, 3, upscale=1)
    for row in range(3):
        assert np.abs(cell(tmp_path / "m.png", row, 0) - recon[row]).max() <= 1  # A: its latent decoded
        assert np.abs(cell(tmp_path / "m.png", row, 1) - recon[1]).max() <= 1  # B
        assert np.abs(cell(tmp_path / "m.png", row, 2) - recon[1]).max() <= 1  # every dimension from B
    # an image and latent rows on one side keep their order; B's rows pair with A's
    ok(run("mix", "--a", greys[2], "--a", f"{z}:0", "--a", f"{z}:1", "--b", shards, "--dims", "0-15",
           "-o", tmp_path / "n.png", "-m", ckpt, "--upscale", 1, "--no-labels"))
    assert np.abs(cell(tmp_path / "n.png", 0, 0) - _pixels(greys[2]).astype(np.int16)).max() <= 1  # shown as is
    for row, shown in enumerate([None, 0, 1]):
        assert np.abs(cell(tmp_path / "n.png", row, 1) - recon[row]).max() <= 1  # B's row, decoded
        assert np.abs(cell(tmp_path / "n.png", row, 2) - recon[row]).max() <= 1
        if shown is not None:
            assert np.abs(cell(tmp_path / "n.png", row, 0) - recon[shown]).max() <= 1

    # names are taken literally when they exist ('a:1.png' is an image) and split at the last ':' otherwise
    shutil.copy(greys[0], tmp_path / "a:1.png")
    shutil.copy(z, tmp_path / "a:b.safetensors")
    ok(run("mix", tmp_path / "a:1.png", f"{tmp_path / 'a:b.safetensors'}:2", "--dims", "0-15", "-o", tmp_path / "c.png",
           "-m", ckpt, "--upscale", 1, "--no-labels"))
    assert np.abs(cell(tmp_path / "c.png", 0, 2) - recon[2]).max() <= 1

    # one A with every row of B: one row per B, each A's latent with all of B's row's dimensions
    ok(result := run("mix", greys[0], shards, "--dims", "0-15", "-o", tmp_path / "one-a.png", "-m", ckpt,
                     "--upscale", 1, "--no-labels"))
    assert "3 rows (A, B, 1 mix)" in result.stdout
    for row in range(3):
        assert np.abs(cell(tmp_path / "one-a.png", row, 0) - _pixels(greys[0]).astype(np.int16)).max() <= 1
        assert np.abs(cell(tmp_path / "one-a.png", row, 1) - recon[row]).max() <= 1  # B's row, decoded
        assert np.abs(cell(tmp_path / "one-a.png", row, 2) - recon[row]).max() <= 1

    # every input is counted and checked before the model loads (-m names nothing)
    nothing = tmp_path / "nothing"
    failed(run("mix", "--a", z, "--b", greys[0], "--b", greys[1], "-o", tmp_path / "x.png", "-m", nothing),
           "A has 3 rows and B has 2")
    failed(run("mix", "--a", greys[0], "--a", f"{z}:0", "--b", shards, "-o", tmp_path / "x.png", "-m", nothing),
           "A has 2 rows and B has 3")
    for bad in ("x", "-1", "\u00b3", "\u0663", ""):  # superscript three and an Arabic-Indic three are not rows
        failed(run("mix", f"{z}:{bad}", greys[0], "-o", tmp_path / "x.png", "-m", nothing), "must be a whole number")
    failed(run("mix", f"{shards}:3", greys[0], "-o", tmp_path / "x.png", "-m", nothing), "out of range (0-2)")
    failed(run("mix", f"{z}:3", greys[0], "-o", tmp_path / "x.png", "-m", nothing), "row 3 is out of range (0-2)")
    failed(run("mix", tmp_path / "gone.safetensors", greys[0], "-o", tmp_path / "x.png", "-m", nothing),
           "gone.safetensors: no such latents file")
    failed(run("mix", f"{tmp_path / 'gone.safetensors'}:x", greys[0], "-o", tmp_path / "x.png", "-m", nothing),
           "gone.safetensors: no such latents file")
    save_file({"latents": torch.zeros(0, LATENT_DIM)}, str(tmp_path / "empty.safetensors"))
    failed(run("mix", greys[0], tmp_path / "empty.safetensors", "-o", tmp_path / "x.png", "-m", nothing),
           "empty.safetensors holds no latents (0 rows)")
    # a row asked of a folder whose index.json is broken says so (without a row it is an image folder)
    broken = shutil.copytree(images, tmp_path / "broken-index", ignore=shutil.ignore_patterns("*rgb*", "*broken*"))
    (broken / "index.json").write_text("{not json")
    failed(run("mix", f"{broken}:0", greys[0], "-o", tmp_path / "x.png", "-m", nothing), "is not readable JSON")
    assert not (tmp_path / "x.png").exists()


def test_attribute_then_edit(ckpt: Path, images: Path, tmp_path: Path) -> None:
    vectors = tmp_path / "attributes.safetensors"
    result = run("attribute", "-p", images / "0_grey.png", "-p", images / "1_grey.png", "-n", images / "2_grey.png",
                 "--name", "dark", "-o", vectors, "-m", ckpt, "--json")
    ok(result)
    summary = json.loads(result.stdout)
    assert summary["num_positive"] == 2 and summary["num_negative"] == 1 and summary["attributes"] == ["dark"]
    assert "warning: 2 positive and 1 negative examples" in result.stderr and "20 of each" in result.stderr
    ok(run("attribute", "-p", images, "-n", images / "3_grey.png", "--name", "tall", "--normalize",
           "-o", vectors, "--append", "-m", ckpt))
    with safe_open(str(vectors), framework="pt") as f:
        assert sorted(f.keys()) == ["dark", "tall"]
        assert abs(float(f.get_tensor("tall").norm()) - 1.0) < 1e-5

    # the direction is the difference of the posterior means
    three = [images / "0_grey.png", images / "1_grey.png", images / "2_grey.png"]
    ok(run("encode", *three, "-o", tmp_path / "z.safetensors", "-m", ckpt))
    z = _latents(tmp_path / "z.safetensors")[0]
    with safe_open(str(vectors), framework="pt") as f:
        torch.testing.assert_close(f.get_tensor("dark"), z[:2].mean(0) - z[2], rtol=1e-5, atol=1e-5)

    ok(run("edit", images, "-a", f"{vectors}:dark=1.5", "-a", "wide=-1", "-o", tmp_path / "edited", "-m", ckpt))
    edited = sorted((tmp_path / "edited").iterdir())
    assert len(edited) == 8 and all(Image.open(p).size == (CONTENT, CONTENT) for p in edited)

    result = run("edit", images, "-a", "bright", "--sweep=-2:2:5", "-o", tmp_path / "strips", "--grid",
                 tmp_path / "sweep.png", "-m", ckpt, "--no-labels")
    ok(result)
    assert "bright at -2, -1, 0, 1, 2" in result.output and "the original image, then those strengths" in result.output
    strips = sorted((tmp_path / "strips").iterdir())
    assert len(strips) == 8 and all(Image.open(p).size == _grid_size(6, 1) for p in strips)
    with Image.open(tmp_path / "sweep.png") as grid:
        assert grid.size == _grid_size(6, 8)  # rows = inputs, columns = original + 5 strengths
    # strength 0 is the plain reconstruction
    ok(run("edit", images / "0_grey.png", "-a", "bright=0", "-o", tmp_path / "zero", "-m", ckpt))
    ok(run("reconstruct", images / "0_grey.png", "-o", tmp_path / "recon", "-m", ckpt))
    np.testing.assert_array_equal(_pixels(tmp_path / "zero" / "0_grey.png"), _pixels(tmp_path / "recon" / "0_grey.png"))

    failed(run("edit", images, "-a", vectors, "-o", tmp_path / "x", "-m", ckpt), "holds 2 attributes", "dark, tall")
    failed(run("edit", images, "-a", "smile", "-o", tmp_path / "x", "-m", ckpt), "unknown attribute 'smile'",
           "bright, wide")
    failed(run("edit", images, "-a", f"{vectors}:nope", "-o", tmp_path / "x", "-m", ckpt), "no attribute 'nope'")
    assert not (tmp_path / "x").exists()
    result = run("edit", images, "-a", "bright=2", "--sweep", "-1:1:3", "-o", tmp_path / "x", "-m", ckpt)
    assert result.exit_code == 2 and "drop =STRENGTH" in result.stderr
    result = run("edit", images, "-a", "bright=lots", "-o", tmp_path / "x", "-m", ckpt)
    assert result.exit_code == 2 and "cannot read the strength" in result.stderr
    result = run("edit", images, "-a", "bright=inf", "-o", tmp_path / "x", "-m", ckpt)
    assert result.exit_code == 2 and "must be a finite number" in result.stderr, result.stderr
    failed(run("edit", images, "-a", "brigth", "-o", tmp_path / "x", "-m", ckpt), "did you mean 'bright'?")


def test_info(ckpt: Path, tmp_path: Path) -> None:
    result = run("info", "-m", ckpt, "--json")
    ok(result)
    report = json.loads(result.stdout)
    assert report["source"] == "local" and report["verified"] is False
    assert report["config"]["latent_dim"] == LATENT_DIM and report["config"]["content_size"] == CONTENT
    assert [(a["name"], a["num_positive"], a["num_negative"], a["normalized"]) for a in report["attributes"]] == [
        ("bright", 20, 20, False), ("wide", 5, 7, True)]
    files = {f["name"]: f for f in report["files"]}
    assert sorted(files) == ["README.md", "attributes.safetensors", "config.json", "model.safetensors"]
    for name, entry in files.items():
        assert entry["sha256"] == sha256_file(ckpt / name) and entry["size"] == (ckpt / name).stat().st_size
    ok(run("encode", REPO_ROOT / "docs" / "examples" / "fashion-mnist" / "tshirt.png", "-o", tmp_path / "t.safetensors",
           "-m", ckpt))
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:  # the hash latents record
        assert report["weights_sha256"] == f.metadata()["weights_sha256"]
    result = run("info", "-m", ckpt)
    ok(result)
    assert "latent dim    16" in result.stdout and "attributes (2)" in result.stdout
    assert f"weights hash  {report['weights_sha256']}" in result.stdout
    assert "wide" in result.stdout and files["model.safetensors"]["sha256"] in result.stdout
    positional = run("info", ckpt, "--json")  # as `dcvae download NAME` takes it
    ok(positional)
    assert json.loads(positional.stdout) == report
    result = run("info", ckpt, "-m", tmp_path / "other")
    assert result.exit_code == 2 and "name two checkpoints: give one of them" in result.stderr, result.stderr


def test_models_empty_manifest(manifest) -> None:
    result = run("models", "--json")
    ok(result)
    assert json.loads(result.stdout) == {"default_model": None, "models": []}
    ok(result := run("models"))
    assert "no released models" in result.stdout


# ---------------------------------------------------------------------------- errors


def _write_corrupt_inputs(folder: Path, good: Path) -> dict[str, Path]:
    data = (good / "0_grey.png").read_bytes()
    truncated = folder / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    text = folder / "notes.png"
    text.write_text("not a picture\n")
    wrong = folder / "wrong.safetensors"
    save_file({"latents": torch.randn(3, LATENT_DIM + 1)}, str(wrong))
    (folder / "empty").mkdir()
    return {"truncated": truncated, "text": text, "wrong": wrong, "empty": folder / "empty"}


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing file", ["missing.png", "no such file"]),
        ("truncated png", ["truncated.png", "truncated or corrupt"]),
        ("text file named .png", ["notes.png", "not an image file"]),
        ("wrong latent dimension", ["wrong.safetensors", "[3, 17]", "needs [N, 16]"]),
        ("missing latents", ["gone.safetensors", "no such latents file"]),
        ("unknown model", ["no model 'no-such-model'"]),
        ("empty attribute folder", ["empty", "no image files"]),
        ("offline without cache", ["nobody/nothing", "not in the local cache"]),
        ("no default model", ["no default model", "--model"]),
        ("no cuda", ["CUDA is not available"]),
        ("meta device", ["--device meta", "the meta device holds no data", "--device cpu"]),
    ],
)
def test_errors_are_one_line(case: str, fragments: list[str], ckpt: Path, images: Path, tmp_path: Path,
                             manifest) -> None:
    bad = _write_corrupt_inputs(tmp_path, images)
    out = tmp_path / "out"
    z = tmp_path / "z.safetensors"
    commands = {
        "missing file": ["encode", images / "0_grey.png", tmp_path / "missing.png", "-o", z, "-m", ckpt],
        "truncated png": ["encode", bad["truncated"], "-o", z, "-m", ckpt],
        "text file named .png": ["reconstruct", bad["text"], "-o", out, "-m", ckpt],
        "wrong latent dimension": ["decode", bad["wrong"], "-o", out, "-m", ckpt],
        "missing latents": ["decode", tmp_path / "gone.safetensors", "--grid", tmp_path / "g.png", "-m", ckpt],
        "unknown model": ["encode", images, "-o", z, "-m", "no-such-model"],
        "empty attribute folder": ["attribute", "-p", bad["empty"], "-n", images, "--name", "x", "-o", z,
                                   "-m", ckpt],
        "offline without cache": ["info", "-m", "nobody/nothing", "--offline", "--cache-dir", tmp_path / "hf"],
        "no default model": ["encode", images, "-o", z],
        "no cuda": ["encode", images, "-o", z, "-m", ckpt, "--device", "cuda"],
        "meta device": ["encode", images, "-o", z, "-m", ckpt, "--device", "meta"],
    }
    if case == "no cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    failed(run(*commands[case]), *fragments)
    assert not z.exists() and not out.exists() and not (tmp_path / "g.png").exists()
    assert _leftovers(tmp_path) == []


def test_debug_keeps_the_traceback(ckpt: Path, tmp_path: Path) -> None:
    from dcvae_tools.errors import ImageError

    result = run("encode", tmp_path / "missing.png", "-o", tmp_path / "z.safetensors", "-m", ckpt, "--debug")
    assert isinstance(result.exception, ImageError)
    result = run("encode", tmp_path / "missing.png", "-o", tmp_path / "z.safetensors", "-m", ckpt,
                 env={"DCVAE_DEBUG": "1"})
    assert isinstance(result.exception, ImageError)


def test_usage_errors_exit_2(ckpt: Path, images: Path, tmp_path: Path) -> None:
    for args, fragment in [
        (["decode", tmp_path / "z.safetensors", "-m", ckpt],
         "nothing to write: give -o OUT_DIR, --grid GRID.png or both"),
        (["sample", "-m", ckpt], "nothing to write: give -o GRID.png, --out-dir DIR or both"),
        (["encode", images, "-o", tmp_path / "z.npy", "-m", ckpt], "must end in .safetensors"),
        (["reconstruct", images, "--grid", tmp_path / "grid.tiff", "-m", ckpt], "must end in one of"),
        (["attribute", "-p", images, "-n", images, "--name", "a:b", "-o", tmp_path / "a.safetensors"], "'a:b'"),
        (["mix", images / "0_grey.png", "-o", tmp_path / "m.png"], "expected two arguments A and B, got 1"),
        (["mix", images / "0_grey.png", images / "1_grey.png", images / "2_grey.png", "-o", tmp_path / "m.png"],
         f"got 3 ({images / '2_grey.png'} beyond A and B); use --a/--b for lists"),
        (["mix", images / "0_grey.png", images / "1_grey.png", "-o", tmp_path / "m.png", "--seed", 2**64], "--seed"),
        (["sample", "-o", tmp_path / "s.png", "--seed", 2**64], "--seed"),
        (["sample", "-o", tmp_path / "s.png", "--clamp", "1e39"], "use --no-clamp"),
        (["reconstruct", images, "-o", tmp_path / "out.png", "-m", ckpt],
         f"or --grid {tmp_path / 'out.png'} for one grid image"),
        (["sample", "--out-dir", tmp_path / "s.png", "-m", ckpt], f"or -o {tmp_path / 's.png'} for one grid image"),
    ]:
        result = run(*args)
        assert result.exit_code == 2 and fragment in result.stderr, (args, result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_leaves_no_output(ckpt: Path, images: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(images, inputs)
    data = (images / "0_grey.png").read_bytes()
    (inputs / "5_broken.png").write_bytes(data[:100])  # sorted among the good ones: batches before it succeed
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    commands = [
        ["reconstruct", inputs, "-o", tmp_path / "recon", "--grid", tmp_path / "grid.png"],
        ["reconstruct", inputs, "-o", existing],
        ["edit", inputs, "-a", "bright", "--sweep=-1:1:3", "-o", tmp_path / "edited"],
        ["encode", inputs, "-o", tmp_path / "z.safetensors"],
    ]
    for args in commands:
        failed(run(*args, "-m", ckpt, "-b", 2), "5_broken.png", "truncated or corrupt", "pass --skip-bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "inputs"]
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- the user's files are safe


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_outputs_never_replace_the_commands_own_inputs(ckpt: Path, images: Path, tmp_path: Path) -> None:
    mine = shutil.copytree(images, tmp_path / "mine")
    before = _snapshot(mine)
    one, two = mine / "0_grey.png", mine / "1_grey.png"
    failed(run("reconstruct", mine, "-o", mine, "-m", ckpt), "would overwrite the input", "0_grey.png")
    failed(run("reconstruct", one, "--grid", one, "-m", ckpt), "--grid", "would overwrite the input")
    failed(run("edit", mine, "-a", "bright", "-o", mine, "-m", ckpt), "would overwrite the input")
    failed(run("interpolate", one, two, "-o", two, "-m", ckpt), "would overwrite the input", "1_grey.png")
    failed(run("mix", one, two, "-o", one, "-m", ckpt), "would overwrite the input", "0_grey.png")
    # decoding next to the images the latents were encoded from would replace them with their reconstructions
    ok(run("encode", mine, "-o", tmp_path / "z.safetensors", "-m", ckpt))
    failed(run("decode", tmp_path / "z.safetensors", "-o", mine, "-m", ckpt), "would overwrite the input")
    assert _snapshot(mine) == before and not _leftovers(mine)
    ok(run("decode", tmp_path / "z.safetensors", "-o", tmp_path / "decoded", "-m", ckpt))  # elsewhere: fine
    assert sorted(p.name for p in (tmp_path / "decoded").iterdir()) == sorted(f"{Path(n).stem}.png" for n in before)


def test_an_output_folder_is_all_or_nothing_when_a_name_is_taken_by_a_folder(
    ckpt: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "1_grey.png").mkdir(parents=True)
    greys = [images / f"{i}_grey.png" for i in range(4)]  # model-format files: no conversion notes
    message = failed(run("reconstruct", *greys, "-o", out, "-m", ckpt), "is a folder", "1_grey.png")
    assert ".dcvae-tmp" not in message  # names the user's path, not the staging folder
    assert sorted(p.name for p in out.iterdir()) == ["1_grey.png"]  # no output moved in, nothing left over


def test_attribute_keeps_the_other_attributes_of_its_output_file(ckpt: Path, images: Path, tmp_path: Path) -> None:
    vectors = tmp_path / "attrs.safetensors"
    pos, neg = ["-p", images / "0_grey.png"], ["-n", images / "1_grey.png"]
    ok(run("attribute", *pos, *neg, "--name", "dark", "-o", vectors, "-m", ckpt))
    kept = vectors.read_bytes()
    swapped = ["-p", images / "1_grey.png", "-n", images / "0_grey.png"]
    result = run("attribute", *swapped, "--name", "light", "-o", vectors, "-m", ckpt)
    assert result.exit_code == 2 and "already holds dark" in result.stderr and "pass --append" in result.stderr
    assert "'-o'" in result.stderr and "'--append'" not in result.stderr  # blames the output, not an unused option
    assert vectors.read_bytes() == kept
    ok(run("attribute", *swapped, "--name", "dark", "-o", vectors, "-m", ckpt))  # the same name: a re-run
    with safe_open(str(vectors), framework="pt") as f:
        assert list(f.keys()) == ["dark"]
        assert not torch.equal(f.get_tensor("dark"), load_safetensors(kept)["dark"])  # replaced: the sides swapped
    # a file that is not an attributes file (here latents) is never overwritten by one
    ok(run("encode", images / "0_grey.png", "-o", tmp_path / "z.safetensors", "-m", ckpt))
    latents = (tmp_path / "z.safetensors").read_bytes()
    failed(run("attribute", *pos, *neg, "--name", "x", "-o", tmp_path / "z.safetensors", "-m", ckpt),
           "is not an attributes file")
    assert (tmp_path / "z.safetensors").read_bytes() == latents
    # the same images on both sides give no direction at all
    result = run("attribute", *pos, "-n", images / "0_grey.png", "--name", "none", "-o", tmp_path / "n.safetensors",
                 "-m", ckpt)
    assert result.exit_code == 1
    assert "error: the positive and negative examples have the same mean latent" in result.stderr
    assert not (tmp_path / "n.safetensors").exists()


def test_nothing_is_written_into_the_loaded_models_folder(ckpt: Path, images: Path) -> None:
    """Adding a direction to a release's own attributes file would make the release fail its hash check forever."""
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    pos, neg = ["-p", images / "0_grey.png"], ["-n", images / "1_grey.png"]
    failed(run("attribute", *pos, *neg, "--name", "mine", "-o", ckpt / "attributes.safetensors", "--append",
               "-m", ckpt), "is in the folder of the model loaded", "my_attributes.safetensors:mine")
    failed(run("encode", images / "0_grey.png", "-o", ckpt / "z.safetensors", "-m", ckpt),
           "is in the folder of the model loaded")
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before


def test_nothing_is_written_into_another_models_folder(ckpt: Path, images: Path, tmp_path: Path) -> None:
    """Forgetting -m while aiming at another release's attributes file must not break that release."""
    other = tmp_path / "other"
    shutil.copytree(ckpt, other)
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    pos, neg = ["-p", images / "0_grey.png"], ["-n", images / "1_grey.png"]
    failed(run("attribute", *pos, *neg, "--name", "mine", "-o", other / "attributes.safetensors", "--append",
               "-m", ckpt), f"would replace a file of the checkpoint in {other.resolve()}",
           "my_attributes.safetensors:mine")
    failed(run("encode", images / "0_grey.png", "-o", other / "model.safetensors", "-m", ckpt),
           "would replace a file of the checkpoint")
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    # a name no release file has replaces nothing there (any folder with a config.json and a model.safetensors,
    # a transformers model's too, looks like a checkpoint)
    ok(run("encode", images / "0_grey.png", "-o", other / "my_latents.safetensors", "-m", ckpt))


def test_a_file_in_the_way_of_an_output_folder_is_refused_before_any_work(ckpt: Path, images: Path,
                                                                          tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    one, two = images / "0_grey.png", images / "1_grey.png"
    failed(run("interpolate", one, two, "-o", tmp_path / "strip.png", "--gif", blocker / "anim.gif", "-m", ckpt),
           f"{blocker} is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_grid_named_like_one_of_the_folders_images_is_refused(ckpt: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    failed(run("reconstruct", images / "0_grey.png", images / "1_grey.png", "-o", out, "--grid", out / "1_grey.png",
               "-m", ckpt), "has the name of one of the images written to -o")
    assert not out.exists()


def test_a_failed_command_removes_the_output_folders_it_made(ckpt: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    (tmp_path / "kept").mkdir()
    failed(run("reconstruct", bad, "-o", tmp_path / "out" / "a" / "b", "-m", ckpt), "bad.png")
    failed(run("reconstruct", bad, "-o", tmp_path / "kept" / "a" / "b", "-m", ckpt), "bad.png")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["bad.png", "kept"]


def test_staged_files_appear_together_or_not_at_all(tmp_path: Path) -> None:
    import contextlib

    from dcvae_tools.cli._io import _staged_file

    first, second = tmp_path / "strip.png", tmp_path / "anim.gif"
    first.write_bytes(b"old")
    with pytest.raises(RuntimeError), contextlib.ExitStack() as stack:
        stack.enter_context(_staged_file(first)).write_bytes(b"new strip")
        stack.enter_context(_staged_file(second)).write_bytes(b"half a gif")
        raise RuntimeError("the second write failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strip.png"] and first.read_bytes() == b"old"
    with contextlib.ExitStack() as stack:
        stack.enter_context(_staged_file(first)).write_bytes(b"new strip")
        stack.enter_context(_staged_file(second)).write_bytes(b"gif")
    assert first.read_bytes() == b"new strip" and second.read_bytes() == b"gif"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif", "strip.png"]


def test_an_image_too_large_for_its_format_is_a_message_and_writes_nothing(ckpt: Path, tmp_path: Path) -> None:
    grid, folder = tmp_path / "grid.webp", tmp_path / "samples"
    failed(run("sample", "-n", 600, "--nrow", 600, "-o", grid, "--out-dir", folder, "--seed", 0, "-m", ckpt),
           "WEBP holds at most 16383 pixels a side", "write a .png")
    assert sorted(tmp_path.iterdir()) == []


def test_latents_and_directions_of_another_model_warn(ckpt: Path, images: Path, tmp_path: Path) -> None:
    torch.manual_seed(5)  # another model with the same latent size: shapes alone cannot tell them apart
    other = save_pretrained(DCVAE(ModelConfig(architecture="autogan32", image_size=32, channels=1,
                                              latent_dim=LATENT_DIM, content_size=CONTENT,
                                              architecture_args={"gf_dim": 16, "df_dim": 16})), tmp_path / "other")
    z, vectors = tmp_path / "z.safetensors", tmp_path / "attrs.safetensors"
    ok(run("encode", images / "0_grey.png", images / "1_grey.png", "-o", z, "-m", ckpt))
    ok(run("attribute", "-p", images / "0_grey.png", "-n", images / "1_grey.png", "--name", "dark", "-o", vectors,
           "-m", ckpt))
    warning = "made by model"
    for args in (["decode", z, "--grid", tmp_path / "d.png"],
                 ["interpolate", f"{z}:0", f"{z}:1", "-o", tmp_path / "i.png"],
                 ["edit", images / "2_grey.png", "-a", f"{vectors}:dark", "-o", tmp_path / "e"]):
        result = run(*args, "-m", other)
        ok(result)
        assert warning in result.stderr and f"pass -m {ckpt}" in result.stderr, result.stderr
        result = run(*args, "-m", ckpt)
        ok(result)
        assert warning not in result.stderr


def test_other_weights_are_told_by_their_hash_not_their_name(ckpt: Path, images: Path, tmp_path: Path) -> None:
    one, two = images / "0_grey.png", images / "1_grey.png"
    base = shutil.copytree(ckpt, tmp_path / "base")
    z, shards = tmp_path / "z.safetensors", tmp_path / "shards"
    ok(run("encode", one, two, "-o", z, "-m", base))
    ok(run("encode", one, two, "-o", shards, "-m", base))
    with safe_open(str(z), framework="pt") as f:
        recorded = f.metadata()["weights_sha256"]
    assert recorded == json.loads((shards / "index.json").read_text())["model"]["weights_sha256"]
    vectors = tmp_path / "attrs.safetensors"
    ok(run("attribute", "-p", one, "-n", two, "--name", "dark", "-o", vectors, "-m", base))
    # a file from before the hash was recorded is judged by its recorded name
    with safe_open(str(z), framework="pt") as f:
        old_metadata = {k: v for k, v in f.metadata().items() if k not in ("weights_sha256", "working_dir")}
        old = tmp_path / "old.safetensors"
        save_file({"latents": f.get_tensor("latents")}, str(old), metadata=old_metadata)
    # the same weights under another name (a copy, as a release is also known by its repo id): no warning
    copy = shutil.copytree(base, tmp_path / "copy")
    for args in (["interpolate", f"{z}:0", f"{z}:1", "-o", tmp_path / "i.png"],
                 ["interpolate", f"{shards}:0", f"{shards}:1", "-o", tmp_path / "i.png"],
                 ["edit", one, "-a", f"{vectors}:dark", "-o", tmp_path / "e"]):
        result = run(*args, "-m", copy)
        ok(result)
        assert "made by" not in result.stderr, result.stderr
    result = run("decode", old, "--grid", tmp_path / "d.png", "-m", copy)
    ok(result)
    assert "made by model" in result.stderr and f"pass -m {base}" in result.stderr, result.stderr
    # other weights in the copy: recorded as base's, loaded as copy's
    torch.manual_seed(6)
    retrained = save_pretrained(DCVAE(ModelConfig.from_bytes((base / "config.json").read_bytes())),
                                tmp_path / "retrained")
    shutil.copy(retrained / "model.safetensors", copy / "model.safetensors")
    for args in (["decode", z, "--grid", tmp_path / "d.png"],
                 ["decode", shards, "--grid", tmp_path / "d.png"],
                 ["interpolate", f"{shards}:0", two, "-o", tmp_path / "i.png"],
                 ["edit", one, "-a", f"{vectors}:dark", "-o", tmp_path / "f"]):
        result = run(*args, "-m", copy)
        ok(result)
        assert "whose weights differ" in result.stderr and f"pass -m {base}" in result.stderr, result.stderr
    # base itself retrained in place: the name matches, the weights do not
    shutil.copy(retrained / "model.safetensors", base / "model.safetensors")
    result = run("decode", z, "--grid", tmp_path / "d.png", "-m", base)
    ok(result)
    assert f"made by another version of {str(base)!r}" in result.stderr, result.stderr
    failed(run("interpolate", f"{shards}:x", two, "-o", tmp_path / "j.png", "-m", base), "whole number", "got 'x'")
    failed(run("interpolate", f"{shards}:2", two, "-o", tmp_path / "j.png", "-m", base), "row 2 is out of range",
           "(0-1)")
    # an image whose name only starts like DIR:ROW is an image, not a row
    (tmp_path / "shards:v2").mkdir()
    shutil.copy(one, tmp_path / "shards:v2" / "a.png")
    ok(run("interpolate", f"{shards}:v2/a.png", two, "-o", tmp_path / "k.png", "-m", base))


def test_encode_never_replaces_files_that_are_not_its_own(ckpt: Path, images: Path, tmp_path: Path) -> None:
    one = images / "0_grey.png"
    model = shutil.copytree(ckpt, tmp_path / "model")
    weights = (model / "model.safetensors").read_bytes()
    failed(run("encode", one, "-o", model / "model.safetensors", "-m", model), "in the folder of the model")
    failed(run("encode", one, "-o", model / "z.safetensors", "-m", model), "in the folder of the model")
    assert (model / "model.safetensors").read_bytes() == weights and not (model / "z.safetensors").exists()
    ok(run("encode", one, "-o", model / "latents" / "z.safetensors", "-m", model))  # a subfolder replaces nothing
    # another model's weights elsewhere, or any other file, are not latents: refused, named, left as they were
    other = shutil.copy(model / "model.safetensors", tmp_path / "weights.safetensors")
    message = failed(run("encode", one, "-o", other, "-m", ckpt), "is not a latents file", "more")
    assert message.count(",") < 10  # a few tensor names, not all of them
    notes = tmp_path / "notes.safetensors"
    notes.write_text("my notes")
    failed(run("encode", one, "-o", notes, "-m", ckpt), "not a safetensors file")
    assert Path(other).read_bytes() == weights and notes.read_text() == "my notes"
    # latents from an earlier run are replaced, as a re-run should
    ok(run("encode", one, "-o", tmp_path / "z.safetensors", "-m", ckpt))
    ok(run("encode", images / "1_grey.png", "-o", tmp_path / "z.safetensors", "-m", ckpt))
    # a folder without an index whose shard-named file is the user's own
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "shard-00000.safetensors").write_text("mine")
    failed(run("encode", one, "-o", tmp_path / "mine", "-m", ckpt), "not a latents shard written by")
    assert (tmp_path / "mine" / "shard-00000.safetensors").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["shard-00000.safetensors"]
    # a single file inside a sharded folder would leave its index pointing at other bytes
    ok(run("encode", one, "-o", tmp_path / "shards", "-m", ckpt))
    failed(run("encode", one, "-o", tmp_path / "shards" / "shard-00000.safetensors", "-m", ckpt),
           "in the sharded latents folder")
    # the same model given by another folder (same weights) continues a sharded encoding instead of refusing it
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    index["model"]["name"] = "as-an-older-version-recorded-it"
    (tmp_path / "shards" / "index.json").write_text(json.dumps(index))
    result = run("encode", one, "-o", tmp_path / "shards", "-m", model, "--json")
    ok(result)
    assert json.loads(result.stdout)["shards_kept"] == 1


def test_local_models_are_recorded_by_their_absolute_folder(ckpt: Path, images: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copytree(ckpt, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "sub")
    ok(run("encode", images / "0_grey.png", images / "1_grey.png", "-o", "z.safetensors", "-m", "../copy"))
    with safe_open("z.safetensors", framework="pt") as f:
        assert f.metadata()["model"] == str((tmp_path / "copy").resolve())
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(7)
    retrained = save_pretrained(DCVAE(ModelConfig.from_bytes((ckpt / "config.json").read_bytes())), tmp_path / "r")
    shutil.copy(retrained / "model.safetensors", tmp_path / "copy" / "model.safetensors")
    result = run("decode", "sub/z.safetensors", "--grid", "d.png", "-m", "./copy")  # the same folder, named anew
    ok(result)
    assert f"another version of {str((tmp_path / 'copy').resolve())!r}" in result.stderr, result.stderr
    torch.manual_seed(8)
    other = save_pretrained(DCVAE(ModelConfig.from_bytes((ckpt / "config.json").read_bytes())), tmp_path / "other")
    result = run("decode", "sub/z.safetensors", "--grid", "d.png", "-m", other)
    ok(result)
    assert f"pass -m {(tmp_path / 'copy').resolve()}" in result.stderr, result.stderr  # a path that works here


def test_edit_takes_latents_as_they_are(ckpt: Path, images: Path, tmp_path: Path) -> None:
    greys = [images / f"{i}_grey.png" for i in range(3)]
    z, shards = tmp_path / "z.safetensors", tmp_path / "shards"
    ok(run("encode", *greys, "-o", z, "-m", ckpt))
    ok(run("encode", *greys, "-o", shards, "-m", ckpt))
    model = load_model(str(ckpt))
    latents = load_safetensors(z.read_bytes())["latents"] + 0.5  # not what encoding the images again would give
    save_file({"latents": latents}, str(z), metadata={"format": "pt", "files": json.dumps([str(g) for g in greys])})
    ok(run("edit", z, "-a", "bright=1.5", "-o", tmp_path / "edited", "-m", ckpt))
    expected = model.to_pil(model.edit(latents, {"bright": 1.5}, unit="raw"))
    for grey, image in zip(greys, expected, strict=True):  # named after the sources, edited from the given latents
        assert np.abs(_pixels(tmp_path / "edited" / grey.name) - np.asarray(image, dtype=np.int16)).max() <= 1
    ok(run("edit", shards, "-a", "bright", "--sweep=-1:1:3", "--grid", tmp_path / "sweep.png", "-m", ckpt,
           "--no-labels"))
    assert Image.open(tmp_path / "sweep.png").size == _grid_size(4, 3)  # the decoding, then 3 strengths
    for given, extra, fragment in ((z, [greys[0]], "give one latents file"),
                                   (z, ["--refine", "5"], "holds latents already"),
                                   (f"{z}:1", [], "edit takes every row of a latents file or folder; drop ':1'"),
                                   (f"{z}:x", [], "the row after ':' must be a whole number")):
        result = run("edit", given, *extra, "-a", "bright", "-o", tmp_path / "x", "-m", ckpt)
        assert result.exit_code == 2 and fragment in result.stderr, result.stderr
    failed(run("edit", z, "-a", "bright", "-o", images, "-m", ckpt), "would overwrite the input")
    assert not (tmp_path / "x").exists()
    # latents without recorded sources give numbered outputs, each the edit of its row
    save_file({"latents": latents}, str(z), metadata={"format": "pt"})
    ok(run("edit", z, "-a", "bright=1.5", "-o", tmp_path / "numbered", "-m", ckpt))
    for i, image in enumerate(expected):
        assert np.abs(_pixels(tmp_path / "numbered" / f"{i:05d}.png") - np.asarray(image, dtype=np.int16)).max() <= 1
    # a folder of images that happens to hold some other index.json is images, not latents
    gallery = shutil.copytree(images, tmp_path / "gallery", ignore=shutil.ignore_patterns("*rgb*", "*broken*"))
    (gallery / "index.json").write_text('{"title": "my pictures"}')
    ok(run("edit", gallery, "-a", "bright", "-o", tmp_path / "gallery-edited", "-m", ckpt))
    ok(run("encode", gallery, "-o", gallery / "z.safetensors", "-m", ckpt))  # nor is its folder a sharded one
    assert sorted(p.name for p in (tmp_path / "gallery-edited").iterdir()) == sorted(
        p.name for p in gallery.iterdir() if p.suffix == ".png")


def test_a_released_name_in_a_file_is_not_a_local_folder_of_that_name(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    name = load_manifest().default_model
    monkeypatch.chdir(tmp_path)
    shutil.copytree(load_manifest().models[name].bundled_dir, tmp_path / name)  # a local folder sharing the name
    latents = torch.zeros(1, json.loads((tmp_path / name / "config.json").read_text())["latent_dim"])
    save_file({"latents": latents}, "old.safetensors", metadata={"format": "pt", "model": name})  # no hash: old
    result = run("decode", "old.safetensors", "--grid", "d.png", "-m", f"./{name}", env={"HF_HUB_OFFLINE": "1"})
    ok(result)
    assert f"made by model {name!r}" in result.stderr and f"pass -m {name}" in result.stderr, result.stderr
    result = run("decode", "old.safetensors", "--grid", "d.png", "-m", name, env={"HF_HUB_OFFLINE": "1"})
    ok(result)
    assert "made by" not in result.stderr, result.stderr


def test_decode_protects_the_originals_from_any_working_folder(ckpt: Path, images: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    mine = shutil.copytree(images, work / "mine")
    before = _snapshot(mine)
    monkeypatch.chdir(work)
    ok(run("encode", "mine", "-o", "z.safetensors", "-m", ckpt))  # sources recorded relative to work/
    ok(run("encode", "mine", "-o", "shards", "-m", ckpt))
    monkeypatch.chdir(tmp_path)  # from here "mine/0_grey.png" does not exist, but work/mine is the same folder
    for latents in (work / "z.safetensors", work / "shards"):
        failed(run("decode", latents, "-o", mine, "-m", ckpt), "would overwrite the input", "0_grey.png")
    assert _snapshot(mine) == before and not _leftovers(mine)
    ok(run("decode", work / "z.safetensors", "-o", tmp_path / "decoded", "-m", ckpt))
    # the working folder is recorded only where the paths need it: absolute paths say it all
    ok(run("encode", mine.resolve(), "-o", tmp_path / "abs.safetensors", "-m", ckpt))
    ok(run("encode", mine.resolve(), "-o", tmp_path / "abs", "-m", ckpt))
    with safe_open(str(tmp_path / "abs.safetensors"), framework="pt") as f:
        assert "working_dir" not in f.metadata()
    assert "working_dir" not in json.loads((tmp_path / "abs" / "index.json").read_text())
    # continuing a sharded encoding of relative paths from another folder could mix other files in: refused
    shutil.copytree(images, tmp_path / "mine")  # the same relative names here, other files
    index = (work / "shards" / "index.json").read_bytes()
    failed(run("encode", "mine", "-o", work / "shards", "-m", ckpt), "relative paths made from", str(work))
    assert (work / "shards" / "index.json").read_bytes() == index


def test_arguments_that_would_exhaust_memory_are_refused_at_once(ckpt: Path, images: Path, tmp_path: Path) -> None:
    one, two = images / "0_grey.png", images / "1_grey.png"
    failed(run("mix", one, two, "--dims", "0-999999999999", "-o", tmp_path / "m.png", "-m", ckpt),
           "out of range", f"0-{LATENT_DIM - 1}")
    for sweep, words in (("0:1:100000", "at most 64"), ("nan:1:3", "finite"), ("3:-2:0", "COUNT must be at least 1")):
        result = run("edit", one, "-a", "bright", "--sweep", sweep, "--grid", tmp_path / "s.png", "-m", ckpt)
        assert result.exit_code == 2 and "'--sweep'" in result.stderr and words in result.stderr, result.stderr
    ok(run("encode", one, two, "-o", tmp_path / "z.safetensors", "-m", ckpt))
    failed(run("interpolate", f"{tmp_path / 'z.safetensors'}:-1", two, "-o", tmp_path / "i.png", "-m", ckpt),
           "whole number", "got '-1'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.safetensors"]


def test_a_shipped_attribute_name_wins_over_a_stray_file(ckpt: Path, images: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bright").write_text("not an attributes file")
    ok(run("edit", images / "0_grey.png", "-a", "bright", "-o", tmp_path / "e", "-m", ckpt))
    failed(run("edit", images / "0_grey.png", "-a", "./bright", "-o", tmp_path / "f", "-m", ckpt),
           "not a readable")


def test_an_image_or_latents_file_given_as_attributes_is_named_for_what_it_is(ckpt: Path, images: Path,
                                                                              tmp_path: Path) -> None:
    ok(run("encode", images / "0_grey.png", images / "1_grey.png", "-o", tmp_path / "z.safetensors", "-m", ckpt))
    failed(run("edit", images / "0_grey.png", "-a", f"{images / '1_grey.png'}:x", "-o", tmp_path / "e", "-m", ckpt),
           "is an image, not an attributes file", "dcvae attribute -p POSITIVE")
    failed(run("edit", images / "0_grey.png", "-a", f"{tmp_path / 'z.safetensors'}:x", "-o", tmp_path / "e",
               "-m", ckpt), "is a latents file (2 rows, as `dcvae encode` writes), not an attributes file")
    assert not (tmp_path / "e").exists()


# ---------------------------------------------------------------------------- the installed entry point


def _dcvae() -> list[str]:
    exe = shutil.which("dcvae")
    return [exe] if exe else [sys.executable, "-c", "from dcvae_tools.cli import main; main()"]


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "DCVAE_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR and MASTER_PORT are not set"),
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a whole number"),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "RANK=2 with WORLD_SIZE=2"),
        ({"RANK": "3"}, "RANK=3 with WORLD_SIZE=1 is not a torchrun process"),
        ({"WORLD_SIZE": "0"}, "RANK=0 with WORLD_SIZE=0"),
        ({"LOCAL_WORLD_SIZE": "x"}, "LOCAL_WORLD_SIZE='x' is not a whole number"),
    ],
)
def test_a_torchrun_environment_that_cannot_work_is_one_error_and_no_output(env: dict[str, str], fragment: str,
                                                                          ckpt: Path, images: Path,
                                                                          tmp_path: Path) -> None:
    """Left over from another job's shell, these variables used to give an internal error (and an empty folder)."""
    out = tmp_path / "z"
    proc = subprocess.run([*_dcvae(), "encode", str(images / "0_grey.png"), "-o", str(out), "-m", str(ckpt)],
                          capture_output=True, text=True, env=_subprocess_env(**env), timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert "Error:" not in lines[0]  # the message alone, not an exception's class name
    assert not out.exists()


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`dcvae models | head -1`: stdout's reader closes its end before the table is written (here, at once)."""
    proc = subprocess.Popen([*_dcvae(), "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_subprocess_env(HF_HUB_OFFLINE="1"), cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, stderr
    assert stderr == ""


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dcvae_tools.cli import app\n"
        "for args in (['--help'], ['encode', '--help'], ['edit', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'safetensors') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch" not in proc.stdout, proc.stdout  # an eager import anywhere on the --help path is the regression


def test_argument_errors_come_before_torch_loads(tmp_path: Path) -> None:
    """A mistyped argument is answered at once: none of these loads torch (about 2 s) before refusing."""
    image = tmp_path / "a.png"
    Image.new("L", (32, 32)).save(image)
    cases = [
        (["edit", image, "-a", "long_sleeves=abc", "-o", tmp_path / "x"], 2, "cannot read the strength"),
        (["edit", image, "-a", "long_sleeves", "--grid", tmp_path / "g.txt"], 2, "must end in one of"),
        (["reconstruct", image, "-o", tmp_path / "r", "--refine", "-3"], 2, "is not a number of steps"),
        (["encode", image, "-o", tmp_path / "z.txt"], 2, "must end in .safetensors"),
        (["interpolate", image, image, "-o", tmp_path / "i.txt"], 2, "must end in one of"),
        (["mix", image, image, "-o", tmp_path / "m.txt"], 2, "must end in one of"),
        (["decode", tmp_path / "none.safetensors", "-o", tmp_path / "out"], 1, "no such latents file"),
        (["decode", tmp_path, "-o", tmp_path / "out"], 1, "it holds images"),
        (["interpolate", "none.safetensors:0", image, "-o", tmp_path / "i.png"], 1, "no such latents file"),
        (["interpolate", image, tmp_path / "none.png", "-o", tmp_path / "i.png"], 1, "no such file or folder"),
        (["mix", image, image, "-o", tmp_path / "m.png", "--dims", "a-b"], 2, "write indices like '0-15,40'"),
        (["mix", image, image, "-o", tmp_path / "m.png", "--dims", "5-2"], 2, "runs backwards: write it as '2-5'"),
        (["edit", image, "-a", "long_sleeves", "--sweep", "abc", "--grid", tmp_path / "g.png"], 2, "cannot read sweep"),
        (["reconstruct", tmp_path / "none.png", "-o", tmp_path / "r"], 1, "no such file or folder"),
        (["encode", tmp_path / "none.png", "-o", tmp_path / "z.safetensors"], 1, "no such file or folder"),
    ]
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from dcvae_tools.cli import app\n"
        "for args, code, words in json.loads(sys.argv[1]):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert (result.exit_code, words in result.output) == (code, True), (args, result.output)\n"
        "    assert 'torch' not in sys.modules, args\n"
    )
    cases_json = json.dumps([([str(a) for a in args], code, words) for args, code, words in cases])
    proc = subprocess.run([sys.executable, "-c", code, cases_json], capture_output=True, text=True,
                          env=_subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_entry_point_help_and_error_line(tmp_path: Path) -> None:
    proc = subprocess.run([*_dcvae(), "--help"], capture_output=True, text=True, env=_subprocess_env(), timeout=120)
    assert proc.returncode == 0
    for command in ("models", "download", "info", "encode", "decode", "reconstruct", "sample", "interpolate",
                    "mix", "attribute", "edit"):
        assert f"  {command} " in proc.stdout
    proc = subprocess.run([*_dcvae(), "decode", str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=_subprocess_env(), timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: {tmp_path / 'none.safetensors'}: no such latents file; write one with "
        "`dcvae encode IMAGES -o none.safetensors`"
    ]
    assert not (tmp_path / "out").exists()


def test_download_of_a_local_folder_is_called_verified_only_when_it_matches_a_release(
    ckpt: Path, tmp_path: Path
) -> None:
    result = run("download", ckpt, "--json")
    ok(result)
    assert json.loads(result.stdout)["verified"] is False
    result = run("download", ckpt)
    ok(result)
    assert f"loaded {ckpt} (local), not verified: a local folder" in result.stderr
    assert f"\nverified {ckpt}" not in result.stderr
    copy = shutil.copytree(load_manifest().models["mnist-32"].bundled_dir, tmp_path / "copy")
    result = run("download", copy)
    ok(result)
    assert f"\nverified {copy} (local)" in result.stderr
    with (copy / "README.md").open("a") as card:
        card.write("edited\n")  # no longer the released files: loads, but is not called verified
    result = run("download", copy, "--json")
    ok(result)
    assert json.loads(result.stdout)["verified"] is False


def test_download_from_local_hub_then_offline(ckpt: Path, local_hub, tmp_path: Path, manifest) -> None:
    commit = local_hub.add_revision("dcvae-test/tiny", ckpt)
    cache = tmp_path / "hf" / "hub"
    result = run("download", "dcvae-test/tiny", "--cache-dir", cache, env={"HF_ENDPOINT": local_hub.endpoint})
    ok(result)
    folder = Path(result.stdout.strip())
    assert folder.name == commit and folder.is_relative_to(cache)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in ckpt.iterdir())
    assert "verified dcvae-test/tiny" in result.stderr

    seen = len(local_hub.requests)
    env = _subprocess_env(HF_ENDPOINT=local_hub.endpoint, HF_HOME=str(tmp_path / "hf"),
                          NO_PROXY=",".join(["127.0.0.1", os.environ.get("NO_PROXY", "")]).rstrip(","))
    proc = subprocess.run([*_dcvae(), "info", "-m", "dcvae-test/tiny", "--offline", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["source"] == "hub" and report["revision"] == commit and report["verified"] is True
    assert {f["name"]: f["sha256"] for f in report["files"]} == {p.name: sha256_file(p) for p in ckpt.iterdir()}
    assert len(local_hub.requests) == seen, local_hub.requests  # offline: the server was not asked anything

    # the models table knows what is cached
    entry = {"repo_id": "dcvae-test/tiny", "revision": commit, "dataset": "Fashion-MNIST", "resolution": 32,
             "channels": 1, "latent_dim": LATENT_DIM, "architecture": "autogan32", "preset": "tiny",
             "files": {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size} for p in ckpt.iterdir()},
             "metrics": {"fid_sample": 123.4, "fd10k_classifier": 19.94}}
    elsewhere = {**entry, "repo_id": "nobody/nothing"}
    manifest({"format_version": 1, "default_model": "tiny", "models": {"tiny": entry, "other": elsewhere}})
    result = run("models", "--json", "--cache-dir", cache)
    ok(result)
    listed = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert listed["tiny"]["cached"] is True and listed["tiny"]["default"] is True
    assert listed["other"]["cached"] is False and listed["other"]["location"] == "hub"
    ok(result := run("models", "--cache-dir", cache))
    assert "tiny (default)" in result.stdout and "fid_sample 123.4, " in result.stdout
    assert "fd10k_classifier 19.94 (N(0, I) samples as in the paper)" in result.stdout  # not the fitted prior's samples


def test_folders_are_not_descended_into_unless_asked(ckpt: Path, tmp_path: Path) -> None:
    """`dcvae encode docs/examples` used to pick up the MNIST digits below it and encode them silently."""
    source = REPO_ROOT / "docs" / "examples" / "fashion-mnist"
    folder = tmp_path / "examples"
    (folder / "digits").mkdir(parents=True)
    for name in ("tshirt.png", "coat.png"):
        (folder / name).write_bytes((source / name).read_bytes())
    (folder / "digits" / "sneaker.png").write_bytes((source / "sneaker.png").read_bytes())

    top = tmp_path / "top.safetensors"
    result = run("encode", folder, "-o", top, "-m", ckpt)
    ok(result)
    assert "left out 1 image in subfolders" in result.stderr and "-r/--recursive" in result.stderr
    assert [Path(f).name for f in json.loads(_latents(top)[1]["files"])] == ["coat.png", "tshirt.png"]

    everything = tmp_path / "all.safetensors"
    ok(run("encode", folder, "-r", "-o", everything, "-m", ckpt))
    assert len(json.loads(_latents(everything)[1]["files"])) == 3


def test_a_failed_write_names_the_users_file_not_the_temporary_one(ckpt: Path, tmp_path: Path) -> None:
    """A real write failure (the file-size limit, EFBIG) while the grid is written."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        f"sys.argv = ['dcvae', 'sample', '-n', '64', '--seed', '0', '-o', 'big.png', '-m', {str(ckpt)!r}]\n"
        "from dcvae_tools.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == ["error: big.png: could not write the image (File too large)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_counts_are_in_the_right_number(ckpt: Path, tmp_path: Path) -> None:
    result = run("sample", "-n", "1", "--seed", "0", "--out-dir", tmp_path / "one", "-m", ckpt)
    ok(result)
    assert "sampled 1 image from N(0, I) with seed 0" in result.stdout and "1 image in" in result.stdout
    result = run("sample", "-n", "1", "-m", ckpt)
    assert result.exit_code == 2 and "Error: nothing to write: give -o GRID.png, --out-dir DIR or both" in result.output


def test_info_json_is_standard_json_even_with_a_nan_metric(ckpt: Path, tmp_path: Path) -> None:
    folder = tmp_path / "nan-metric"
    shutil.copytree(ckpt, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["metrics"] = {"fid": float("nan"), "mse": 0.01}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")  # Python writes NaN; JSON has none
    result = run("info", folder, "--json")
    ok(result)

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON: {constant}")

    info = json.loads(result.stdout, parse_constant=refuse)
    assert info["config"]["metrics"] == {"fid": None, "mse": 0.01}, info["config"]


def test_info_shows_the_bundled_models_metrics() -> None:
    """Plain `dcvae info` on a checkpoint that records metrics (the bundled ones do; test checkpoints do not)."""
    result = run("info", "--offline")
    ok(result)
    assert "verified      yes" in result.stdout and "recon_mse_test" in result.stdout
