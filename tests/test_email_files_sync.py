"""The file outbox under a burst: a send returns only once its file is durable, and
concurrent senders share the directory fsync (group commit)."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from pathlib import Path

import pytest

from bot.errors import TransientDeliveryError
from handlers.email import files
from handlers.email.files import DirectorySync, FileNotifier, eml_name
from tests.support_email import alert_message, corpus, parse

HANG = 30  # seconds: only a hang would take this long


async def test_concurrent_callers_share_one_directory_fsync(tmp_path: Path) -> None:
    sync = DirectorySync(tmp_path)
    await asyncio.gather(*(sync.sync() for _ in range(20)))
    assert sync.syncs == 1  # all were waiting when it began
    await sync.sync()
    assert sync.syncs == 2


async def test_a_caller_during_an_fsync_waits_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    real = files.fsync_dir

    def slow_first(directory: Path) -> None:
        if not started.is_set():
            started.set()
            release.wait(HANG)
        real(directory)

    monkeypatch.setattr(files, "fsync_dir", slow_first)
    sync = DirectorySync(tmp_path)
    first = asyncio.create_task(sync.sync())
    await asyncio.to_thread(started.wait, HANG)
    late = asyncio.create_task(sync.sync())  # its rename may postdate the fsync under way
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(first, HANG)
    await asyncio.wait_for(late, HANG)
    assert sync.syncs == 2


async def test_a_message_reported_sent_was_in_its_directory_at_an_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable means: the file was in place (renamed) when a directory fsync ran, and that
    fsync had finished before the send returned."""
    synced: list[set[str]] = []
    real = files.fsync_dir

    def recording(directory: Path) -> None:
        present = set(os.listdir(directory))
        real(directory)
        synced.append(present)

    monkeypatch.setattr(files, "fsync_dir", recording)
    notifier = FileNotifier(tmp_path / "outbox")
    assert notifier.concurrency >= 1
    messages = [alert_message(corpus()[n : n + 1], key=f"k{n}") for n in range(16)]

    async def send_and_check(number: int) -> None:
        await notifier.send_alerts(messages[number])
        name = eml_name(messages[number].key)
        assert any(name in seen for seen in synced), f"{name} returned before an fsync"

    await asyncio.gather(*(send_and_check(n) for n in range(16)))
    await notifier.close()
    assert notifier.directory_sync.syncs <= 16
    written = sorted((tmp_path / "outbox").iterdir())
    assert [p.name for p in written] == sorted(eml_name(m.key) for m in messages)
    assert all(parse(p.read_bytes())["Message-ID"] for p in written)  # whole messages


async def test_a_failed_directory_fsync_fails_every_send_it_covered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(directory: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "fsync_dir", full)
    notifier = FileNotifier(tmp_path / "outbox")
    messages = [alert_message(corpus()[n : n + 1], key=f"k{n}") for n in range(3)]
    outcomes = await asyncio.gather(
        *(notifier.send_alerts(m) for m in messages), return_exceptions=True
    )
    assert all(isinstance(o, TransientDeliveryError) for o in outcomes)
    assert "No space left" in str(outcomes[0])
    await notifier.close()


async def test_a_cancelled_sender_does_not_stop_the_others(tmp_path: Path) -> None:
    notifier = FileNotifier(tmp_path / "outbox")
    messages = [alert_message(corpus()[n : n + 1], key=f"k{n}") for n in range(4)]
    tasks = [asyncio.create_task(notifier.send_alerts(m)) for m in messages]
    await asyncio.sleep(0)
    tasks[0].cancel()
    await asyncio.wait_for(asyncio.gather(*tasks[1:]), HANG)
    await notifier.close()
    names = {p.name for p in (tmp_path / "outbox").iterdir()}
    assert {eml_name(m.key) for m in messages[1:]} <= names
