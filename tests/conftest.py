"""Shared test setup: an isolated environment, a network guard, and the one ``store``.

Every test gets a clean ``PAPERBELL_*`` environment and runs in its own working directory,
so a developer's ``.env`` or ``./data`` never leaks in. Any socket connection to an address
outside 127.0.0.0/8, ::1 or a Unix socket fails loudly: tests never reach the network.

``store`` is a fresh, open store, parametrized over every implementation in ``STORES``:
each test that asks for it (the contract suites ``test_contract_*.py`` and every test
written against the protocol) runs once per implementation. A test that looks under
SQLite (its file, its connections, its error messages) asks for ``sqlite_store``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.store.protocols import Store
from bot.store.sqlite.store import SqliteStore, open_sqlite_store

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Fixtures shared across test files (the loopback HTTP server, the sleep recorder).
pytest_plugins = ["tests.support_http", "tests.support_postgres"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0]
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"tests must not reach the network: {address!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PAPERBELL_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


# --- the store ----------------------------------------------------------------------------------

# Every implementation of bot.store.protocols.Store, each opened by the fixture
# "<name>_store" (``postgres_store`` lives in tests/support_postgres.py).
STORES = ["sqlite", "postgres"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where ``sqlite_store`` keeps its file: a data directory it has to create."""
    return tmp_path / "data" / "paperbell.db"


@pytest.fixture
async def sqlite_store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(db_path)
    yield opened
    await opened.close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    """A fresh, open store of each implementation in turn, closed after the test."""
    opened: Store = request.getfixturevalue(f"{request.param}_store")
    return opened
