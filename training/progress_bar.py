"""The training loops' progress bar on stderr: one short bar line, the losses on lines of their own."""

from __future__ import annotations

from collections.abc import Mapping


class TrainingProgress:
    """A rich progress bar over iterations ``start..end``, with a loss line printed at every log interval.

    The bar line stays short (a long one would be cut to the terminal's width); the losses go above it. The
    progressive loop gives each stage a bar of its own (:meth:`restart`), since an iteration's cost grows with
    the resolution and a time estimate over all stages would be wrong.
    """

    def __init__(self, description: str, start: int, end: int, at: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),  # stdout is kept for the command's JSON summary
        )
        self._start = start
        self._task = self._bar.add_task(description, total=end - start, completed=at - start, info="")
        self._bar.start()

    def restart(self, description: str, start: int, end: int, at: int) -> None:
        """Count iterations ``start..end`` from ``at`` under a new description (a new stage)."""
        self._start = start
        self._bar.reset(self._task, total=end - start, completed=at - start, description=description, info="")

    def advance(self, iteration: int) -> None:
        """Move the bar to ``iteration``."""
        self._bar.update(self._task, completed=iteration - self._start)

    def log(self, iteration: int, stats: Mapping[str, float]) -> None:
        """Print the losses of a log interval and show its images per second on the bar."""
        losses = [f"{k.removeprefix('Loss/')} {v:.3f}" for k, v in stats.items() if k.startswith("Loss")]
        self._bar.console.print(f"{iteration:>8,}  " + "  ".join(losses), markup=False, highlight=False)
        speed = stats.get("Perf/images_per_s")
        self._bar.update(self._task, completed=iteration - self._start,
                         info=f"{speed:.0f} img/s" if speed is not None else "")

    def stop(self) -> None:
        self._bar.stop()
