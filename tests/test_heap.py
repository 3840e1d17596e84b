"""dcvae_tools.heap: glibc keeps freed memory between batches (what dataset-scale encoding relies on for speed)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_keep_freed_memory_takes_every_setting_once() -> None:
    """In a fresh process: glibc accepts every setting (mallopt returns 1 for each), and a second call is free."""
    code = (
        "from dcvae_tools.heap import keep_freed_memory\n"
        "print(keep_freed_memory(), keep_freed_memory(), keep_freed_memory.cache_info().hits)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "1"]

