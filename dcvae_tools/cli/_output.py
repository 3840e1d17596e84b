"""Everything the ``dcvae`` command line prints goes through one :class:`Output` object.

Streams: results (tables, paths, JSON, summaries of what was written) go to stdout; notes, warnings,
progress bars and errors go to stderr, so ``dcvae ... --json | jq`` and ``$(dcvae download NAME)``
work. Modes: human (default), ``--json`` (stdout carries one JSON document and nothing else) and
``-q`` (no notes, progress or summaries; results, warnings and errors still appear).

:func:`session` wraps a command's body: it routes the library's ``dcvae_tools`` log records and Python
warnings to the Output, and turns expected failures into a single ``error: ...`` line with exit
status 1 (the traceback is kept for ``--debug`` or ``DCVAE_DEBUG=1``).

Nothing here imports torch, and Rich is imported on first use only, so ``dcvae --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import typer

from dcvae_tools.errors import DCVAEError

__all__ = ["Output", "debug_requested", "one_line", "session"]

LOGGER_NAME = "dcvae_tools"
"""The logger the library reports image conversions on (INFO) and problems on (WARNING)."""


def debug_requested(flag: bool = False) -> bool:
    """True when ``--debug`` was given or ``DCVAE_DEBUG`` is set to a true value."""
    return flag or os.environ.get("DCVAE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def one_line(message: str) -> str:
    """Collapse a message onto one line (error messages must be exactly one line)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


class Output:
    """Human, JSON and quiet printing for one command run.

    Args:
        quiet: suppress notes, progress bars and summaries (``-q``).
        json_mode: stdout carries only the JSON document given to :meth:`data` (``--json``).
    """

    def __init__(self, *, quiet: bool = False, json_mode: bool = False) -> None:
        self.quiet = quiet
        self.json_mode = json_mode
        self._stderr: Any = None
        self._stdout: Any = None

    # ------------------------------------------------------------------ consoles

    @property
    def stderr(self) -> Any:
        """A Rich console on the current ``sys.stderr`` (colours only on a terminal)."""
        if self._stderr is None:
            from rich.console import Console

            self._stderr = Console(file=sys.stderr, highlight=False, emoji=False, markup=False, soft_wrap=True)
        return self._stderr

    @property
    def stdout(self) -> Any:
        """A Rich console on the current ``sys.stdout``, used for tables."""
        if self._stdout is None:
            from rich.console import Console

            self._stdout = Console(file=sys.stdout, highlight=False, emoji=False, markup=False)
        return self._stdout

    # ------------------------------------------------------------------ stdout

    def result(self, text: str) -> None:
        """Print the command's primary result (a path, a report); skipped in JSON mode only."""
        if not self.json_mode:
            typer.echo(text)

    def done(self, text: str) -> None:
        """Print a one-line summary of what was written; skipped with ``-q`` and in JSON mode."""
        if not (self.quiet or self.json_mode):
            typer.echo(text)

    def data(self, obj: Any) -> None:
        """Print ``obj`` as indented, standard JSON (JSON mode only): NaN and infinities, which JSON has no words
        for (a config's metrics may hold them), become null."""
        if self.json_mode:
            typer.echo(json.dumps(_finite(obj), indent=2, default=str, allow_nan=False))

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
        """Print a table on stdout (human mode only); see :func:`print_table`."""
        if not self.json_mode:
            print_table(self.stdout, columns, rows, title)

    # ------------------------------------------------------------------ stderr

    def note(self, text: str) -> None:
        """``note: ...`` on stderr, unless ``-q``."""
        if not self.quiet:
            self.stderr.print(f"note: {text}", style="dim")

    def info(self, text: str) -> None:
        """A plain progress message on stderr, unless ``-q``."""
        if not self.quiet:
            self.stderr.print(text)

    def warn(self, text: str) -> None:
        """``warning: ...`` on stderr in yellow (shown even with ``-q``)."""
        self.stderr.print(f"warning: {one_line(text)}", style="yellow")

    def error(self, text: str) -> None:
        """``error: ...`` on stderr in red, on exactly one line."""
        self.stderr.print(f"error: {one_line(text)}", style="bold red")

    @contextlib.contextmanager
    def progress(self, total: int, description: str) -> Iterator[Callable[[int], None]]:
        """A transient progress bar on stderr; yields ``advance(n)``.

        Hidden with ``-q`` and when stderr is not a terminal (pipes, CI, tests).
        """
        if self.quiet or not self.stderr.is_terminal:
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.stderr, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)


class _NoteHandler(logging.Handler):
    """Prints the library's log records: INFO as ``note:`` (the first ``limit`` of them, so a folder
    of a thousand JPEGs does not flood the terminal), WARNING and above as ``warning:``."""

    def __init__(self, out: Output, limit: int = 20) -> None:
        super().__init__(logging.INFO)
        self.out = out
        self.limit = limit
        self.shown = 0
        self.hidden = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                self.out.warn(message)
            elif self.shown < self.limit:
                self.shown += 1
                self.out.note(message)
            else:
                self.hidden += 1
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)

    def summarize(self) -> None:
        """Say how many notes were held back, if any."""
        if self.hidden:
            self.out.note(f"{self.hidden} more like these not shown")


PIPE_CLOSED_EXIT_CODE = 128 + 13
"""Exit status when the reader of stdout went away (``dcvae models | head -1``): SIGPIPE's, as shell tools give."""


def stdout_closed() -> typer.Exit:
    """For a BrokenPipeError on stdout: point stdout at /dev/null (so the interpreter's final flush cannot fail
    again) and return the quiet exit to raise; the reader had what it wanted, so nothing is printed."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return typer.Exit(PIPE_CLOSED_EXIT_CODE)


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on its end); where poll is
    missing (Windows), a broken pipe is taken to be stdout's."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def _os_error_message(err: OSError) -> str:
    where = err.filename if err.filename is not None else None
    reason = err.strerror or str(err)
    if isinstance(err, FileNotFoundError) and where is not None:
        return f"{where}: no such file or folder; check the path"
    return f"{where}: {reason}" if where is not None else reason


def _fail(out: Output, message: str) -> typer.Exit:
    """Print the error line and return the exit to raise."""
    out.error(message)
    return typer.Exit(1)


TERMINATED_EXIT_CODE = 128 + signal.SIGTERM
"""Exit status of a command stopped by SIGTERM (the shell's convention)."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the body runs, SIGTERM (``timeout``, ``docker stop``, a batch scheduler) exits through Python's
    unwinding like Ctrl-C does, so staged outputs are deleted instead of left behind as hidden folders. Only
    installed from the main thread and over the default action (an application's own handler stays)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def exit_cleanly(signum: int, frame: Any) -> None:
        raise SystemExit(TERMINATED_EXIT_CODE)

    signal.signal(signal.SIGTERM, exit_cleanly)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def session(*, quiet: bool = False, json_mode: bool = False, debug: bool = False,
            handle_sigterm: bool = True) -> Iterator[Output]:
    """Run a command body with the CLI's printing and error rules; yields its :class:`Output`.

    * ``dcvae_tools`` INFO log records become ``note:`` lines and Python warnings ``warning:`` lines.
    * A :class:`~dcvae_tools.errors.DCVAEError` or ``OSError`` becomes one ``error:`` line and exit
      status 1; any other exception too, labelled as an internal error. Typer's own exits and usage
      errors pass through unchanged (usage errors exit with status 2).
    * With ``debug`` (``--debug`` or ``DCVAE_DEBUG=1``) exceptions propagate with their traceback.
    * SIGTERM exits with status 143 after the same clean-up as Ctrl-C (no staged output is left), unless
      ``handle_sigterm`` is False (``dcvae app`` closes its server on SIGTERM itself); a reader of stdout that
      went away (``| head``) ends the command quietly with status 141.
    """
    debug = debug_requested(debug)
    out = Output(quiet=quiet, json_mode=json_mode)
    logger = logging.getLogger(LOGGER_NAME)
    handler = _NoteHandler(out)
    previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)

    def show_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        out.warn(str(message))

    try:
        with warnings.catch_warnings(), (_sigterm_unwinds() if handle_sigterm else contextlib.nullcontext()):
            warnings.showwarning = show_warning
            yield out
        handler.summarize()
    except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
        raise
    except DCVAEError as err:
        if debug:
            raise
        raise _fail(out, str(err)) from None
    except BrokenPipeError as err:
        if _stdout_reader_gone():
            raise stdout_closed() from None
        if debug:
            raise
        raise _fail(out, _os_error_message(err)) from None  # another pipe or socket: an output of the command
    except OSError as err:
        if debug:
            raise
        raise _fail(out, _os_error_message(err)) from None
    except Exception as err:
        if debug:
            raise
        if type(err).__name__ == "OutOfMemoryError":
            message = "out of memory on the device; lower --batch-size or use --device cpu"
        else:
            message = (
                f"internal error ({type(err).__name__}: {one_line(str(err))}); rerun with --debug "
                "for the traceback and please report it"
            )
        raise _fail(out, message) from None
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def print_table(console: Any, columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """Print a table on ``console`` (a Rich console); nothing in it is ever cut short.

    On a terminal: a Rich table whose cells wrap between words (each column is at least as wide as its
    longest word), or one record per row when even that does not fit. Piped or redirected: plain
    tab-separated lines with a header, for scripts.
    """
    if not console.is_terminal:
        if title:
            console.file.write(f"# {title}\n")
        for line in (columns, *rows):
            console.file.write("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in line) + "\n")
        return
    from rich.table import Table

    # each column at least as wide as its longest word, so cells wrap between words, never inside one
    widths = [
        max((len(word) for cell in (column, *(row[index] for row in rows)) for word in cell.split()), default=1)
        for index, column in enumerate(columns)
    ]
    if sum(widths) + 2 * (len(columns) - 1) > console.width:  # too narrow for a table: one record each
        if title:
            console.print(title, style="bold", highlight=False, markup=False)
        for row in rows:
            console.print(row[0], style="bold", highlight=False, markup=False)
            for column, cell in zip(columns[1:], row[1:], strict=True):
                console.print(f"  {column}: {cell}", highlight=False, markup=False)
        return
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for column, width in zip(columns, widths, strict=True):
        table.add_column(column, min_width=width, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table, highlight=False)


def _finite(obj: Any) -> Any:
    """``obj`` with every float that is not finite replaced by None, through dicts, lists and tuples."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(value) for value in obj]
    return obj
