"""Ctrl-C and SIGTERM end a training run at the next iteration, with a checkpoint, instead of killing it.

Without this, an interrupted run loses everything since its last periodic checkpoint (``checkpoint_every``
iterations: a quarter of an hour on two CPU cores). Batch schedulers send SIGTERM before they preempt a job,
so the same path serves a requeued cluster run; torchrun gives its workers 30 s after SIGTERM before it kills
them, which one iteration and a checkpoint fit in.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = [
    "STOP_WITHOUT_SIGNAL",
    "StopRequest",
    "StoppedBySignal",
    "isolate_from_stop_signals",
    "signal_name",
    "stop_reason",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_WITHOUT_SIGNAL = 1  # stop reason for --max-minutes; signal numbers (2, 15) stand for themselves


class StoppedBySignal(Exception):
    """Raised by the ``train`` command after a signal stopped the run; the entry point then dies of that signal,
    so a shell loop around ``dcvae-train train`` stops too (as it would had the signal killed the process)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """While active (``with StopRequest() as stop:``), the first SIGINT or SIGTERM only sets ``stop.signum``.

    The loop polls :attr:`requested` after each iteration, checkpoints and returns. A second signal acts as it
    would have without this object (Ctrl-C raises KeyboardInterrupt, SIGTERM kills): the last checkpoint,
    written atomically, stays as it was. A signal the process ignores (a shell starts background jobs with
    SIGINT ignored) stays ignored. With ``enabled=False``, or outside the main thread (where Python cannot
    install signal handlers), the object is inert.
    """

    def __init__(self, *, enabled: bool = True, announce: bool = True) -> None:
        self.enabled = enabled
        self.announce = announce
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def signal_name(self) -> str | None:
        return signal_name(self.signum or 0)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second signal: behave as if nothing had been installed
            self._restore()
            signal.raise_signal(signum)
            return
        self.signum = signum
        if self.announce:  # os.write, not print: a handler that prints while the loop prints raises RuntimeError
            again = " (Ctrl-C again aborts without it)" if signum == signal.SIGINT else ""
            os.write(
                2, f"\n{self.signal_name}: stopping after this iteration and writing a checkpoint{again}\n".encode()
            )

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        if self.enabled and threading.current_thread() is threading.main_thread():
            try:
                for sig in _SIGNALS:
                    previous = signal.getsignal(sig)
                    if previous in (signal.SIG_IGN, None):  # ignored, or a handler from C that Python cannot restore
                        continue
                    self._previous[sig] = previous
                    signal.signal(sig, self._handle)
            except BaseException:
                self._restore()
                raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._restore()


def stop_reason(out_of_time: bool, stop: StopRequest) -> int:
    """What this rank votes (ranks take the largest, ``distributed.max_over_ranks``): 0 go on, a signal's number
    when one came, else :data:`STOP_WITHOUT_SIGNAL` when time is up."""
    return stop.signum or (STOP_WITHOUT_SIGNAL if out_of_time else 0)


def signal_name(reason: int) -> str | None:
    """The signal a stop reason stands for, or None (time up, or no stop)."""
    return signal.Signals(reason).name if reason > STOP_WITHOUT_SIGNAL else None


def isolate_from_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: the run's stop signals reach only the main process, which decides when the
    run stops (a worker that died of one would fail the checkpointing iteration's batch).

    The worker gets a process group of its own, so a terminal's Ctrl-C and a signal sent to the run's whole
    group (torchrun forwards SIGTERM that way, as does ``kill -- -PGID``) pass it by, and it ignores SIGINT sent
    to it alone. SIGTERM sent to it alone still ends it, so that DataLoader can terminate a stuck worker.
    """
    if hasattr(os, "setpgid"):  # POSIX
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
