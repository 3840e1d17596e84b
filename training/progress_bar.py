"""The training loops' progress bar on stderr: one short bar line, the losses on lines of their own."""

from __future__ import annotations

from collections.abc import Mapping


class TrainingProgress:
    """A rich progress bar over iterations, with a loss line printed at every log interval.

    The bar line stays short (a long one would be cut to the terminal's width); the losses go above it.
    """

    def __init__(self, description: str, total: int, completed: int = 0) -> None:
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
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, completed=completed, info="")

    def advance(self, iteration: int, description: str | None = None) -> None:
        """Move the bar to ``iteration`` (and rename it, e.g. for a new stage)."""
        if description is None:
            self._bar.update(self._task, completed=iteration)
        else:
            self._bar.update(self._task, completed=iteration, description=description)

    def log(self, iteration: int, stats: Mapping[str, float]) -> None:
        """Print the losses of a log interval and show its images per second on the bar."""
        losses = [f"{k.removeprefix('Loss/')} {v:.3f}" for k, v in stats.items() if k.startswith("Loss")]
        self._bar.console.print(f"{iteration:>8,}  " + "  ".join(losses), markup=False, highlight=False)
        speed = stats.get("Perf/images_per_s")
        self._bar.update(self._task, completed=iteration, info=f"{speed:.0f} img/s" if speed is not None else "")

    def stop(self) -> None:
        self._bar.stop()
