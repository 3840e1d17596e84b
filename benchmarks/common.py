"""Shared helpers: machine description, timing, the machine's matmul limit, models, real images, JSON output."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# the bundled default model's configuration (training/presets/fashion_mnist_32.py)
DEFAULT_CONFIG: dict[str, Any] = {
    "architecture": "autogan32",
    "image_size": 32,
    "channels": 1,
    "content_size": 28,
    "latent_dim": 64,
    "architecture_args": {"gf_dim": 48, "df_dim": 32},
}
# the paper's CIFAR-10 widths (docs/design.md, "The backbones")
PAPER_CONFIG: dict[str, Any] = {
    "architecture": "autogan32",
    "image_size": 32,
    "channels": 3,
    "latent_dim": 128,
    "architecture_args": {"gf_dim": 256, "df_dim": 128},
}
OFFICIAL_REPO_ENV = "DCVAE_OFFICIAL_REPO"
"""Environment variable naming a checkout (or bare git mirror) of mlpc-ucsd/DC-VAE, if --official-repo is not given."""
OFFICIAL_FILE = "models/models_32.py"


# ----------------------------------------------------------------------------- machine


def cpu_model_name() -> str:
    """``lscpu``'s model name (falls back to /proc/cpuinfo, then platform.processor())."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        match = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        if match:
            return match.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        match = re.search(r"^flags\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        return set(match.group(1).split()) if match else set()
    except OSError:
        return set()


def machine_info() -> dict[str, Any]:
    """What the figures were measured on (recorded in every results file)."""
    import torch

    flags = cpu_flags()
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def busy_note(info: dict[str, Any]) -> str | None:
    """A warning when other processes were using the CPU (load average above the core count)."""
    load, cores = info.get("load_average_1min"), info.get("cpu_count") or 1
    if load is not None and load > cores * 0.75 + 0.5:
        return f"load average {load:.1f} on {cores} cores: other processes were running; figures are low"
    return None


# ----------------------------------------------------------------------------- timing


def time_call(
    fn: Callable[[], Any], *, min_time: float = 1.0, min_reps: int = 3, max_reps: int = 200, warmup: int = 1
) -> dict[str, float]:
    """Median and best wall time of ``fn()`` over repeats (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "best_s": min(times), "reps": len(times)}


def matmul_gflops(dtype_name: str = "float32", n: int = 2048, min_time: float = 2.0) -> dict[str, float]:
    """The machine's achieved dense matmul rate: ``torch.mm`` of two n x n matrices, GFLOP/s (2 per
    multiply-add), best and median over repeats, on all of torch's threads."""
    import torch

    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    timing = time_call(lambda: torch.mm(a, b, out=out), min_time=min_time, min_reps=5, warmup=2)
    flop = 2.0 * n**3
    return {
        "n": n,
        "dtype": dtype_name,
        "gflops_best": flop / timing["best_s"] / 1e9,
        "gflops_median": flop / timing["median_s"] / 1e9,
        "reps": timing["reps"],
    }


# ----------------------------------------------------------------------------- output


def write_json(name: str, data: dict[str, Any], results_dir: Path | None = None) -> Path:
    """Write ``results_dir/name.json`` atomically (temporary file in the same folder, then rename)."""
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Rows as a fixed-width text table; ``columns`` are (key, header, format spec) triples."""

    def cell(row: dict[str, Any], key: str, spec: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        if isinstance(value, float | int) and not isinstance(value, bool) and spec:
            return format(value, spec)
        return str(value)

    table = [[header for _, header, _ in columns]] + [[cell(r, k, s) for k, _, s in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def header(title: str, info: dict[str, Any]) -> str:
    cuda = f", CUDA {info['cuda']}" if info.get("cuda") else ""
    text = (f"# {title}\n# {info['cpu']}, {info['cpu_count']} CPUs, torch {info['torch']} "
            f"({info['torch_threads']} threads){cuda}, {info['date_utc']}")
    note = busy_note(info)
    return text + (f"\n# WARNING: {note}" if note else "")


# ----------------------------------------------------------------------------- models


def random_model(config: dict[str, Any], seed: int = 0):
    """A randomly initialised DCVAE with ``config`` (official init; BatchNorm running statistics left at
    their defaults, as after initialisation)."""
    import torch

    from dcvae_tools.config import ModelConfig
    from dcvae_tools.model import DCVAE

    torch.manual_seed(seed)
    return DCVAE(ModelConfig(**config))


def default_model(path: str | None = None) -> tuple[Any, str]:
    """The model for the "default model" rows: ``path`` (a release folder, or a training run folder with
    checkpoint.pt), else the bundled default (``load_model()``), else a random model with its config."""
    if path is not None:
        folder = Path(path)
        if (folder / "checkpoint.pt").is_file():
            from training.export import model_from_run

            return model_from_run(folder), f"training run {folder} (checkpoint.pt)"
        from dcvae_tools import load_model

        return load_model(str(folder), local_files_only=True), f"checkpoint {folder}"
    try:
        from dcvae_tools import load_model

        return load_model(local_files_only=True), "the bundled default model (load_model())"
    except Exception as err:  # any failure means: no usable default model here
        reason = str(err).splitlines()[0]
        return random_model(DEFAULT_CONFIG), f"random weights, default config (no default model: {reason})"


def find_official_repo(path: str | None) -> Path | None:
    """The official code's location: ``path`` (``--official-repo``) if given, else ``$DCVAE_OFFICIAL_REPO``, else
    None. Nothing is searched for: where the code lives is always the user's explicit choice."""
    chosen = path or os.environ.get(OFFICIAL_REPO_ENV)
    return Path(chosen).expanduser() if chosen else None


def load_official_module(path: str | None) -> tuple[Any | None, str]:
    """Import the official ``models/models_32.py`` at run time from a checkout or a bare git mirror.

    Nothing of the official code is stored in this repository: a checkout's file is imported in place; from a
    bare mirror the file is read with ``git show`` into a temporary folder and imported from there.
    Returns (module or None, a message saying where it came from or why it is missing).
    """
    import importlib.util

    repo = find_official_repo(path)
    hint = (f"pass --official-repo PATH or set {OFFICIAL_REPO_ENV} (a checkout of "
            "https://github.com/mlpc-ucsd/DC-VAE, or a bare mirror of it) to measure the official architecture")
    if repo is None:
        return None, f"official DC-VAE code not given; {hint}"
    if not repo.exists():
        return None, f"official DC-VAE code not found at {repo}; {hint}"
    source = repo / OFFICIAL_FILE
    if not source.is_file():
        try:
            text = subprocess.run(
                ["git", f"--git-dir={repo}", "show", f"HEAD:{OFFICIAL_FILE}"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as err:
            return None, f"could not read {OFFICIAL_FILE} from {repo} ({err}); {hint}"
        folder = Path(tempfile.mkdtemp(prefix="dcvae-official-"))
        source = folder / "models_32.py"
        source.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("dcvae_official_models_32", source)
    if spec is None or spec.loader is None:
        return None, f"could not import {source}; {hint}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, f"official models_32.py from {repo}"


def official_networks(module: Any, latent_dim: int = 128, seed: int = 0) -> tuple[Any, Any]:
    """The official Encoder and Decoder (paper widths, their own spectral-norm hooks), in eval mode."""
    import torch

    torch.manual_seed(seed)
    return module.Encoder(latent_dim).eval(), module.Decoder(latent_dim).eval()


# ----------------------------------------------------------------------------- real images


def fashion_mnist_test(n: int) -> Any:
    """The first ``n`` Fashion-MNIST test images, uint8 [n, 28, 28] (raises FileNotFoundError if absent)."""
    from training.data import load_fashion_mnist

    images, _ = load_fashion_mnist("test")
    return images[:n]


def real_inputs(n: int, channels: int, image_size: int = 32, content_size: int | None = None) -> Any:
    """``n`` real Fashion-MNIST test images in model format [n, channels, size, size] in [-1, 1] (grey
    repeated to 3 channels for RGB models)."""
    from dcvae_tools.images import to_tensor

    arrays = list(fashion_mnist_test(n))
    tensor, _ = to_tensor(arrays, size=image_size, channels=channels, content_size=content_size)
    return tensor


def photo_inputs(image_size: int = 32) -> tuple[Any | None, str]:
    """scikit-image's sample photographs, center-cropped and resized to ``image_size`` (RGB)."""
    try:
        from skimage import data as skdata
    except ImportError:
        return None, "scikit-image is not installed"
    from dcvae_tools.images import to_tensor

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
             "cat", "colorwheel", "logo", "motorcycle_left", "motorcycle_right"]
    arrays = []
    for name in names:
        loader = getattr(skdata, name, None)
        if loader is None:
            continue
        try:
            image = loader()
        except Exception:  # some samples need a download (pooch); skip those
            continue
        if isinstance(image, tuple):
            image = image[0]
        if getattr(image, "ndim", 0) == 3 and image.shape[-1] in (3, 4):
            arrays.append(image[..., :3])
    if not arrays:
        return None, "no scikit-image sample photographs could be loaded"
    tensor, _ = to_tensor(arrays, size=image_size, channels=3)
    return tensor, f"{len(arrays)} scikit-image sample photographs resized to {image_size}x{image_size}"


def run_python(code: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -c code args...`` from the repository root."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
