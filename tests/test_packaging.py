"""The wheel carries the inference toolkit, the manifest and every bundled checkpoint, and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{result.stderr[-2000:]}")
    (path,) = out.glob("dcvae_tools-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_has_manifest_and_bundled_checkpoints(wheel):
    names = set(wheel.namelist())
    assert "dcvae_tools/weights_manifest.json" in names
    manifest = json.loads(wheel.read("dcvae_tools/weights_manifest.json"))
    assert manifest == json.loads((REPO / "weights_manifest.json").read_text())
    for name, entry in manifest["models"].items():
        if entry["bundled"]:
            for filename, info in entry["files"].items():
                member = f"dcvae_tools/weights/{name}/{filename}"
                assert member in names, f"bundled {member} missing from the wheel"
                assert wheel.getinfo(member).file_size == info["size"]


def test_wheel_ships_no_training_code_and_no_pickles(wheel):
    names = wheel.namelist()
    assert not [n for n in names if n.startswith("training/")]
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".ckpt", ".bin"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "dcvae = dcvae_tools.cli:main" in text
