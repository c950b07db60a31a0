"""Giving freed memory back to the system after a big step.

A match step allocates and frees hundreds of thousands of records. CPython frees them,
but the C allocator keeps the pages for reuse, so the daemon's resident size would stay at
the step's high-water mark all day. glibc's ``malloc_trim`` returns the free pages; where
the C library has none (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; whether any were returned."""
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1
