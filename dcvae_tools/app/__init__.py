"""``dcvae app``: an interactive editor in the browser, built on gradio (``pip install "dcvae-tools[app]"``).

    >>> from dcvae_tools.app import launch
    >>> launch()                                   # the default model on http://127.0.0.1:7860

Modules: :mod:`.handlers` (what each page action does, through the public Python API; no gradio),
:mod:`.sliders` (which edit sliders a model gets, with their units and ranges), :mod:`.files` (the one
temporary folder everything is written to) and :mod:`.ui` (the gradio page). gradio is imported only by
:func:`build_app` and :func:`launch`, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcvae_tools.errors import DCVAEError

if TYPE_CHECKING:
    import gradio

INSTALL_HINT = 'pip install "gradio>=6.0,<7"'
DEFAULT_HOST = "127.0.0.1"


class GradioMissingError(DCVAEError):
    """gradio (the ``app`` extra) is not installed."""


def require_gradio() -> None:
    """Prepare gradio's environment (temp folder, no analytics) and import it, or raise
    :class:`GradioMissingError` saying how to install it."""
    from .files import prepare_environment

    prepare_environment()
    try:
        import gradio  # noqa: F401
    except ImportError as err:
        raise GradioMissingError(
            f"the app needs gradio, which is not installed ({err.name or err}); install it with: {INSTALL_HINT} (the "
            'app extra: pip install -e ".[app]" in a clone)'
        ) from None


class PortInUseError(DCVAEError):
    """The port asked for cannot be served on (another server holds it, or it needs privileges)."""


def _gradio_address(host: str | None) -> str:
    """The address gradio serves on for ``host``: it, else ``GRADIO_SERVER_NAME``, else 127.0.0.1 (an empty
    ``GRADIO_SERVER_NAME`` serves every interface)."""
    import os

    return host or os.environ.get("GRADIO_SERVER_NAME", DEFAULT_HOST)


def refuse_unusable_port(host: str | None, port: int) -> None:
    """Raise :class:`PortInUseError` if ``port`` cannot be bound on ``host`` (None: as gradio decides), before
    anything slow runs: gradio would say so only after the model loads, and in terms of its own settings. A port
    that is free now can still be taken before the server binds it; gradio's own message covers that."""
    import errno
    import os
    import socket

    if not 1 <= port <= 65535:
        raise PortInUseError(f"port {port} is not a port number: use 1-65535, or leave it out")
    address = _gradio_address(host)
    try:  # every address the name stands for, as the server binds them; an empty one is every interface
        found = socket.getaddrinfo(address.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # an unknown host name: gradio's own error names it
    for family, kind, where in dict.fromkeys((family, kind, where) for family, kind, _, _, where in found):
        try:
            with socket.socket(family, kind) as probe:
                if os.name == "nt":  # there SO_REUSEADDR would let the probe share a port someone listens on
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
                else:  # as the server: a port left in TIME_WAIT is no conflict
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(where)
        except OSError as err:
            if err.errno == errno.EAFNOSUPPORT:
                continue  # no IPv6 on this machine: the server skips that address too
            shown = address or "every address"
            if err.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)):
                why = "is in use (another `dcvae app`?)"
            else:
                why = f"cannot be served ({err.strerror or err})"
            raise PortInUseError(
                f"port {port} on {shown} {why}: pick another port, or leave it out for the first free one from 7860"
            ) from None


def serves_only_this_machine(host: str | None, share: bool) -> bool:
    """Whether a page served on ``host`` (None: ``GRADIO_SERVER_NAME`` or 127.0.0.1, as gradio decides) is out of
    other people's reach: a loopback address and no public share link."""
    import ipaddress

    address = _gradio_address(host)
    if share:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def _stop_on_sigterm_as_on_ctrl_c() -> Any:
    """docker stop, systemd and a Space restart send SIGTERM: while gradio blocks, the server then closes as on
    Ctrl-C, so the temporary folder is removed on the way out (Python's default SIGTERM ends at once, skipping
    that). Returns the handler to put back when gradio returns, or None where none was set."""
    import signal
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers; gradio's own loop runs there when it blocks
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return None  # a REPL or notebook: gradio does not block there, and the session keeps its own SIGTERM
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None  # the embedding program handles it

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def build_app(model: str | None = None, *, offline: bool = False, allow_local_folders: bool = False,
              device: str | None = None) -> gradio.Blocks:
    """The editor page as a ``gradio.Blocks`` (not yet serving), starting on ``model`` (default: the package's
    default model). Launch it with :func:`launch`, or ``.launch(css=dcvae_tools.app.ui.CSS)``.

    ``allow_local_folders`` lets visitors load files and folders of this machine by path: off unless asked for,
    since this function cannot know where the page will be served (:func:`launch` decides it from the host)."""
    require_gradio()
    from .handlers import Editor
    from .ui import build_ui

    return build_ui(Editor(model, offline=offline, allow_local_folders=allow_local_folders, device=device))


def launch(model: str | None = None, *, host: str | None = DEFAULT_HOST, port: int | None = None,
           share: bool = False, offline: bool = False, allow_local_folders: bool | None = None,
           device: str | None = None, block: bool = True, quiet: bool = False, **launch_kwargs: Any) -> gradio.Blocks:
    """Build the editor and serve it on ``host:port`` (``port`` ``None``: the first free one from 7860;
    ``host`` ``None``: gradio's default, ``GRADIO_SERVER_NAME`` or 127.0.0.1). ``share=True`` asks gradio for a
    public link (needs the internet). With ``block=False`` it returns once the server runs (stop it with
    ``.close()``).

    ``allow_local_folders`` (whether visitors may load files and folders of this machine by path) defaults to
    yes only for a page nobody else can reach: served on a loopback address and not shared."""
    from .ui import CSS

    if port is not None:
        refuse_unusable_port(host, port)
    if allow_local_folders is None:
        allow_local_folders = serves_only_this_machine(host, share)
    demo = build_app(model, offline=offline, allow_local_folders=allow_local_folders, device=device)
    demo.queue(default_concurrency_limit=1)
    previous = _stop_on_sigterm_as_on_ctrl_c() if block else None
    try:
        demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block, quiet=quiet,
                    css=CSS, show_error=False, footer_links=["gradio"], **launch_kwargs)
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)
    return demo


__all__ = [
    "INSTALL_HINT",
    "GradioMissingError",
    "PortInUseError",
    "build_app",
    "launch",
    "refuse_unusable_port",
    "require_gradio",
    "serves_only_this_machine",
]
