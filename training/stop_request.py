"""Ctrl-C and SIGTERM end a training run at the next iteration, with a checkpoint, instead of killing it.

Without this, an interrupted run loses everything since its last periodic checkpoint (``checkpoint_every``
iterations: a quarter of an hour on two CPU cores). Batch schedulers send SIGTERM before they preempt a job,
so the same path serves a requeued cluster run.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopRequest", "ignore_interrupts"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """While active (``with StopRequest() as stop:``), the first SIGINT or SIGTERM only sets ``stop.signal_name``.

    The loop polls :attr:`requested` after each iteration, checkpoints and returns. A second Ctrl-C aborts at
    once (the last checkpoint, written atomically, stays as it was). Outside the main thread, where Python
    cannot install signal handlers, the object is inert and signals behave as usual.
    """

    def __init__(self, *, announce: bool = True) -> None:
        self.announce = announce
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    @property
    def exit_code(self) -> int:
        """The shell's code for death by that signal (130 for SIGINT, 143 for SIGTERM); 0 when none came."""
        return 128 + signal.Signals[self.signal_name].value if self.signal_name else 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        if self.announce:
            print(
                f"\n{self.signal_name}: stopping after this iteration and writing a checkpoint "
                "(Ctrl-C again aborts without it)",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


def ignore_interrupts(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: a terminal's Ctrl-C (and a scheduler's SIGTERM) reaches the workers too, and
    the main process decides when the run stops; a worker that died of it would fail the checkpointing iteration's
    batch. Workers still exit with the main process (DataLoader watches its parent)."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
