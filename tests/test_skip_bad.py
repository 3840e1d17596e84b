"""``--skip-bad`` on the batch commands (encode, reconstruct, edit, attribute): a folder of good and bad files.

Without the flag the first bad file stops the command with one error line and no output; with it the bad
files are left out, each is listed at the end (file and reason), the final line counts them and the
output's metadata records them (the latents file for ``encode``, the attribute's metadata for
``attribute``). If every file is bad the command fails and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_inputs import image_bytes
from PIL import Image
from safetensors import safe_open
from typer.testing import CliRunner

from dcvae_tools.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
ENV = {"HF_HUB_OFFLINE": "1", "DCVAE_DEBUG": None}
GOOD = ("a.png", "c.jpg", "e.bmp")
BAD = {  # name -> (content, a fragment of the reason)
    "b.png": (lambda: image_bytes("PNG")[:600], "truncated or corrupt"),
    "d.jpg": (lambda: b"just some text\n", "not an image file"),
    "f.webp": (lambda: b"", "not an image file"),
}


def _folder(root: Path, good: bool = True) -> Path:
    """Six images, sorted a..f: good and bad alternating (three bad ones only with ``good=False``)."""
    folder = root / "photos"
    folder.mkdir()
    formats = {".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP"}
    if good:
        for name in GOOD:
            (folder / name).write_bytes(image_bytes(formats[Path(name).suffix]))
    for name, (make, _) in BAD.items():
        (folder / name).write_bytes(make())
    return folder


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args], env=ENV)


def _check_report(result, skipped_count: int = 3) -> None:
    """Each bad file on its own warning line with its reason, and the count in the final line."""
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped ")]
    assert len(warnings) == skipped_count, result.stderr
    for name, (_, reason) in BAD.items():
        line = next(w for w in warnings if f"/{name}:" in w)
        assert reason in line, line
    assert f"skipped {skipped_count} bad files (listed above)" in result.stdout.strip().splitlines()[-1]


def _check_refused(result, out: Path, first_bad: str = "b.png") -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and first_bad in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


def test_encode_skip_bad(tmp_path: Path) -> None:
    folder, out = _folder(tmp_path), tmp_path / "out"
    z = out / "z.safetensors"
    _check_refused(_run("encode", folder, "-o", z), out)

    result = _run("encode", folder, "-o", z, "--skip-bad")
    _check_report(result)
    with safe_open(str(z), framework="pt") as f:
        latents, metadata = f.get_tensor("latents"), f.metadata()
    assert latents.shape == (3, 64)
    assert [Path(p).name for p in json.loads(metadata["files"])] == list(GOOD)
    skipped = json.loads(metadata["skipped"])
    assert [Path(s["file"]).name for s in skipped] == list(BAD)
    assert all(BAD[Path(s["file"]).name][1] in s["reason"] for s in skipped)

    report = json.loads(_run("encode", folder, "-o", z, "--skip-bad", "--json").stdout)
    assert report["count"] == 3 and [Path(s["file"]).name for s in report["skipped"]] == list(BAD)
    quiet = _run("encode", folder, "-o", z, "--skip-bad", "-q")
    assert quiet.exit_code == 0 and quiet.stderr.count("warning: skipped ") == 3, quiet.stderr


def test_encode_skip_bad_without_bad_files_records_an_empty_list(tmp_path: Path) -> None:
    z = tmp_path / "z.safetensors"
    good = tmp_path / "a.png"
    good.write_bytes(image_bytes("PNG"))
    result = _run("encode", good, "-o", z, "--skip-bad")
    assert result.exit_code == 0 and "skipped" not in result.stdout, result.output
    with safe_open(str(z), framework="pt") as f:
        assert json.loads(f.metadata()["skipped"]) == []


def test_an_image_mode_pillow_cannot_convert_is_skipped_like_a_bad_file(tmp_path: Path) -> None:
    good, lab, z = tmp_path / "a.png", tmp_path / "lab.tif", tmp_path / "z.safetensors"
    good.write_bytes(image_bytes("PNG"))
    Image.new("LAB", (28, 28), (50, 0, 0)).save(lab)
    result = _run("encode", lab, good, "-o", z, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "lab.tif: cannot convert an image of mode LAB" in result.stderr and "internal error" not in result.output
    with safe_open(str(z), framework="pt") as f:
        assert f.get_tensor("latents").shape[0] == 1


def test_reconstruct_skip_bad(tmp_path: Path) -> None:
    folder, out = _folder(tmp_path), tmp_path / "out"
    recon, grid = out / "recon", out / "grid.png"
    _check_refused(_run("reconstruct", folder, "-o", recon, "--grid", grid), out)

    _check_report(_run("reconstruct", folder, "-o", recon, "--grid", grid, "--skip-bad", "-b", "2"))
    assert sorted(p.name for p in recon.iterdir()) == ["a.png", "c.png", "e.png"]
    assert grid.is_file()


def test_edit_skip_bad(tmp_path: Path) -> None:
    folder, out = _folder(tmp_path), tmp_path / "out"
    edited = out / "edited"
    _check_refused(_run("edit", folder, "-a", "long_sleeves=1", "-o", edited), out)

    _check_report(_run("edit", folder, "-a", "long_sleeves", "--sweep", "-1:1:3", "-o", edited, "--skip-bad"))
    assert sorted(p.name for p in edited.iterdir()) == ["a.png", "c.png", "e.png"]


def test_attribute_skip_bad(tmp_path: Path) -> None:
    folder, out = _folder(tmp_path), tmp_path / "out"
    negative = tmp_path / "negative.png"
    negative.write_bytes(image_bytes("PNG"))
    attrs = out / "attrs.safetensors"
    args = ("attribute", "-p", folder, "-n", negative, "--name", "probe", "-o", attrs)
    refused = _run(*args)
    assert refused.exit_code == 1 and "b.png" in refused.stderr.splitlines()[-1] and not attrs.exists()

    _check_report(_run(*args, "--skip-bad"))
    with safe_open(str(attrs), framework="pt") as f:
        info = json.loads(f.metadata()["attributes"])["probe"]
    assert info["num_positive"] == 3 and info["num_negative"] == 1
    assert [Path(p).name for p in info["metadata"]["positive"]] == list(GOOD)
    assert [Path(s["file"]).name for s in info["metadata"]["skipped"]] == list(BAD)


@pytest.mark.parametrize("command", ["encode", "reconstruct", "edit", "attribute"])
def test_skip_bad_with_only_bad_files_fails(tmp_path: Path, command: str) -> None:
    folder, out = _folder(tmp_path, good=False), tmp_path / "out"
    out.mkdir()
    args = {
        "encode": ("encode", folder, "-o", out / "z.safetensors"),
        "reconstruct": ("reconstruct", folder, "-o", out / "recon"),
        "edit": ("edit", folder, "-a", "long_sleeves", "-o", out / "edited"),
        "attribute": ("attribute", "-p", folder, "-n", folder, "--name", "x", "-o", out / "a.safetensors"),
    }[command]
    result = _run(*args, "--skip-bad")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: all 3 ") and "unreadable" in lines[-1] and "b.png" in lines[-1], lines
    assert sum(line.startswith("warning: skipped ") for line in lines) == 3, lines
    assert "Traceback" not in result.output
    assert not any(out.iterdir()), sorted(out.rglob("*"))


def test_skip_bad_still_refuses_missing_paths(tmp_path: Path) -> None:
    result = _run("encode", tmp_path / "nope.png", "-o", tmp_path / "z.safetensors", "--skip-bad")
    assert result.exit_code == 1 and "nope.png" in result.stderr and "no such file" in result.stderr
