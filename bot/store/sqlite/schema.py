"""Opening SQLite connections with paperbell's settings, and applying numbered migrations.

Migrations are ``bot/store/migrations/NNNN_name.sql``, numbered from 0001 without gaps.
``PRAGMA user_version`` holds the number of the last one applied; opening a database applies
the rest in one ``BEGIN IMMEDIATE`` transaction, so two processes opening the same new file
cannot both apply them, and a failing migration leaves the schema as it was.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.errors import SchemaOutdatedError, SchemaTooNewError, StoreError

MIGRATIONS_PACKAGE = "bot.store.sqlite.migrations"
BUSY_TIMEOUT_MS = 5000

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        return split_statements(self.sql)


def load_migrations(package: str = MIGRATIONS_PACKAGE) -> list[Migration]:
    """Every migration in ``package``, in order; raises StoreError on a gap or a duplicate."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match and entry.is_file():
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations in {package} must be numbered 1..N, found {numbers}")
    return found


def split_statements(script: str) -> list[str]:
    """Split SQL text into statements; a ';' inside a trigger, string or comment is kept."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _holds_sql(pending):
                statements.append(pending.strip())
            pending = ""
    if _holds_sql(pending):
        raise StoreError(f"migration ends inside a statement: {pending.strip()[:60]!r}")
    return statements


def _holds_sql(text: str) -> bool:
    """False for text of only whitespace, comment lines and a lone ';'."""
    lines = (line.strip() for line in text.splitlines())
    return any(line and line != ";" and not line.startswith("--") for line in lines)


# The writer's page cache, in KiB (negative for SQLite): the match step's chunks each
# touch a range of every owner-keyed index; with SQLite's 2 MB default most of those pages
# were read again for every chunk. 8 and 16 MB were no faster than 4 MB on the 50k cycle
# bench (the match step's time within run-to-run noise) and stayed resident all day.
WRITER_CACHE_KIB = -4_096
# Prepared statements kept per connection (Python's default: 128). Claims and reads bind
# hundreds of values in one statement, so their texts vary with the count and each
# prepared copy is large: 128 of them held some 14 MB more after 30 s of alerts on the
# 50k cycle bench's database, where 32 keep the statements that recur and most of that.
STATEMENT_CACHE = 32
# The interpreter's switch interval, at most (Python's default: 5 ms). aiosqlite runs each
# connection's statements on a thread; sqlite3 lets go of the GIL around every step (each
# row read or written) and must take it back after. While the event loop's thread runs
# Python (rendering mail, matching), each take-back waited out the whole interval: a
# dispatcher's read of its next claim (some 2,600 match rows, 2 ms alone) beside the
# messages it renders took over 20 s, and 0.2 s at 0.5 ms (bench/store_threads.py).
GIL_SWITCH_SECONDS = 0.0005


async def connect(path: Path, *, read_only: bool = False) -> aiosqlite.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with our pragmas set."""
    # isolation_level=None: Python's sqlite3 must not open transactions behind our back,
    # or BEGIN IMMEDIATE would fail with "cannot start a transaction within a transaction".
    hand_back_quickly()
    db = await aiosqlite.connect(path, isolation_level=None, cached_statements=STATEMENT_CACHE)
    try:
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; fsync at checkpoint
        if read_only:
            await db.execute("PRAGMA query_only = ON")
        else:
            await db.execute(f"PRAGMA cache_size = {WRITER_CACHE_KIB}")
            await _enable_wal(db, path)
    except BaseException:
        await db.close()
        raise
    return db


def hand_back_quickly() -> None:
    """Lower the process's switch interval to ``GIL_SWITCH_SECONDS`` (never raise it): set
    where the threads that need it are made, so no entry point (the daemon, its email
    helpers, a CLI command) can forget it."""
    if sys.getswitchinterval() > GIL_SWITCH_SECONDS:
        sys.setswitchinterval(GIL_SWITCH_SECONDS)


async def _enable_wal(db: aiosqlite.Connection, path: Path) -> None:
    rows = list(await db.execute_fetchall("PRAGMA journal_mode = WAL"))
    mode = rows[0][0] if rows else None
    if mode != "wal":
        raise StoreError(f"{path}: could not switch the database to WAL mode (got {mode!r})")


async def migrate(db: aiosqlite.Connection, path: Path, migrations: list[Migration]) -> int:
    """Apply pending migrations; return the schema version now in force."""
    latest = len(migrations)
    await db.execute("BEGIN IMMEDIATE")
    try:
        current = await user_version(db)
        if current > latest:
            raise _too_new(path, current, latest)
        for migration in migrations[current:]:
            await _apply(db, migration)
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
    return max(current, latest)


async def _apply(db: aiosqlite.Connection, migration: Migration) -> None:
    try:
        for statement in migration.statements():
            await db.execute(statement)
    except sqlite3.Error as exc:
        raise StoreError(f"migration {migration.name} failed: {exc}") from exc
    # PRAGMA takes no parameters; the number comes from a file name matched as digits.
    await db.execute(f"PRAGMA user_version = {migration.number:d}")


async def user_version(db: aiosqlite.Connection) -> int:
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def check_schema(db: aiosqlite.Connection, path: Path, latest: int) -> None:
    """For readers that must not change the file: refuse a schema other than ``latest``."""
    current = await user_version(db)
    if current > latest:
        raise _too_new(path, current, latest)
    if current < latest:
        # Read-only commands never migrate: an upgrade is the operator's step, not a side
        # effect of `status` typed while the old daemon still runs on the file.
        raise SchemaOutdatedError(
            f"{path} has schema version {current}, older than this paperbell's ({latest}): "
            "upgrade it with `paperbell migrate` (or start `paperbell run`)",
            current=current,
            latest=latest,
        )


def _too_new(path: Path, current: int, latest: int) -> SchemaTooNewError:
    return SchemaTooNewError(
        f"{path} has schema version {current}, newer than this paperbell knows "
        f"({latest}); upgrade paperbell or use another database file"
    )
