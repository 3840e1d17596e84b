"""The wheel carries the inference toolkit, the manifest, every bundled checkpoint and the trainer (as
``dcvae_tools.training``), and nothing else; installed on its own, its ``dcvae-train`` trains."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from site import getsitepackages

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation when hatchling is here (fast, offline); else pip fetches it into an isolated env.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{result.stderr[-2000:]}")
    (path,) = out.glob("dcvae_tools-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel(wheel_path) -> zipfile.ZipFile:
    return zipfile.ZipFile(wheel_path)


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


def test_wheel_ships_training_only_inside_the_package_and_no_pickles(wheel):
    names = wheel.namelist()
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"dcvae_tools", next(t for t in top_level if t.endswith(".dist-info"))}
    assert not [n for n in names if n.startswith(("training/", "benchmarks/", "tests/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".ckpt", ".bin"))]
    # Every file of the checkout's training/ (code and whatever else it reads at run time) under dcvae_tools/.
    tracked = subprocess.run(["git", "ls-files", "training"], cwd=REPO, capture_output=True, text=True)
    shipped = [p.relative_to(REPO).as_posix() for p in (REPO / "training").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    expected = tracked.stdout.split() if tracked.returncode == 0 and tracked.stdout.strip() else shipped
    assert "training/cli.py" in expected
    missing = [f for f in expected if f"dcvae_tools/{f}" not in names and (REPO / f).exists()]
    assert not missing, f"not in the wheel: {missing}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "dcvae = dcvae_tools.cli:main" in text
    assert "dcvae-train = dcvae_tools._train_entry:main" in text


def test_training_imports_its_own_modules_relatively():
    """The wheel ships training/ as dcvae_tools.training: an absolute ``training.…`` import (lazy ones included)
    would find nothing there, or the wrong package."""
    absolute = []
    for path in sorted((REPO / "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            absolute += [f"{path.relative_to(REPO)}:{node.lineno}" for n in names if n.split(".")[0] == "training"]
    assert not absolute, f"absolute imports of training: {absolute}"


def test_train_entry_uses_the_checkouts_training_package():
    import training.cli
    from dcvae_tools import _train_entry

    assert _train_entry._training_main() is training.cli.main


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_wheel_trains_outside_the_checkout(wheel_path, tmp_path):
    """``pip install dcvae-tools[train]`` (here: the wheel, dependencies reused from this environment) gives a
    ``dcvae-train`` that runs the installed ``dcvae_tools.training``, from a folder outside the repository."""
    venv = tmp_path / "venv"
    # System site-packages (or, below, this venv's) for pip, torch & co.; the new venv's own site-packages comes
    # first on sys.path, so its dcvae_tools shadows the editable one.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    train = bin_dir / ("dcvae-train.exe" if os.name == "nt" else "dcvae-train")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1")

    if sys.prefix != sys.base_prefix:  # run from a venv: its packages (torch & co.) are not the system's; add them
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work, env)
        lines = [f"import site; site.addsitedir({d!r})\n" for d in getsitepackages()]
        (Path(purelib.stdout.strip()) / "_outer_environment.pth").write_text("".join(lines))

    # --ignore-installed: install next to (never uninstall) the editable dcvae-tools of this environment.
    installed = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                      wheel_path], work, env)
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = _run([python, "-c", "import json, sysconfig, dcvae_tools, dcvae_tools.training as t; print(json.dumps("
                  "[sysconfig.get_paths()['purelib'], dcvae_tools.__file__, t.__file__]))"], work, env)
    assert where.returncode == 0, where.stderr[-2000:]
    site, package_file, training_file = (Path(p).resolve() for p in json.loads(where.stdout))
    assert site.is_relative_to(venv.resolve())
    assert package_file == site / "dcvae_tools" / "__init__.py"
    assert training_file == site / "dcvae_tools" / "training" / "__init__.py"
    for generic in ("training", "benchmarks", "tests"):
        assert not (site / generic).exists(), f"the wheel installed a top-level {generic!r}"

    shown = _run([train, "--help"], work, env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "train" in shown.stdout and "export" in shown.stdout

    images = work / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype="uint8")).save(images / f"{i}.png")
    run_dir = work / "run"
    # The console script itself, run by a wrapper that then lists the trainer's modules it imported.
    wrapper = work / "wrapper.py"
    wrapper.write_text(
        "import json, runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n"
        "    names = {m: getattr(sys.modules[m], '__file__', None) for m in list(sys.modules)}\n"
        "    with open('modules.json', 'w') as f:\n"
        "        json.dump({m: p for m, p in names.items() if 'training' in m.split('.')}, f)\n"
    )
    trained = _run([python, wrapper, train, "train", "--preset", "tiny", "--device", "cpu", "--no-progress",
                    "--set", f"dataset=folder:{images}", "--set", "total_iterations=2", "--run-dir", run_dir],
                   work, env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run_dir / "checkpoint.pt").is_file()
    modules = json.loads((work / "modules.json").read_text())
    assert {"dcvae_tools.training.cli", "dcvae_tools.training.training_loop"} <= modules.keys()
    assert not [m for m in modules if m.split(".")[0] == "training"], "the checkout's training package ran"
    assert all(Path(f).resolve().is_relative_to(site) for f in modules.values() if f), modules
    assert not (work / "training").exists()

    # Without the bundled trainer, the installed script says what to do: the checkout's training/ (still on
    # sys.path through the editable install) belongs to another copy of dcvae_tools and is not run.
    shutil.rmtree(site / "dcvae_tools" / "training")
    missing = _run([train, "--help"], work, env)
    assert missing.returncode == 1
    assert 'pip install "dcvae-tools[train]"' in missing.stderr
