"""``paperbell migrate-store``: copy a SQLite database into PostgreSQL, table by table.

Rows go over in batches, each batch one transaction of upserts keyed on the table's
primary key, so a second run (after an interruption, or to pick up rows written since)
changes nothing that is already there and adds what is missing. Values change type on the
way: ISO text becomes ``timestamptz``/``date``, JSON lists ``text[]``/``bigint[]``, 0/1
``boolean``. Identity sequences are moved past the copied ids, and the subscription
counter is bumped so running matchers reload. Counts are compared per table at the end.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bot.errors import StoreError
from bot.store.postgres._base import describe_url
from bot.store.postgres.store import PostgresStore
from bot.store.sqlite.store import open_sqlite_reader

BATCH = 1000
# Parents before children (foreign keys). Not copied: PostgreSQL's own bookkeeping
# (schema_migrations), leases (they belong to running processes) and the subscription
# counter (bumped instead); SQLite's search index is PostgreSQL's generated tsvector.
TABLES = (
    "papers",
    "sources_state",
    "match_queue",
    "meta",
    "vectorizer",
    "paper_vectors",
    "users",
    "subscriptions",
    "deliveries",
    "matches",
    "confirmations",
    "feedback",
    "follows",
    "paper_changes",
)
NOT_COPIED = frozenset({"schema_migrations", "leases", "subscription_changes"})

Progress = Callable[[str, int, int], None]  # table, rows copied, rows in all


@dataclass(frozen=True, slots=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pg_type: str  # information_schema's udt_name: timestamptz, _text, bool, …
    identity: bool


async def copy_store(sqlite_path: Path, url: str, progress: Progress) -> list[TableCount]:
    """Copy every table; the counts of each table on both sides, after."""
    reader = await open_sqlite_reader(sqlite_path)  # missing file or old schema: one line
    await reader.close()
    target = await PostgresStore.open(url)  # creates or upgrades the tables
    await target.close()
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        source.close()
        raise StoreError(f"cannot connect to {describe_url(url)}: {exc}") from exc
    try:
        return await _copy_all(source, conn, progress)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"copying into {describe_url(url)} failed: {exc}") from exc
    finally:
        source.close()
        await conn.close()


async def _copy_all(
    source: sqlite3.Connection, conn: asyncpg.Connection, progress: Progress
) -> list[TableCount]:
    await _check_tables(conn)
    for table in TABLES:
        await _copy_table(source, conn, table, progress)
    await conn.execute("UPDATE subscription_changes SET n = n + 1 WHERE id = 1")
    counts = []
    for table in TABLES:
        (ours,) = source.execute(f"SELECT count(*) FROM {table}").fetchone()
        theirs = await conn.fetchval(f"SELECT count(*) FROM {table}")
        counts.append(TableCount(table, int(ours), int(theirs)))
    return counts


async def _check_tables(conn: asyncpg.Connection) -> None:
    """A table this copier does not know (a newer migration) must not be skipped silently."""
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    unknown = {r[0] for r in rows} - set(TABLES) - NOT_COPIED
    if unknown:
        raise StoreError(f"migrate-store does not know how to copy {sorted(unknown)}")


async def _columns(conn: asyncpg.Connection, table: str) -> list[Column]:
    rows = await conn.fetch(
        "SELECT column_name, udt_name, is_identity FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'"
        " ORDER BY ordinal_position",
        table,
    )
    return [Column(r[0], r[1], r[2] == "YES") for r in rows]


async def _key(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary",
        table,
    )
    return [r[0] for r in rows]


async def _copy_table(
    source: sqlite3.Connection, conn: asyncpg.Connection, table: str, progress: Progress
) -> None:
    columns, key = await _columns(conn, table), await _key(conn, table)
    insert = _upsert(table, columns, key)
    (total,) = source.execute(f"SELECT count(*) FROM {table}").fetchone()
    done = 0
    progress(table, done, total)
    for rows in _batches(source, table, [c.name for c in columns], key):
        values = [tuple(_convert(c, v) for c, v in zip(columns, row, strict=True)) for row in rows]
        async with conn.transaction():
            await conn.executemany(insert, values)
        done += len(rows)
        progress(table, done, total)
    for column in columns:
        if column.identity:  # new rows must not take the ids we copied
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column.name}'),"
                f" (SELECT coalesce(max({column.name}), 0) + 1 FROM {table}), false)"
            )


def _upsert(table: str, columns: Sequence[Column], key: Sequence[str]) -> str:
    names = ", ".join(c.name for c in columns)
    params = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    overriding = " OVERRIDING SYSTEM VALUE" if any(c.identity for c in columns) else ""
    rest = [c.name for c in columns if c.name not in key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in rest) if rest else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table} ({names}){overriding} VALUES ({params})"
        f" ON CONFLICT ({', '.join(key)}) {action}"
    )


def _batches(
    source: sqlite3.Connection, table: str, names: Sequence[str], key: Sequence[str]
) -> Iterator[list[tuple[Any, ...]]]:
    order = ", ".join(key)  # some tables are WITHOUT ROWID
    cursor = source.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY {order}")
    while rows := cursor.fetchmany(BATCH):
        yield rows


def _convert(column: Column, value: Any) -> Any:
    """SQLite's stored form of a value to what asyncpg takes for ``column``."""
    if value is None:
        return None
    kind = column.pg_type
    if kind == "timestamptz":
        when = datetime.fromisoformat(value)
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "bool":
        return bool(value)
    if kind.startswith("_"):  # an array, stored by SQLite as a JSON list
        return [_text(v) for v in json.loads(value)]
    return _text(value)


def _text(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL; the PostgreSQL store drops it the same way."""
    return value.replace("\x00", "") if isinstance(value, str) else value
