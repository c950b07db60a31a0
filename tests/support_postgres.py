"""A real PostgreSQL for the tests: one server per session, one fresh database per test.

The server comes from Debian's ``postgresql`` package (``initdb`` and ``pg_ctl`` under
/usr/lib/postgresql/<version>/bin). It runs from a temporary directory, listening on a
loopback port only, as an unprivileged user (``nobody`` when the tests run as root: the
server refuses to run as root). Speed over durability: no fsync, no synchronous commit.

Each test gets its own database, copied from a template that is migrated once per
session (``CREATE DATABASE … TEMPLATE``: a file copy, far quicker than migrating), and
dropped after the test. A pytest plugin (``pytest_plugins`` in conftest.py) providing:

* ``postgres_server`` (session) — the running server, or a skip saying which package
  brings it;
* ``postgres_url`` — the URL of a fresh, migrated database for this test;
* ``postgres_store`` — a ``PostgresStore`` open on it, closed after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bot.store.postgres.store import PostgresStore

SKIP_REASON = "needs Debian package postgresql (initdb, pg_ctl under /usr/lib/postgresql)"
TEMPLATE = "paperbell_template"
SUPERUSER = "paperbell"
_SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "shared_buffers=32MB",
)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


@dataclass
class PostgresServer:
    """A running server: its port, data directory and a counter naming test databases."""

    bin_dir: Path
    root: Path
    port: int
    user_prefix: tuple[str, ...]

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str) -> None:
        command = [*self.user_prefix, str(self.bin_dir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        data = self.root / "data"
        self.run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        options = " ".join(f"-c {s}" for s in _SERVER_SETTINGS)
        options += f" -c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
        log = self.root / "server.log"
        self.run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged(root: Path) -> tuple[str, ...]:
    """The command prefix running a tool as ``nobody`` (root only), owning ``root``."""
    if os.geteuid() != 0:
        return ()
    nobody = pwd.getpwnam("nobody")
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    return ("setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups", "--")  # fmt: skip


async def _make_template(server: PostgresServer) -> None:
    conn = await asyncpg.connect(server.url("postgres"))
    try:
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    store = await PostgresStore.open(server.url(TEMPLATE))
    await store.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("setpriv") is None):
        pytest.skip(SKIP_REASON)
    root = Path(tempfile.mkdtemp(prefix="paperbell-pg-"))
    server = PostgresServer(bin_dir, root, _free_port(), _unprivileged(root))
    try:
        server.start()
        asyncio.run(_make_template(server))
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # never started
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


_numbers = itertools.count(1)


async def empty_database(server: PostgresServer) -> str:
    """The URL of a new database paperbell never opened: no tables at all."""
    name = f"empty_{os.getpid()}_{next(_numbers)}"
    admin = await asyncpg.connect(server.url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return server.url(name)


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, migrated database of its own for this test."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    admin = await asyncpg.connect(postgres_server.url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        yield postgres_server.url(name)
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(postgres_url)
    yield opened
    await opened.close()
