"""``dcvae app``: the interactive editor in the browser (the optional ``app`` extra, built on gradio).

gradio and torch are imported only when the command runs, so ``dcvae --help`` stays fast.
"""

from typing import Annotated

import typer

from ._app import _examples, app
from ._options import DebugOpt, DeviceOpt, ModelOpt, OfflineOpt, QuietOpt, _resolve_device
from ._output import session


@app.command(
    name="app",
    epilog=_examples(
        "dcvae app",
        "dcvae app -m mnist-32 --port 8000",
        "dcvae app -m ./checkpoints/my-run --host 0.0.0.0",
    ),
)
def app_command(
    model: ModelOpt = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", metavar="N", min=1, max=65535, show_default="the first free one from 7860",
                     help="Port to serve the page on."),
    ] = None,
    host: Annotated[
        str,
        typer.Option("--host", metavar="ADDRESS",
                     help="Address to listen on; 0.0.0.0 makes the page reachable from other machines."),
    ] = "127.0.0.1",
    share: Annotated[
        bool,
        typer.Option("--share/--no-share",
                     help="Also ask gradio for a public *.gradio.live link (needs the internet)."),
    ] = False,
    local_folders: Annotated[
        bool | None,
        typer.Option("--local-folders/--no-local-folders",
                     show_default="only on a loopback address without --share",
                     help="Let visitors load files and folders of this machine by path in the model box (-m is "
                          "always loaded). Off, they pick released models and Hub repos, without your Hub token."),
    ] = None,
    offline: OfflineOpt = False,
    device: DeviceOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Open the interactive editor in the browser.

    A local web page (gradio) to pick a model, upload or drop an image (or click an example) and see it beside
    its reconstruction, edit it with one slider per attribute direction, interpolate between two images (lerp or
    slerp, with an animated GIF), mix two images, sample from the prior, and download every result as PNG and the
    latents as safetensors. Runs until Ctrl-C. Needs the app extra: pip install "dcvae-tools[app]".
    """
    with session(quiet=quiet, debug=debug, handle_sigterm=False) as out:  # the server closes on SIGTERM itself
        from dcvae_tools.app import launch, refuse_unusable_port, require_gradio

        require_gradio()  # before loading the model: a missing extra is the first thing to say
        if port is not None:
            refuse_unusable_port(host, port)
        out.info("loading the model and building the page ...")
        launch(model, host=host, port=port, share=share, offline=offline, device=_resolve_device(device),
               quiet=quiet, allow_local_folders=local_folders)
