"""The ``dcvae`` Typer app, its root callback (``--version``) and the console-script entry point.

The commands are registered on :data:`app` by the command modules (``hub_commands``,
``image_commands``, ``latent_commands``), which :mod:`dcvae_tools.cli` imports.
"""

import sys
from typing import Annotated

import typer

from dcvae_tools.errors import DCVAEError

from ._output import Output, debug_requested

app = typer.Typer(
    name="dcvae",
    help=(
        "Encode, reconstruct, sample, interpolate, mix and edit images with DC-VAE "
        "(Dual Contradistinctive Generative Autoencoder, CVPR 2021). "
        "Every command takes --help; models are named with -m NAME|REPO|PATH "
        "(see `dcvae models`)."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _examples(*lines: str) -> str:
    """A command epilog listing examples, kept verbatim by the help formatter (the ``\\b`` marker)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"dcvae-tools {version('dcvae-tools')}")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            typer.echo("dcvae-tools (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """DC-VAE inference and latent editing."""


def main() -> None:
    """Console-script entry point: run the app, mapping anything that escaped the commands to one line.

    Commands already turn their expected errors into ``error: ...`` and exit status 1 (see
    :func:`dcvae_tools.cli._output.session`); this catches the rest, e.g. Ctrl-C (status 130).
    """
    debug = debug_requested("--debug" in sys.argv[1:])
    try:
        app()
    except KeyboardInterrupt:
        if debug:
            raise
        Output().error("interrupted")
        sys.exit(130)
    except DCVAEError as err:  # raised before a command's session, e.g. by a malformed environment variable
        if debug:
            raise
        Output().error(str(err))
        sys.exit(1)
    except Exception as err:
        if debug:
            raise
        Output().error(f"{type(err).__name__}: {err} (rerun with --debug for the traceback)")
        sys.exit(1)
