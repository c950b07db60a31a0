"""Giving freed memory back to the system after a big step, and keeping the cyclic
garbage collector off what lives all day and off a big step's batch.

A match step allocates and frees hundreds of thousands of records. CPython frees them,
but the C allocator keeps the pages for reuse, so the daemon's resident size would stay at
the step's high-water mark all day. glibc's ``malloc_trim`` returns the free pages; where
the C library has none (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Allocations between two collections of the youngest generation (CPython: 700). A claim
# of alerts or a match chunk makes hundreds of thousands of short-lived objects; at 700
# the collector ran 1,500 times in 15 s of alerts, 4 % of the time. At 10,000 it runs 60
# times, the alerts went 4-6 % faster (A/B, bench/cycle.py's 50k data) and RSS the same.
YOUNG_COLLECTION_EVERY = 10_000


@contextmanager
def cyclic_gc_off() -> Iterator[None]:
    """The cyclic collector off for a block that allocates hundreds of thousands of
    acyclic objects (reference counting frees them): it would only rescan the growing
    batch again and again, a quarter of the match step's time at 50,000 subscriptions."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def keep_long_lived() -> None:
    """After loading: what exists now (the compiled subscriptions, some 100k objects each
    day-long) is never scanned again, and the young generation is collected less often."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 20, 20)


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
