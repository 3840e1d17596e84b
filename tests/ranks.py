"""Start the child processes tests talk to: a script as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT) in two
CPU processes (gloo), a free port, and Ctrl-C as in a terminal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child the test will send SIGINT: it acts as in a foreground terminal. A shell starts
    background jobs with SIGINT ignored and children inherit that (a run or app then rightly ignores Ctrl-C), so a
    suite launched with `&` would otherwise send a signal its child never sees."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_ranks(script: Path, *args: str, timeout: float = 300) -> list[str]:
    """Run ``script args`` as ranks 0 and 1, one thread each; assert both exit 0 and return their outputs."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": "2",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=REPO,
            text=True,
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    for rank, (p, out) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"rank {rank}:\n{out[-3000:]}"
    return outputs
