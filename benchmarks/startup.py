"""Start-up cost: ``dcvae --help`` (which must not import torch), ``import dcvae_tools`` and ``import torch``.

Each command runs as a fresh process several times, interleaved; the median wall time is reported.

    python -m benchmarks.startup
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks import common

_CHECK_HELP = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('TORCH_IMPORTED=' + str('torch' in sys.modules), file=sys.stderr))\n"
    "sys.argv = ['dcvae', '--help']\n"
    "from dcvae_tools.cli import main\n"
    "main()\n"
)


def dcvae_command() -> list[str]:
    """The ``dcvae`` console script, or ``python -m dcvae_tools.cli`` when it is not on PATH."""
    exe = shutil.which("dcvae")
    return [exe] if exe else [sys.executable, "-m", "dcvae_tools.cli"]


def wall_time(cmd: list[str], cwd: Any = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd or common.ROOT, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def help_imports_torch() -> bool:
    proc = common.run_python(_CHECK_HELP)
    return "TORCH_IMPORTED=True" in proc.stderr


def measure(repeats: int = 7) -> dict[str, Any]:
    commands = {
        "dcvae --help": [*dcvae_command(), "--help"],
        "python -c 'import dcvae_tools'": [sys.executable, "-c", "import dcvae_tools"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }
    for cmd in commands.values():  # warm the file cache
        wall_time(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            times[name].append(wall_time(cmd))
    rows = [{"command": name, "median_s": statistics.median(t), "best_s": min(t), "reps": len(t)}
            for name, t in times.items()]
    return {"rows": rows, "dcvae_help_imports_torch": help_imports_torch()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("Start-up time", info))
    result = {"machine": info, **measure(args.repeats)}
    print(common.format_table(result["rows"], [("command", "command", ""), ("median_s", "median s", ".3f"),
                                               ("best_s", "best s", ".3f"), ("reps", "runs", "d")]))
    verdict = "imports torch (BAD)" if result["dcvae_help_imports_torch"] else "does not import torch"
    print(f"dcvae --help {verdict}")
    path = common.write_json("startup", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
