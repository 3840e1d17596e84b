"""Shared pytest fixtures for the dcvae-tools test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hub_server import LocalHub

_LOOPBACK = "127.0.0.1"


def _reset_hf_http_session() -> None:
    """Drop huggingface_hub's shared HTTP client so the next call builds one from the current env
    (proxy settings are read when the client is created). Works across client versions."""
    try:
        from huggingface_hub import utils as hf_utils
    except ImportError:  # pragma: no cover - huggingface_hub is a hard dependency
        return
    reset = getattr(hf_utils, "close_session", None) or getattr(hf_utils, "reset_sessions", None)
    if reset is not None:
        reset()


@pytest.fixture
def local_hub(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalHub]:
    """A started `LocalHub` (see tests/hub_server.py), stopped at teardown.

    ``NO_PROXY`` / ``no_proxy`` are extended with 127.0.0.1 for the duration of the test so that a proxy
    configured in the environment never intercepts requests to the local server. Pass
    ``endpoint=local_hub.endpoint`` to the huggingface_hub calls.
    """
    proxy_configured = any(
        os.environ.get(name)
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    )
    for name in ("NO_PROXY", "no_proxy"):
        current = [host.strip() for host in os.environ.get(name, "").split(",") if host.strip()]
        if _LOOPBACK not in current:
            monkeypatch.setenv(name, ",".join([_LOOPBACK, *current]))
    if proxy_configured:
        _reset_hf_http_session()
    hub = LocalHub(tmp_path_factory.mktemp("local_hub")).start()
    try:
        yield hub
    finally:
        hub.stop()
        if proxy_configured:
            _reset_hf_http_session()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks run fastest on one thread (and far faster than two when the CPU is shared).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
