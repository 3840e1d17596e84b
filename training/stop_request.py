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

__all__ = ["STOP_WITHOUT_SIGNAL", "StopRequest", "StoppedBySignal", "ignore_interrupts", "signal_name", "stop_reason"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_WITHOUT_SIGNAL = 1  # stop reason for --max-minutes or request(); signal numbers (2, 15) stand for themselves


class StoppedBySignal(Exception):
    """Raised by the ``train`` command after a signal stopped the run; the entry point then dies of that signal,
    so a shell loop around ``dcvae-train train`` stops too (as it would had the signal killed the process)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """While active (``with StopRequest() as stop:``), the first SIGINT or SIGTERM only sets ``stop.signal_name``.

    The loop polls :attr:`requested` after each iteration, checkpoints and returns. A second signal acts as it
    would have without this object (Ctrl-C raises KeyboardInterrupt, SIGTERM kills): the last checkpoint,
    written atomically, stays as it was. With ``enabled=False``, or outside the main thread (where Python cannot
    install signal handlers), the object is inert; :meth:`request` still stops the loop from any thread.
    """

    def __init__(self, *, enabled: bool = True, announce: bool = True) -> None:
        self.enabled = enabled
        self.announce = announce
        self.signal_name: str | None = None
        self._requested = threading.Event()
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def request(self, signal_name: str | None = None) -> None:
        """Ask the loop to stop after the current iteration (what the first signal does)."""
        if self.signal_name is None:
            self.signal_name = signal_name
        self._requested.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second signal: behave as if nothing had been installed
            self._restore()
            signal.raise_signal(signum)
            return
        name = signal.Signals(signum).name
        self.request(name)
        if self.announce:  # os.write, not print: a handler that prints while the loop prints raises RuntimeError
            again = " (Ctrl-C again aborts without it)" if signum == signal.SIGINT else ""
            os.write(2, f"\n{name}: stopping after this iteration and writing a checkpoint{again}\n".encode())

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            if previous is not None:  # None: installed from C; nothing Python can put back
                signal.signal(sig, previous)
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        if self.enabled and threading.current_thread() is threading.main_thread():
            try:
                for sig in _SIGNALS:
                    self._previous[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._handle)
            except BaseException:
                self._restore()
                raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._restore()


def stop_reason(out_of_time: bool, stop: StopRequest) -> int:
    """What this rank votes (ranks take the largest, ``distributed.max_over_ranks``): 0 go on, a signal's number
    when one came, else :data:`STOP_WITHOUT_SIGNAL` when time is up or a stop was requested."""
    if stop.signal_name is not None:
        return signal.Signals[stop.signal_name].value
    return STOP_WITHOUT_SIGNAL if out_of_time or stop.requested else 0


def signal_name(reason: int) -> str | None:
    """The signal a stop reason stands for, or None (time up, a request, or no stop)."""
    return signal.Signals(reason).name if reason > STOP_WITHOUT_SIGNAL else None


def ignore_interrupts(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: a terminal's Ctrl-C reaches the workers too, and the main process decides
    when the run stops (a worker that died of it would fail the checkpointing iteration's batch).

    SIGTERM is left alone, so that DataLoader can still terminate a stuck worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
