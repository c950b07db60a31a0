"""Subscribers' addresses stay owner-only on disk, whatever the umask outside systemd."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.accounts.tokens import KEY_FILE, load_secret_key
from bot.settings import load_settings
from bot.store.sqlite.store import open_sqlite_store
from handlers.email.files import write_atomically


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """A login shell's umask: new files 0644, new directories 0755, unless we say otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_is_owner_only_with_its_wal_and_shm(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    store = await open_sqlite_store(data / "paperbell.db")
    try:
        names = sorted(p.name for p in data.iterdir())
        assert {"paperbell.db", "paperbell.db-wal", "paperbell.db-shm"} <= set(names)
        assert mode(data) == 0o700
        assert {name: mode(data / name) for name in names} == dict.fromkeys(names, 0o600)
    finally:
        await store.close()


async def test_an_older_loose_database_is_tightened_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "paperbell.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    assert mode(data / "paperbell.db") == 0o644
    caplog.set_level(logging.INFO, logger="bot.store.private_files")
    for _ in range(2):
        store = await open_sqlite_store(data / "paperbell.db")
        await store.close()
    assert mode(data) == 0o700 and mode(data / "paperbell.db") == 0o600
    said = [r.getMessage() for r in caplog.records if r.name == "bot.store.private_files"]
    assert len(said) == 1 and "paperbell.db (644)" in said[0]


def test_the_secret_key_and_its_directory_are_owner_only(tmp_path: Path) -> None:
    fresh = load_settings(data_dir=tmp_path / "new")
    load_secret_key(fresh)
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / KEY_FILE) == 0o600
    old = tmp_path / "old"
    old.mkdir()
    (old / KEY_FILE).write_text("k" * 64)
    assert load_secret_key(load_settings(data_dir=old)) == b"k" * 64
    assert mode(old / KEY_FILE) == 0o600


def test_outbox_messages_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "outbox" / "digest.eml"
    write_atomically(path, b"Subject: hi\r\n\r\nbody\r\n")
    assert mode(path.parent) == 0o700 and mode(path) == 0o600
