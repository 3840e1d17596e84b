"""Ctrl-C and SIGTERM stop training at the next iteration with a checkpoint (training.stop_request).

A real `dcvae-train train` process is interrupted and must exit with the shell's code for the signal, leave a
checkpoint at the iteration it reached, and continue from it exactly as an uninterrupted run; the DataLoader's
workers survive the terminal's Ctrl-C; and two gloo ranks agree to stop when only one of them wants to.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.data import InfiniteLoader
from training.stop_request import StopRequest
from training.training_loop import CHECKPOINT_NAME, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "training", "train", "--preset", "tiny", "--device", "cpu", "--no-progress",
         "--set", "total_iterations=100000", "--set", "log_every=1", "--set", "snapshot_every=100000",
         "--set", "checkpoint_every=100000"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _logged_iterations(run: Path) -> int:
    stats = run / "stats.jsonl"
    return len(stats.read_text().splitlines()) if stats.is_file() else 0


def _networks(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / CHECKPOINT_NAME)
    return {f"{net}.{k}": v for net in ("E", "G", "G_ema", "D", "D_M") for k, v in state[net].items()}


def test_sigint_checkpoints_the_iteration_reached_and_the_run_continues_exactly(tmp_path):
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    proc = subprocess.Popen([*TRAIN, "--run-dir", str(interrupted)], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _logged_iterations(interrupted) < 3:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run logged no iterations in 240 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    state = load_checkpoint(interrupted / CHECKPOINT_NAME)
    reached = int(state["iteration"])
    assert reached >= 3 and f"stopped by SIGINT at iteration {reached:,} with a checkpoint" in err
    assert "run the same command again" in err
    assert '"stopped_by": "SIGINT"' in out

    # the stopped run continues bit-exactly: it ends where an uninterrupted run to the same iteration ends
    end = str(reached + 2)
    subprocess.run([*TRAIN, "--run-dir", str(interrupted), "--stop-after", end], cwd=REPO, env=ENV, check=True,
                   capture_output=True)
    subprocess.run([*TRAIN, "--run-dir", str(straight), "--stop-after", end], cwd=REPO, env=ENV, check=True,
                   capture_output=True)
    a, b = _networks(interrupted), _networks(straight)
    assert load_checkpoint(interrupted / CHECKPOINT_NAME)["iteration"] == reached + 2
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"the continued run differs from the uninterrupted one in {differ[:4]}"


def test_stop_request_turns_the_first_signal_into_a_flag_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopRequest(announce=False) as stop:
        assert not stop.requested and stop.exit_code == 0
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # Python runs the handler between bytecodes of the main thread
        assert stop.signal_name == "SIGTERM" and stop.exit_code == 143
        with pytest.raises(KeyboardInterrupt):  # once stopping, Ctrl-C aborts at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_loader_workers_survive_a_terminal_ctrl_c():
    data = torch.utils.data.TensorDataset(torch.arange(64, dtype=torch.float32).reshape(64, 1))
    loader = InfiniteLoader(data, 4, seed=0, num_workers=1)
    first = next(loader)[0]
    workers = multiprocessing.active_children()
    assert workers, "the loader started no worker process"
    for worker in workers:
        os.kill(worker.pid, signal.SIGINT)  # what the terminal sends to its whole foreground process group
    time.sleep(0.5)
    batches = [next(loader)[0] for _ in range(20)]  # a dead worker would fail here
    assert all(w.is_alive() for w in workers)
    assert len({int(b[0, 0]) for b in [first, *batches]}) > 1


RANK_SCRIPT = """
import sys
from training.distributed import any_rank, cleanup, init_distributed
info = init_distributed("cpu")
votes = [any_rank(info.rank == 1 and i == 2, info) for i in range(4)]
print("votes", votes)
cleanup(info)
"""


def test_ranks_agree_to_stop_when_one_of_them_asks(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    procs = [
        subprocess.Popen([sys.executable, str(script)], cwd=REPO, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-2000:]
        assert "votes [False, False, True, False]" in out, out[-2000:]
