"""Keeping freed memory in the C heap between batches (glibc).

Batch after batch, a network allocates and frees the same tens of MiB of activations. glibc's defaults hand
freed memory back to the kernel (large blocks are their own ``mmap`` regions, and the top of the heap is trimmed
as soon as it is free), so the next batch faults the same memory in again, page by page and zeroed. That cost
is largest when other work runs between the batches: measured on 2 cores, encoding 20,000 PNG files ran its
encoder 1.4 to 1.7x slower than the same encoder run back to back. :func:`keep_freed_memory` asks glibc to
serve blocks up to 32 MiB from the heap, to keep up to 256 MiB of it free before trimming, and to grow it
64 MiB at a time: at most that much more resident memory per heap (``benchmarks/heap.py`` measures
the gain).
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
SETTINGS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 256 * 2**20, M_TOP_PAD: 64 * 2**20}
"""The most glibc's own adaptive mmap threshold reaches on 64-bit, and room for a few batches' activations."""


@functools.cache
def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` to this process's C library, once; whether it took them all.

    The settings hold for the rest of the process (glibc has no way to scope them), and for processes it forks
    afterwards, so callers apply them after starting their worker processes. False off Linux or with a C
    library without ``mallopt`` (musl), where nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    accepted = [mallopt(option, value) == 1 for option, value in SETTINGS.items()]  # try every one
    return all(accepted)
