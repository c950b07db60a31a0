"""Freed memory goes back to the system after a big step (glibc), and nothing breaks
where the C library cannot do that."""

from __future__ import annotations

import ctypes
import gc
import sys

import pytest

from bot import memory


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_freed_records_leave_the_resident_set() -> None:
    if memory._malloc_trim() is None:
        pytest.skip("this C library has no malloc_trim (glibc has it: Debian's libc6)")
    # Blocks the allocator keeps in its heap (as a step's row JSON and dict tables); the
    # last one stays alive, so the heap cannot simply shrink from the top.
    blocks = [bytes(2048) for _ in range(20_000)]
    last = blocks[-1]
    del blocks
    held = _resident_bytes()
    assert memory.release_free_memory()
    assert _resident_bytes() < held - 30 * 1024 * 1024
    assert len(last) == 2048


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoTrim:
        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", lambda _name: NoTrim())
    memory._malloc_trim.cache_clear()
    try:
        assert memory._malloc_trim() is None
        assert memory.release_free_memory() is False
    finally:
        memory._malloc_trim.cache_clear()


def test_what_lives_all_day_is_frozen_and_young_objects_collected_less_often() -> None:
    thresholds = gc.get_threshold()
    try:
        loaded = [[index] for index in range(1_000)]  # as the compiled subscriptions
        memory.keep_long_lived()
        assert gc.get_freeze_count() >= len(loaded)
        assert gc.get_threshold()[0] == memory.YOUNG_COLLECTION_EVERY
        cycle: list[object] = []
        cycle.append(cycle)  # garbage made afterwards is still found
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
