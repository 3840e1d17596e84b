"""Sharded, resumable, torchrun-ready encoding (dcvae_tools.encoding and `dcvae encode -o DIR`).

All on a tiny random-weight checkpoint and 40 small PNGs. The sharded folder must hold exactly the rows of the
single-file encoding; interrupted runs (a process killed with SIGKILL while blocked on an input, a bad image
without --skip-bad, a corrupted shard) must resume to the same result without rewriting finished shards; a
re-run with other settings is refused; two torchrun processes write the same folder as one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from typer.testing import CliRunner

from dcvae_tools import DCVAE, ModelConfig, load_model, save_pretrained
from dcvae_tools.cli import app
from dcvae_tools.encoding import encode_files, load_latents, read_index
from dcvae_tools.io_utils import sha256_file

pytestmark = pytest.mark.usefixtures("one_thread")

REPO_ROOT = Path(__file__).resolve().parents[1]
COUNT = 40
runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _latents(path: Path) -> tuple[torch.Tensor, list[str]]:
    latents, metadata = load_latents(path)
    return latents, json.loads(metadata["files"])


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("shard-*.safetensors"))}


def _png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(7, 7), dtype=np.uint8)
    Image.fromarray(small).resize((28, 28), Image.Resampling.BICUBIC).save(path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = DCVAE(ModelConfig(architecture="autogan32", image_size=32, channels=1, latent_dim=16, content_size=28,
                              architecture_args={"gf_dim": 16, "df_dim": 16}))
    return save_pretrained(model, tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(COUNT):
        _png(folder / f"{i:03d}.png", i)
    return folder


@pytest.fixture(scope="module")
def single(ckpt: Path, images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: today's single-file encoding (batches of 8)."""
    path = tmp_path_factory.mktemp("single") / "z.safetensors"
    ok(run("encode", images, "-o", path, "-m", ckpt, "-b", 8))
    return path


@pytest.fixture(scope="module")
def sharded(ckpt: Path, images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same images as a sharded folder, shards of 16, images read by one worker process."""
    out = tmp_path_factory.mktemp("sharded") / "z"
    ok(run("encode", images, "-o", out, "-m", ckpt, "-b", 8, "--shard-size", 16, "--num-workers", 1))
    return out


# ---------------------------------------------------------------------------- the format


def test_sharded_equals_single_file(single: Path, sharded: Path) -> None:
    z, files = _latents(single)
    zs, shard_files = _latents(sharded)
    assert torch.equal(z, zs) and files == shard_files and len(files) == COUNT
    index = read_index(sharded)
    assert [s["rows"] for s in index["shards"]] == [16, 16, 8] and index["total_rows"] == COUNT
    assert index["complete"] and index["latent_dim"] == 16 and index["shard_size"] == 16
    for entry in index["shards"]:
        assert sha256_file(sharded / entry["file"]) == entry["sha256"]
    with safe_open(str(sharded / "shard-00001.safetensors"), framework="pt") as f:
        meta = f.metadata()
        assert f.get_tensor("latents").dtype == torch.float32
    assert json.loads(meta["files"]) == files[16:32] and meta["first_file"] == "16" and meta["sample"] == "false"


def test_python_api_matches_cli(ckpt: Path, images: Path, sharded: Path, tmp_path: Path) -> None:
    model = load_model(str(ckpt))
    model.batch_size = 8
    files = sorted(images.glob("*.png"))
    result = encode_files(model, files, tmp_path / "api", shard_size=16, num_workers=0)
    assert (result.rows, result.shards, result.written, result.reused) == (COUNT, 3, 3, 0)
    for name in ("shard-00000.safetensors", "shard-00002.safetensors"):
        assert sha256_file(tmp_path / "api" / name) == sha256_file(sharded / name)


def test_decode_and_interpolate_read_folders(ckpt: Path, single: Path, sharded: Path, tmp_path: Path) -> None:
    ok(run("decode", single, "-o", tmp_path / "a", "-m", ckpt))
    ok(run("decode", sharded, "-o", tmp_path / "b", "-m", ckpt, "-b", 5))
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == COUNT and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    ok(run("interpolate", f"{single}:3", f"{single}:20", "--steps", 3, "-o", tmp_path / "a.png", "-m", ckpt))
    ok(run("interpolate", f"{sharded}:3", f"{sharded}:20", "--steps", 3, "-o", tmp_path / "b.png", "-m", ckpt))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_corrupt_shard_is_refused_when_read(ckpt: Path, sharded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sharded.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    data = bytearray((copy / "shard-00001.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "shard-00001.safetensors").write_bytes(bytes(data))
    result = run("decode", copy, "-o", tmp_path / "out", "-m", ckpt)
    assert result.exit_code == 1 and "sha256 differs" in result.stderr
    assert not (tmp_path / "out").exists()


def test_readers_name_what_is_wrong_with_a_folder(sharded: Path, tmp_path: Path) -> None:
    """The Python readers say what a folder is missing and what to pass instead (not a safetensors error)."""
    from dcvae_tools.errors import LatentError

    with pytest.raises(LatentError, match=r"folder without index\.json"):
        load_latents(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sharded.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    index = json.loads((copy / "index.json").read_text())
    (copy / "index.json").write_text(json.dumps({**index, "format_version": 99}))
    with pytest.raises(LatentError, match=r"version 99 is not supported .*upgrade dcvae-tools, or encode"):
        load_latents(copy)
    (copy / "index.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(LatentError, match="not a dcvae latents index; pass a folder written by `dcvae encode"):
        read_index(copy)


@pytest.mark.parametrize("files", ['"one.png"', "{}", "[1"])
def test_a_shard_whose_file_list_is_not_a_list_is_refused_by_name(sharded: Path, tmp_path: Path, files: str) -> None:
    from safetensors.torch import save_file

    from dcvae_tools.errors import LatentError

    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sharded.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    index = json.loads((copy / "index.json").read_text())
    entry = index["shards"][0]
    with safe_open(copy / entry["file"], "pt") as shard:
        latents = shard.get_tensor("latents")
    save_file({"latents": latents}, str(copy / entry["file"]), metadata={"files": files})
    entry["sha256"] = sha256_file(copy / entry["file"])
    (copy / "index.json").write_text(json.dumps(index))
    with pytest.raises(LatentError, match=rf"{entry['file']} is not a readable latents shard"):
        load_latents(copy)


# ---------------------------------------------------------------------------- resuming


def _encode(ckpt: Path, inputs: list[Path] | Path, out: Path, *extra: object):
    inputs = inputs if isinstance(inputs, list) else [inputs]
    return run("encode", *inputs, "-o", out, "-m", ckpt, "-b", 8, "--shard-size", 16, "--num-workers", 0, *extra)


def _copy_with_broken(images: Path, folder: Path, *broken: str) -> Path:
    folder.mkdir()
    for p in images.iterdir():
        (folder / p.name).write_bytes(b"broken" if p.name in broken else p.read_bytes())
    return folder


def test_resume_after_sigkill(ckpt: Path, images: Path, sharded: Path, tmp_path: Path) -> None:
    """A real process, killed with SIGKILL while it waits on input 20 (a FIFO), after shard 0 is written."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for p in images.iterdir():
        (inputs / p.name).symlink_to(p)
    (inputs / "020.png").unlink()
    os.mkfifo(inputs / "020.png")
    files = sorted(inputs.iterdir())
    out = tmp_path / "z"
    command = [sys.executable, "-m", "dcvae_tools.cli", "encode", *map(str, files), "-o", str(out), "-m", str(ckpt),
               "-b", "8", "--shard-size", "16", "--num-workers", "0"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (out / "shard-00000.safetensors").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the encode never wrote shard 0"
            time.sleep(0.05)
        time.sleep(0.2)
        assert process.poll() is None  # blocked on the FIFO, inside shard 1
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "shard-00000.safetensors"]  # nothing half-done
    index = json.loads((out / "index.json").read_text())
    assert not index["complete"] and [s["rows"] for s in index["shards"]] == [16]
    before = _mtimes(out)
    (inputs / "020.png").unlink()
    (inputs / "020.png").symlink_to(images / "020.png")
    result = _encode(ckpt, files, out)
    ok(result)
    assert "1 kept from an earlier run" in result.stdout
    assert _mtimes(out)["shard-00000.safetensors"] == before["shard-00000.safetensors"]
    latents, written = _latents(out)
    assert torch.equal(latents, _latents(sharded)[0]) and written == [str(f) for f in files]


def test_a_rerun_encodes_again_the_shard_whose_image_was_replaced(ckpt: Path, images: Path, tmp_path: Path) -> None:
    """The index knows the paths only; the shard records its images' sizes and modification times."""
    inputs = _copy_with_broken(images, tmp_path / "inputs")
    out = tmp_path / "z"
    ok(_encode(ckpt, inputs, out))
    before = _mtimes(out)
    replaced = inputs / "020.png"  # in shard 1
    replaced.write_bytes((images / "005.png").read_bytes())
    os.utime(replaced, ns=(replaced.stat().st_atime_ns, replaced.stat().st_mtime_ns + 10**9))
    result = _encode(ckpt, inputs, out)
    ok(result)
    assert "2 kept from an earlier run" in result.stdout
    after = _mtimes(out)
    assert [after[n] == before[n] for n in sorted(before)] == [True, False, True]
    latents, _ = _latents(out)
    assert torch.equal(latents[20], latents[5])  # the new image's latent, not the old one's


def test_resume_after_bad_image_and_corrupt_shard(ckpt: Path, images: Path, sharded: Path, tmp_path: Path) -> None:
    inputs = _copy_with_broken(images, tmp_path / "inputs", "035.png")
    out = tmp_path / "z"
    result = _encode(ckpt, inputs, out)
    assert result.exit_code == 1 and "035.png" in result.stderr
    assert sorted(_mtimes(out)) == ["shard-00000.safetensors", "shard-00001.safetensors"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    (inputs / "035.png").write_bytes((images / "035.png").read_bytes())
    before = _mtimes(out)
    ok(_encode(ckpt, inputs, out))
    after = _mtimes(out)
    assert all(after[n] == before[n] for n in before) and len(after) == 3
    torch.testing.assert_close(_latents(out)[0], _latents(sharded)[0], rtol=0, atol=0)

    good = sha256_file(out / "shard-00002.safetensors")
    data = bytearray((out / "shard-00002.safetensors").read_bytes())
    data[-3] ^= 0x55
    (out / "shard-00002.safetensors").write_bytes(bytes(data))
    before = _mtimes(out)
    result = _encode(ckpt, inputs, out)
    ok(result)
    assert "encoding this shard again" in result.stderr and "2 kept" in result.stdout
    after = _mtimes(out)
    assert after["shard-00000.safetensors"] == before["shard-00000.safetensors"]
    assert sha256_file(out / "shard-00002.safetensors") == good


def test_refuses_a_rerun_with_other_settings(ckpt: Path, images: Path, sharded: Path, tmp_path: Path) -> None:
    out = tmp_path / "z"
    ok(_encode(ckpt, images, out))
    before = _mtimes(out)
    result = run("encode", images, "-o", out, "-m", ckpt, "--shard-size", 8)
    assert result.exit_code == 1 and "shard_size: 16 -> 8" in result.stderr
    result = _encode(ckpt, sorted(images.iterdir())[:30], out)
    assert result.exit_code == 1 and "num_files: 40 -> 30" in result.stderr and "same number" not in result.stderr
    result = _encode(ckpt, sorted(images.iterdir(), reverse=True), out)
    assert result.exit_code == 1 and "files_sha256" in result.stderr and "in another order" in result.stderr
    result = _encode(ckpt, images, out, "--sample", "--seed", 1)
    assert result.exit_code == 1 and "sample: False -> True" in result.stderr
    assert _mtimes(out) == before


def test_a_seed_without_sample_is_refused_before_anything_is_written(ckpt: Path, images: Path, tmp_path: Path) -> None:
    for out in (tmp_path / "z.safetensors", tmp_path / "folder"):
        result = run("encode", images, "-o", out, "-m", ckpt, "--seed", 3)
        assert result.exit_code == 2 and "--seed picks the posterior samples of --sample" in result.stderr
        assert not out.exists()


def test_skip_bad_lists_skipped_files_in_the_index(ckpt: Path, images: Path, tmp_path: Path) -> None:
    inputs = _copy_with_broken(images, tmp_path / "inputs", "005.png")
    ok(run("encode", inputs, "-o", tmp_path / "z.safetensors", "-m", ckpt, "-b", 8, "--skip-bad"))
    ok(_encode(ckpt, inputs, tmp_path / "z", "--skip-bad"))
    index = read_index(tmp_path / "z")
    assert [s["rows"] for s in index["shards"]] == [15, 16, 8] and index["total_rows"] == COUNT - 1
    assert [s["file"] for s in index["skipped"]] == [str(inputs / "005.png")]
    single, files = _latents(tmp_path / "z.safetensors")
    zs, shard_files = _latents(tmp_path / "z")
    assert torch.equal(single, zs) and files == shard_files


def test_a_run_without_skip_bad_does_not_keep_shards_that_left_files_out(ckpt: Path, images: Path, sharded: Path,
                                                                        tmp_path: Path) -> None:
    """Shards of a --skip-bad run that left a file out are encoded again by a run without it: the repaired file
    gets its row, and a file still broken fails the run as it would on a fresh folder."""
    inputs = _copy_with_broken(images, tmp_path / "inputs", "020.png")
    out = tmp_path / "z"
    ok(_encode(ckpt, inputs, out, "--skip-bad"))
    before = _mtimes(out)
    result = _encode(ckpt, inputs, out)
    assert result.exit_code == 1 and "020.png" in result.stderr and "left 1 file(s) out" in result.stderr
    (inputs / "020.png").write_bytes((images / "020.png").read_bytes())
    result = _encode(ckpt, inputs, out)
    ok(result)
    after = _mtimes(out)
    assert after["shard-00000.safetensors"] == before["shard-00000.safetensors"]
    assert after["shard-00001.safetensors"] != before["shard-00001.safetensors"]
    index = read_index(out)
    assert index["skipped"] == [] and index["total_rows"] == COUNT and not index["settings"]["skip_bad"]
    assert torch.equal(_latents(out)[0], _latents(sharded)[0])


def test_skip_bad_with_every_image_bad_fails(ckpt: Path, images: Path, tmp_path: Path) -> None:
    inputs = _copy_with_broken(images, tmp_path / "inputs", *(p.name for p in images.iterdir()))
    result = _encode(ckpt, inputs, tmp_path / "z", "--skip-bad")
    assert result.exit_code == 1
    assert f"all {COUNT} images are unreadable (first: {inputs / '000.png'}" in result.stderr
    assert "holds no latents" in result.stderr and "wrote" not in result.stdout


def test_a_resumed_run_removes_the_temporary_files_of_a_killed_one(ckpt: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "z"
    ok(_encode(ckpt, images, out))
    stale = [out / ".shard-00001.safetensors.tmp-k1ll3d.safetensors", out / ".index.json.tmp-k1ll3d.json"]
    unrelated = out / ".notes.tmp-mine.txt"
    for path in [*stale, unrelated]:
        path.write_bytes(b"half")
    ok(_encode(ckpt, images, out))
    assert not any(p.exists() for p in stale) and unrelated.exists()


def test_shards_are_kept_or_refused_by_their_own_header_without_an_index(ckpt: Path, images: Path,
                                                                         tmp_path: Path) -> None:
    """With index.json gone (killed before its first write), finished shards are checked by their headers: kept
    by the same command, refused for a command with other settings."""
    out = tmp_path / "z"
    ok(_encode(ckpt, images, out))
    before = _mtimes(out)
    (out / "index.json").unlink()
    result = _encode(ckpt, images, out, "--sample", "--seed", 1)
    assert result.exit_code == 1 and "sample: False -> True" in result.stderr
    result = _encode(ckpt, images, out)
    ok(result)
    assert "3 kept from an earlier run" in result.stdout and _mtimes(out) == before
    assert read_index(out)["complete"]


def test_a_sampled_rerun_without_seed_continues_with_the_recorded_seed(ckpt: Path, images: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "z"
    ok(_encode(ckpt, images, out, "--sample"))
    seed = read_index(out)["settings"]["seed"]
    good = sha256_file(out / "shard-00002.safetensors")
    (out / "shard-00002.safetensors").unlink()
    result = _encode(ckpt, images, out, "--sample")
    ok(result)
    assert "2 kept" in result.stdout and f"seed {seed}" in result.stdout
    assert read_index(out)["settings"]["seed"] == seed and sha256_file(out / "shard-00002.safetensors") == good


def test_sample_is_seeded_per_shard(ckpt: Path, images: Path, tmp_path: Path) -> None:
    ok(_encode(ckpt, images, tmp_path / "a", "--sample", "--seed", 3))
    ok(run("encode", images, "-o", tmp_path / "b", "-m", ckpt, "-b", 16, "--shard-size", 16, "--sample", "--seed", 3))
    a, b = _latents(tmp_path / "a")[0], _latents(tmp_path / "b")[0]
    assert torch.equal(a, b) and read_index(tmp_path / "a")["settings"]["seed"] == 3


# ---------------------------------------------------------------------------- torchrun


def _torchrun_encode(ckpt: Path, inputs: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "dcvae_tools.cli", "encode", str(inputs), "-o", str(out), "-m", str(ckpt), "-b", "8",
               "--shard-size", "16", "--num-workers", "0", *extra]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_torchrun_two_processes_write_the_single_process_folder(ckpt: Path, images: Path, sharded: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "z"
    done = _torchrun_encode(ckpt, images, out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote") == 1  # rank 0 reports
    index = read_index(out)
    assert index["settings"]["world_size"] == 2 and index["total_rows"] == COUNT
    assert index["shards"] == read_index(sharded)["shards"]  # same rows, same bytes (sha256)
    zs, files = _latents(out)
    expected, expected_files = _latents(sharded)
    assert torch.equal(zs, expected) and files == expected_files


def test_torchrun_processes_that_see_other_files_refuse_to_start(ckpt: Path, images: Path, tmp_path: Path) -> None:
    """Each process lists its own inputs; if they differ (a folder changing as the run starts), none encodes."""
    script = tmp_path / "encode_some.py"
    script.write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        "from dcvae_tools import load_model\n"
        "from dcvae_tools.encoding import encode_files\n"
        "files = sorted(Path(sys.argv[1]).iterdir())[: 40 - int(os.environ['RANK'])]\n"
        "encode_files(load_model(sys.argv[2]), files, sys.argv[3], shard_size=16, num_workers=0)\n"
    )
    out = tmp_path / "z"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(script), str(images), str(ckpt), str(out)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert "do not agree on what to encode" in done.stderr and "process 1: files_sha256" in done.stderr
    assert "num_files: 40 -> 39" in done.stderr
    assert not list(out.glob("shard-*"))



def test_torchrun_a_failure_in_one_process_fails_every_process(ckpt: Path, images: Path, tmp_path: Path) -> None:
    """A bad image in process 1's shards (no --skip-bad): the run fails, saying which file, and the index stays
    unfinished, so a re-run after the fix resumes."""
    inputs = _copy_with_broken(images, tmp_path / "inputs", "030.png")
    out = tmp_path / "z"
    done = _torchrun_encode(ckpt, inputs, out)
    assert done.returncode != 0 and "030.png" in done.stderr
    assert "torchrun process(es) 1 failed" in done.stderr + done.stdout
    index = json.loads((out / "index.json").read_text())
    assert not index["complete"] and not (out / "shard-00002.safetensors").exists()


def test_torchrun_sampled_folder_does_not_depend_on_the_number_of_processes(ckpt: Path, images: Path,
                                                                            tmp_path: Path) -> None:
    ok(_encode(ckpt, images, tmp_path / "one", "--sample", "--seed", 7))
    done = _torchrun_encode(ckpt, images, tmp_path / "two", "--sample", "--seed", "7")
    assert done.returncode == 0, done.stderr
    assert read_index(tmp_path / "two")["shards"] == read_index(tmp_path / "one")["shards"]  # same sha256s
    assert torch.equal(_latents(tmp_path / "two")[0], _latents(tmp_path / "one")[0])
