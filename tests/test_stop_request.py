"""Ctrl-C and SIGTERM stop training at the next iteration with a checkpoint (training.stop_request).

A real `dcvae-train train` process is interrupted and must die of the signal after leaving a checkpoint at the
iteration it reached, from which it continues exactly as an uninterrupted run; a signal in the last iteration
is not reported as a stop; the DataLoader's workers are out of reach of the run's stop signals; and two gloo
ranks stop at the same iteration, for the same reason, when only one of them got the signal.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ranks import launch_two_ranks, sigint_as_in_a_terminal

from training.data import InfiniteLoader
from training.presets import get_preset
from training.stop_request import StopRequest
from training.training_loop import CHECKPOINT_NAME, load_checkpoint, training_loop

REPO = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "training", "train", "--preset", "tiny", "--device", "cpu", "--no-progress",
         "--set", "total_iterations=100000", "--set", "log_every=1", "--set", "snapshot_every=100000",
         "--set", "checkpoint_every=100000"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

pytestmark = pytest.mark.usefixtures("one_thread")


def _logged_iterations(run: Path) -> int:
    stats = run / "stats.jsonl"
    return len(stats.read_text().splitlines()) if stats.is_file() else 0


def _networks(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / CHECKPOINT_NAME)
    return {f"{net}.{k}": v for net in ("E", "G", "G_ema", "D", "D_M") for k, v in state[net].items()}


def test_sigint_checkpoints_the_iteration_reached_and_the_run_continues_exactly(tmp_path):
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:  # files: no pipe to fill
        proc = subprocess.Popen([*TRAIN, "--run-dir", str(interrupted)], cwd=REPO, env=ENV, stdout=out, stderr=err,
                                preexec_fn=sigint_as_in_a_terminal)
        try:
            deadline = time.monotonic() + 240
            while _logged_iterations(interrupted) < 3:
                assert proc.poll() is None, (tmp_path / "err").read_text()[-3000:]
                assert time.monotonic() < deadline, "the run logged no iterations in 240 s"
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            try:  # a checkpoint of the tiny preset takes a second; the room is for slow, loaded CI machines
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                pytest.fail("the run did not exit within 120 s of SIGINT; its stderr ends:\n"
                            + (tmp_path / "err").read_text()[-3000:])
        finally:
            if proc.poll() is None:  # a failed test must not leave a 100,000-iteration run behind
                proc.kill()
                proc.wait()
    stdout, stderr = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert proc.returncode == -signal.SIGINT, stderr[-3000:]  # it dies of the signal, after the checkpoint
    reached = int(load_checkpoint(interrupted / CHECKPOINT_NAME)["iteration"])
    assert reached >= 3 and f"stopped by SIGINT at iteration {reached:,} with a checkpoint" in stderr
    assert "run the same command again" in stderr and '"stopped_by": "SIGINT"' in stdout

    # the stopped run continues bit-exactly: it ends where an uninterrupted run to the same iteration ends
    end = str(reached + 2)
    for run in (interrupted, straight):
        subprocess.run([*TRAIN, "--run-dir", str(run), "--stop-after", end], cwd=REPO, env=ENV, check=True,
                       capture_output=True)
    assert load_checkpoint(interrupted / CHECKPOINT_NAME)["iteration"] == reached + 2
    a, b = _networks(interrupted), _networks(straight)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"the continued run differs from the uninterrupted one in {differ[:4]}"


def _raise_at(iteration: int, signum: int):
    def progress_fn(at: int, stats: dict[str, float]) -> None:
        if at == iteration:
            signal.raise_signal(signum)

    return progress_fn


def test_a_signal_mid_run_stops_it_and_one_in_the_last_iteration_does_not_count(tmp_path):
    options = get_preset("tiny").override(total_iterations=4, log_every=1, snapshot_every=100, checkpoint_every=100)
    handler = signal.getsignal(signal.SIGTERM)
    stopped = training_loop(options, tmp_path / "a", progress=False, progress_fn=_raise_at(2, signal.SIGTERM))
    assert (stopped["iteration"], stopped["finished"], stopped["stopped_by"]) == (2, False, "SIGTERM")
    assert load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)["iteration"] == 2
    done = training_loop(options, tmp_path / "b", progress=False, progress_fn=_raise_at(4, signal.SIGTERM))
    assert (done["iteration"], done["finished"], done["stopped_by"]) == (4, True, None)
    assert signal.getsignal(signal.SIGTERM) == handler  # the loop gave the handler back


@contextlib.contextmanager
def _sigint_handler(handler):
    """SIGINT handled by ``handler`` inside the block, whatever pytest was started with; put back after."""
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_stop_request_turns_the_first_signal_into_a_flag_and_the_second_acts_as_usual():
    with _sigint_handler(signal.default_int_handler):  # as an interactive shell leaves it
        before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        with StopRequest(announce=False) as stop:
            assert signal.getsignal(signal.SIGTERM) == stop._handle  # else the next line would end pytest
            assert not stop.requested
            signal.raise_signal(signal.SIGTERM)
            assert stop.signal_name == "SIGTERM" and stop.requested
            with pytest.raises(KeyboardInterrupt):  # once stopping, Ctrl-C aborts at once
                signal.raise_signal(signal.SIGINT)
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
        with StopRequest(enabled=False) as inert:
            assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
            assert not inert.requested and inert.signal_name is None


def test_a_signal_the_process_ignores_stays_ignored():
    """A shell starts background jobs with SIGINT ignored: the terminal's Ctrl-C must not stop them."""
    with _sigint_handler(signal.SIG_IGN):
        with StopRequest(announce=False) as stop:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert not stop.requested
            assert signal.getsignal(signal.SIGTERM) == stop._handle  # the other signal is still caught
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_loader_workers_are_out_of_reach_of_the_runs_stop_signals():
    data = torch.utils.data.TensorDataset(torch.arange(64, dtype=torch.float32).reshape(64, 1))
    loader = InfiniteLoader(data, 4, seed=0, num_workers=1)
    first = next(loader)[0]
    workers = multiprocessing.active_children()
    assert workers, "the loader started no worker process"
    for worker in workers:
        # a group of its own: a terminal's Ctrl-C and torchrun's SIGTERM to the run's group pass it by
        assert os.getpgid(worker.pid) == worker.pid != os.getpgid(0)
        os.kill(worker.pid, signal.SIGINT)  # and SIGINT sent to it alone is ignored
    time.sleep(0.5)
    batches = [next(loader)[0] for _ in range(20)]  # a dead worker would fail here (the epochs run on)
    assert all(w.is_alive() for w in workers)
    assert len({int(b[0, 0]) for b in [first, *batches]}) > 1


RANK_SCRIPT = """
import json, signal, sys
from training.distributed import cleanup, init_distributed
from training.presets import get_preset
from training.training_loop import training_loop
info = init_distributed("cpu")

def progress_fn(iteration, stats):
    if info.rank == 1 and iteration == 2:
        signal.raise_signal(signal.SIGTERM)  # only rank 1 is told to stop

o = get_preset("tiny").override(total_iterations=6, log_every=1, snapshot_every=100, checkpoint_every=100)
summary = training_loop(o, sys.argv[1], dist_info=info, progress=False, progress_fn=progress_fn)
print("summary", json.dumps({k: summary[k] for k in ("iteration", "finished", "stopped_by")}))
cleanup(info)
"""


def test_torchrun_ranks_stop_at_the_same_iteration_when_one_gets_sigterm(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    outputs = launch_two_ranks(script, str(tmp_path / "run"))
    expected = 'summary {"iteration": 2, "finished": false, "stopped_by": "SIGTERM"}'
    for rank, out in enumerate(outputs):
        assert expected in out, f"rank {rank}:\n{out[-2000:]}"
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["iteration"] == 2


LEAVE_SCRIPT = """
import os, sys, time
from training.distributed import barrier, cleanup, init_distributed
rank0_failed, rank1_failed, marker = sys.argv[1] == "failed", sys.argv[2] == "failed", sys.argv[3]
info = init_distributed("cpu")
barrier(info)
try:
    if info.rank == 0:
        cleanup(info, failed=rank0_failed)
        open(marker, "w").close()  # rank 0 has left the group
        print("left")
    else:
        time.sleep(4)  # rank 1 is still busy
        print(f"rank 0 had left before rank 1 finished: {os.path.exists(marker)}")
        cleanup(info, failed=rank1_failed)
        print("left")
except RuntimeError as err:
    print(f"error: {err}")
"""


def _leave(tmp_path: Path, rank0: str, rank1: str) -> list[str]:
    script = tmp_path / "leave.py"
    script.write_text(LEAVE_SCRIPT)
    return launch_two_ranks(script, rank0, rank1, str(tmp_path / "rank0-left"))


def test_ranks_that_finished_leave_the_group_together(tmp_path):
    """A clean finish meets at a barrier before leaving, so no rank closes connections another still uses."""
    outputs = _leave(tmp_path, "clean", "clean")
    assert "rank 0 had left before rank 1 finished: False" in outputs[1], outputs[1]
    assert "left" in outputs[0].splitlines() and "left" in outputs[1].splitlines(), outputs


def test_a_rank_that_failed_leaves_the_group_without_waiting_for_the_others(tmp_path):
    """After a failure the others may never arrive, so the failed rank must not wait for them; one that finished
    and waits at the barrier for a rank that left fails too, saying so (no hang)."""
    outputs = _leave(tmp_path, "failed", "clean")
    assert "rank 0 had left before rank 1 finished: True" in outputs[1], f"rank 0 waited for rank 1:\n{outputs[1]}"
    assert "rank 1 finished, but another rank left the run without finishing it" in outputs[1], outputs[1]
