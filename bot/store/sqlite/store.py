"""The SQLite ``Store``: papers, their full-text index, and each source's state.

Two connections, each with its own aiosqlite thread:

* the writer does every write, one transaction at a time: an ``asyncio.Lock`` serialises
  them inside this process and ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so a
  transaction never fails half-way on lock upgrade ("database is locked"); another process
  waits up to ``busy_timeout``;
* the reader answers get/list/search. With WAL it reads the last committed snapshot while
  a long ingest is writing, instead of queueing behind it on the writer's thread.

Reads that must agree with the rows about to be written (the batch's existing papers)
happen on the writer, inside the same IMMEDIATE transaction.

Later tables add their methods the same way, as mixins in their own modules: a write is
``async with self._write("what") as db:``, a read is ``await self._read(...)``. Users and
subscriptions live in ``sqlite_accounts``, matches, the outbox and digests in
``sqlite_outbox``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import NoDatabaseError, StoreError
from bot.models import AlertRule, Paper, Sighting, SourceState, UpsertResult
from bot.store.merge import merge_batch
from bot.store.private_files import PRIVATE_DIR, create_private, tighten
from bot.store.protocols import QueuedPapers
from bot.store.sqlite import _codec as codec
from bot.store.sqlite._codec import chunks
from bot.store.sqlite.accounts import AccountsMixin
from bot.store.sqlite.claims import ClaimsMixin
from bot.store.sqlite.digests import DigestsMixin
from bot.store.sqlite.follows import FollowsMixin, record_changes
from bot.store.sqlite.leases import LeasesMixin
from bot.store.sqlite.meta import MetaMixin
from bot.store.sqlite.outbox import OutboxMixin
from bot.store.sqlite.relevance import RelevanceMixin
from bot.store.sqlite.schema import check_schema, connect, load_migrations, migrate
from bot.store.sqlite.selfservice import SelfServiceMixin

# bm25 weights for (title, abstract, authors): a word in the title counts most.
SEARCH_WEIGHTS = (5.0, 1.0, 2.0)

_COLUMNS = ", ".join(codec.PAPER_COLUMNS)
_SELECT_PAPERS = f"SELECT {_COLUMNS} FROM papers"
_KEY_COLUMN = codec.PAPER_COLUMNS.index("key")
_QUEUE_COLUMNS = "q.version, q.upvotes_only, " + ", ".join(f"p.{c}" for c in codec.PAPER_COLUMNS)
# New papers always wait as news; an update joins the queue only if nothing waits for it.
_QUEUE_NEW = (
    "INSERT INTO match_queue (paper_key, upvotes_only, queued_at) VALUES (?, 0, ?)"
    " ON CONFLICT (paper_key) DO UPDATE SET upvotes_only = 0, version = version + 1"
)
_QUEUE_UPDATED = (
    "INSERT INTO match_queue (paper_key, upvotes_only, queued_at) VALUES (?, 1, ?)"
    " ON CONFLICT (paper_key) DO UPDATE SET version = version + 1"
)
_INSERT_PAPER = (
    f"INSERT INTO papers ({_COLUMNS}, updated_at) "
    f"VALUES ({', '.join('?' * (len(codec.PAPER_COLUMNS) + 1))})"
)
_UPDATE_PAPER = (
    "UPDATE papers SET "
    + ", ".join(f"{c} = ?" for c in (*codec.PAPER_COLUMNS[1:], "updated_at"))
    + " WHERE key = ?"
)
_SAVE_STATE = """
INSERT INTO sources_state (source_id, http_cache, last_success, last_note)
VALUES (?, ?, ?, ?)
ON CONFLICT (source_id) DO UPDATE SET
    http_cache = excluded.http_cache,
    last_success = excluded.last_success,
    last_note = excluded.last_note,
    last_error = NULL,
    last_error_at = NULL
"""
_RECORD_ERROR = """
INSERT INTO sources_state (source_id, last_error, last_error_at) VALUES (?, ?, ?)
ON CONFLICT (source_id) DO UPDATE SET
    last_error = excluded.last_error,
    last_error_at = excluded.last_error_at
"""
_SELECT_STATES = f"SELECT {', '.join(codec.STATE_COLUMNS)} FROM sources_state"
_SEARCH = (
    f"SELECT {', '.join('p.' + c for c in codec.PAPER_COLUMNS)} "
    "FROM papers_fts JOIN papers AS p ON p.id = papers_fts.rowid "
    "WHERE papers_fts MATCH ? "
    f"ORDER BY bm25(papers_fts, {', '.join(map(str, SEARCH_WEIGHTS))}), p.key LIMIT ?"
)


async def open_sqlite_store(path: Path) -> SqliteStore:
    """Open (creating it and its directory on first use) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the database directory {path.parent}: {exc}") from exc
    _make_private(path)
    with _sqlite_errors(f"opening {path}"):
        writer = await connect(path)
        try:
            await migrate(writer, path, load_migrations())
            reader = await connect(path, read_only=True)
        except BaseException:
            await writer.close()
            raise
    return SqliteStore(path, writer, reader)


def _make_private(path: Path) -> None:
    """The database 0600 before SQLite opens it: its WAL and SHM files copy its mode."""
    siblings = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
    try:
        tighten([path.parent, path, *siblings])
        create_private(path)
    except OSError as exc:
        raise StoreError(f"cannot create the database {path}: {exc.strerror or exc}") from exc


async def open_sqlite_reader(path: Path) -> SqliteStore:
    """Open an existing database for reading only: nothing is created and nothing migrated.

    Raises ``NoDatabaseError`` when there is no file yet, ``SchemaOutdatedError`` when it
    needs a migration. Any write through the store fails (``query_only``).
    """
    _require_file(path)
    with _sqlite_errors(f"opening {path}"):
        reader = await connect(path, read_only=True)
        try:
            await check_schema(reader, path, len(load_migrations()))
        except BaseException:
            await reader.close()
            raise
    return SqliteStore(path, reader, reader)


@asynccontextmanager
async def reading_sqlite_store(path: Path) -> AsyncIterator[SqliteStore]:
    """``open_sqlite_reader`` for one block, closed after it."""
    store = await open_sqlite_reader(path)
    try:
        yield store
    finally:
        await store.close()


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise NoDatabaseError(
            f"no database yet at {path} — run `paperbell run` or `paperbell ingest` first"
        )


class SqliteStore(
    AccountsMixin,
    SelfServiceMixin,
    ClaimsMixin,
    OutboxMixin,
    DigestsMixin,
    MetaMixin,
    LeasesMixin,
    RelevanceMixin,
    FollowsMixin,
):
    """``Store`` over one SQLite file. Build it with ``open_sqlite_store``."""

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._closed = False

    # --- papers -------------------------------------------------------------------------------

    async def ingest(
        self,
        sightings: Sequence[Sighting],
        state: SourceState,
        now: datetime,
        alert: AlertRule | None = None,
    ) -> UpsertResult:
        """Merge one source's batch and save its state in one transaction (see ``Store``).

        Outcomes are counted per distinct paper key, so a paper listed twice in one batch
        counts once.
        """
        async with self._write(f"storing papers from source {state.source_id!r}") as db:
            keys = list(dict.fromkeys(s.paper.key for s in sightings))
            stored = await _load_papers(db, keys)
            plan = merge_batch(stored, sightings, now)
            stamp = codec.iso(now)
            await db.executemany(
                _INSERT_PAPER, [(p.key, *codec.paper_values(p), stamp) for p in plan.inserts]
            )
            await db.executemany(
                _UPDATE_PAPER, [(*codec.paper_values(p), stamp, p.key) for p in plan.updates]
            )
            alert = alert or AlertRule()
            await record_changes(db, stored, plan.updates, alert.follow_upvotes, stamp)
            await db.execute(_SAVE_STATE, _state_values(state, now))
            return await _queue_for_matching(db, plan.result, alert, stamp)

    async def queued_for_matching(self, limit: int = 5000) -> QueuedPapers:
        """Papers waiting for the match step, newest first, with the versions read."""
        sql = (
            f"SELECT {_QUEUE_COLUMNS} FROM match_queue q JOIN papers p ON p.key = q.paper_key"
            " ORDER BY q.queued_at DESC, q.paper_key DESC LIMIT ?"
        )
        rows = await self._read("reading the match queue", sql, limit)
        papers = [(codec.paper_from_row(row[2:]), bool(row[1])) for row in rows]
        return QueuedPapers(
            new=tuple(p for p, upvotes_only in papers if not upvotes_only),
            updated=tuple(p for p, upvotes_only in papers if upvotes_only),
            versions={row[2 + _KEY_COLUMN]: int(row[0]) for row in rows},
        )

    async def get_paper(self, key: str) -> Paper | None:
        rows = await self._read(f"reading paper {key!r}", f"{_SELECT_PAPERS} WHERE key = ?", key)
        return codec.paper_from_row(rows[0]) if rows else None

    async def list_papers(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers whose ``coalesce(published, first_seen)`` is at or after ``since``, newest first.

        Raises ``InvalidQueryError`` for a limit below 1.
        """
        sql_limit = codec.check_limit(limit)
        order = "ORDER BY sort_date DESC, key DESC LIMIT ?"
        if since is None:
            rows = await self._read("listing papers", f"{_SELECT_PAPERS} {order}", sql_limit)
        else:
            sql = f"{_SELECT_PAPERS} WHERE sort_date >= ? {order}"
            rows = await self._read("listing papers", sql, codec.iso(since), sql_limit)
        return [codec.paper_from_row(row) for row in rows]

    async def count_papers_since(self, since: datetime) -> int:
        sql = "SELECT count(*) FROM papers WHERE sort_date >= ?"
        found = await self._read("counting papers", sql, codec.iso(since))
        return int(found[0][0])

    async def search(self, text: str, limit: int = 10) -> list[Paper]:
        """Papers holding every word of ``text`` (title, abstract or authors), best first.

        Ranked by bm25 with title words weighted highest. Raises ``InvalidQueryError`` when
        ``text`` holds no word (blank, or only punctuation) or ``limit`` is below 1.
        """
        query = codec.fts_query(text)
        rows = await self._read("searching papers", _SEARCH, query, codec.check_limit(limit))
        return [codec.paper_from_row(row) for row in rows]

    async def search_candidates(self, match: str | None, limit: int, offset: int) -> list[Paper]:
        if match is None:
            sql = f"{_SELECT_PAPERS} ORDER BY sort_date DESC, key DESC LIMIT ? OFFSET ?"
            rows = await self._read("listing papers", sql, limit, offset)
        else:
            sql = f"{_SEARCH} OFFSET ?"
            rows = await self._read("searching papers", sql, match, limit, offset)
        return [codec.paper_from_row(row) for row in rows]

    # --- sources ------------------------------------------------------------------------------

    async def record_source_error(self, source_id: str, error: str, now: datetime) -> None:
        async with self._write(f"recording an error for source {source_id!r}") as db:
            await db.execute(_RECORD_ERROR, (source_id, error, codec.iso(now)))

    async def get_source_state(self, source_id: str) -> SourceState | None:
        sql = f"{_SELECT_STATES} WHERE source_id = ?"
        rows = await self._read(f"reading state of source {source_id!r}", sql, source_id)
        return codec.state_from_row(rows[0]) if rows else None

    async def list_source_states(self) -> list[SourceState]:
        rows = await self._read("listing source states", f"{_SELECT_STATES} ORDER BY source_id")
        return [codec.state_from_row(row) for row in rows]

    # --- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close both connections, after any write in progress; closing twice is fine."""
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with _sqlite_errors(f"closing {self.path}"):
                try:
                    await self._reader.close()
                finally:
                    await self._writer.close()

    # --- the two ways in ----------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: commit if the body succeeds, roll back if anything raises."""
        async with self._write_lock:
            self._check_open()
            with _sqlite_errors(what):
                try:
                    await self._writer.execute("BEGIN IMMEDIATE")
                    yield self._writer
                except BaseException:
                    # Shielded: a second cancellation must not skip it either.
                    await asyncio.shield(self._roll_back())
                    raise
                await self._writer.execute("COMMIT")

    async def _write_one(self, what: str, sql: str, params: Sequence[Any]) -> None:
        """One statement as a transaction of its own (SQLite's autocommit): all of it or
        none, like ``_write``, in one trip to the writer's thread instead of three (BEGIN,
        the statement, COMMIT). Each trip waits for the event loop, which a message being
        rendered holds for milliseconds; the dispatcher writes "sent" after every message.
        """
        await self._write_rows(what, sql, params)

    async def _write_rows(self, what: str, sql: str, params: Sequence[Any]) -> list[codec.Row]:
        """``_write_one``, with the rows the statement returns (``UPDATE ... RETURNING``):
        the statement and its fetch in one trip, so SQLite's write lock, which other
        processes wait for, is held for the statement alone and never across a turn of our
        loop."""
        async with self._write_lock:
            self._check_open()
            with _sqlite_errors(what):
                return list(await self._writer.execute_fetchall(sql, params))

    async def _roll_back(self) -> None:
        """End whatever transaction the writer is in, even one whose ``BEGIN`` was cancelled.

        A cancelled ``await`` does not stop the statement: aiosqlite runs it on its thread
        anyway, so a ``BEGIN IMMEDIATE`` cancelled while waiting for the lock may still
        open a transaction later, when ``in_transaction`` has already been looked at. The
        thread runs statements in order, so this ROLLBACK comes after it, whatever it did.
        """
        # No transaction to end: BEGIN failed, or SQLite rolled back itself (SQLITE_FULL).
        with suppress(sqlite3.OperationalError):
            await self._writer.execute("ROLLBACK")

    async def _read(self, what: str, sql: str, *params: Any) -> list[codec.Row]:
        self._check_open()
        with _sqlite_errors(what):
            # execute_fetchall runs the statement and fetches in one step on the reader's
            # thread, so concurrent reads never interleave on a shared cursor.
            return list(await self._reader.execute_fetchall(sql, params))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store at {self.path} is closed")


@contextmanager
def _sqlite_errors(what: str) -> Iterator[None]:
    """Turn database and data errors into one StoreError saying what we were doing."""
    try:
        yield
    except (sqlite3.Error, ValueError, OverflowError) as exc:
        # ValueError: a naive datetime or a paper that cannot be merged; OverflowError: an
        # integer too large for SQLite. Both are bugs upstream, reported like a DB failure.
        raise StoreError(f"{what} failed: {exc}") from exc


async def _load_papers(db: aiosqlite.Connection, keys: list[str]) -> dict[str, Paper]:
    found: dict[str, Paper] = {}
    for chunk in chunks(keys):
        sql = f"{_SELECT_PAPERS} WHERE key IN ({', '.join('?' * len(chunk))})"
        for row in await db.execute_fetchall(sql, chunk):
            paper = codec.paper_from_row(row)
            found[paper.key] = paper
    return found


def _state_values(state: SourceState, now: datetime) -> tuple[Any, ...]:
    return (
        state.source_id,
        codec.http_cache_json(state.http_cache),
        codec.iso(state.last_success or now),
        state.last_note,
    )


async def _queue_for_matching(
    db: aiosqlite.Connection, result: UpsertResult, alert: AlertRule, stamp: str
) -> UpsertResult:
    """Queue what may be alerted; old news stays out of the queue for good."""
    news = [p for p in result.new if not alert.quiet_new(p)]
    await db.executemany(_QUEUE_NEW, [(p.key, stamp) for p in news])
    updates = [(p.key, stamp) for p in result.updated if not alert.late(p)]
    await db.executemany(_QUEUE_UPDATED, updates)
    return replace(result, quiet=len(result.new) - len(news))
