"""Papers, their sources' state, search and the match queue: ``PaperStore`` on PostgreSQL.

Ingests are serialised by a transaction-scoped advisory lock, across every process: each
one reads the stored papers it merges with and writes the result, so two ingests of the
same paper must not interleave (SQLite gets the same from its single writer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import asyncpg

from bot.models import AlertRule, Paper, Sighting, SourceState, UpsertResult
from bot.store.merge import merge_batch
from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase
from bot.store.postgres._tsquery import expression_query, words_query
from bot.store.postgres.follows import record_changes
from bot.store.records import QueuedPapers

INGEST_LOCK = 0x696E6765  # "inge": the advisory lock ingests take
# ts_rank's weights for D, C (abstract), B (authors), A (title): SQLite's bm25 5 : 2 : 1.
SEARCH_WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"

_COLUMNS = ", ".join(codec.PAPER_COLUMNS)
_SELECT_PAPERS = f"SELECT {_COLUMNS} FROM papers"
_NEWEST = "ORDER BY sort_date DESC, key DESC"
_INSERT_PAPER = (
    f"INSERT INTO papers ({_COLUMNS}, updated_at) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(codec.PAPER_COLUMNS) + 2))})"
)
_UPDATE_PAPER = (
    "UPDATE papers SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(codec.PAPER_COLUMNS[1:], start=2))
    + f", updated_at = ${len(codec.PAPER_COLUMNS) + 1} WHERE key = $1"
)
# New papers always wait as news; an update joins the queue only if nothing waits for it.
_QUEUE_NEW = """
INSERT INTO match_queue (paper_key, upvotes_only, queued_at)
SELECT k, false, $2 FROM unnest($1::text[]) AS k
ON CONFLICT (paper_key) DO UPDATE SET upvotes_only = false,
    version = match_queue.version + 1
"""
_QUEUE_UPDATED = """
INSERT INTO match_queue (paper_key, upvotes_only, queued_at)
SELECT k, true, $2 FROM unnest($1::text[]) AS k
ON CONFLICT (paper_key) DO UPDATE SET version = match_queue.version + 1
"""
_SAVE_STATE = """
INSERT INTO sources_state (source_id, http_cache, last_success, last_note)
VALUES ($1, $2, $3, $4)
ON CONFLICT (source_id) DO UPDATE SET
    http_cache = excluded.http_cache,
    last_success = excluded.last_success,
    last_note = excluded.last_note,
    last_error = NULL,
    last_error_at = NULL
"""
_RECORD_ERROR = """
INSERT INTO sources_state (source_id, last_error, last_error_at) VALUES ($1, $2, $3)
ON CONFLICT (source_id) DO UPDATE SET
    last_error = excluded.last_error,
    last_error_at = excluded.last_error_at
"""
_SELECT_STATES = f"SELECT {', '.join(codec.STATE_COLUMNS)} FROM sources_state"
_QUEUE = (
    "SELECT q.version, q.upvotes_only, "
    + ", ".join(f"p.{c}" for c in codec.PAPER_COLUMNS)
    + " FROM match_queue q JOIN papers p ON p.key = q.paper_key"
    " ORDER BY q.queued_at DESC, q.paper_key DESC LIMIT $1"
)


def _search_sql(tsquery: str, limit: str, offset: str = "") -> str:
    return (
        f"SELECT {_COLUMNS} FROM papers, (SELECT {tsquery} AS q) AS query WHERE search @@ q "
        f"ORDER BY ts_rank('{SEARCH_WEIGHTS}', search, q) DESC, key LIMIT {limit} {offset}"
    )


class PapersMixin(PgBase):
    """``PaperStore`` over PostgreSQL."""

    async def ingest(
        self,
        sightings: Sequence[Sighting],
        state: SourceState,
        now: datetime,
        alert: AlertRule | None = None,
    ) -> UpsertResult:
        """Merge one source's batch and save its state in one transaction (see ``Store``)."""
        async with self._tx(f"storing papers from source {state.source_id!r}") as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", INGEST_LOCK)
            clean = codec.without_nul(sightings)
            keys = list(dict.fromkeys(s.paper.key for s in clean))
            stored = await _load_papers(conn, keys)
            plan = merge_batch(stored, clean, now)
            stamp = codec.utc(now)
            await conn.executemany(
                _INSERT_PAPER, [(*codec.paper_values(p), stamp) for p in plan.inserts]
            )
            await conn.executemany(
                _UPDATE_PAPER, [(*codec.paper_values(p), stamp) for p in plan.updates]
            )
            alert = alert or AlertRule()
            await record_changes(conn, stored, plan.updates, alert.follow_upvotes, stamp)
            await conn.execute(_SAVE_STATE, *_state_values(state, stamp))
            return await _queue_for_matching(conn, plan.result, alert, stamp)

    async def record_source_error(self, source_id: str, error: str, now: datetime) -> None:
        async with self._tx(f"recording an error for source {source_id!r}") as conn:
            await conn.execute(
                _RECORD_ERROR, codec.text(source_id), codec.text(error), codec.utc(now)
            )

    async def get_source_state(self, source_id: str) -> SourceState | None:
        sql = f"{_SELECT_STATES} WHERE source_id = $1"
        rows = await self._fetch(
            f"reading state of source {source_id!r}", sql, codec.text(source_id)
        )
        return codec.state_from_row(rows[0]) if rows else None

    async def list_source_states(self) -> list[SourceState]:
        sql = f'{_SELECT_STATES} ORDER BY source_id COLLATE "C"'
        return [codec.state_from_row(r) for r in await self._fetch("listing source states", sql)]

    async def get_paper(self, key: str) -> Paper | None:
        sql = f"{_SELECT_PAPERS} WHERE key = $1"
        rows = await self._fetch(f"reading paper {key!r}", sql, codec.text(key))
        return codec.paper_from_row(rows[0]) if rows else None

    async def get_papers(self, keys: Sequence[str]) -> dict[str, Paper]:
        wanted = list(dict.fromkeys(codec.texts(keys)))
        sql = f"{_SELECT_PAPERS} WHERE key = ANY($1::text[])"
        rows = await self._fetch("reading papers", sql, wanted)
        return {row["key"]: codec.paper_from_row(row) for row in rows}

    async def list_papers(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers whose ``coalesce(published, first_seen)`` is at or after ``since``, newest first.

        Raises ``InvalidQueryError`` for a limit below 1.
        """
        sql_limit = codec.check_limit(limit)
        sql = f"{_SELECT_PAPERS} WHERE ($1::timestamptz IS NULL OR sort_date >= $1) {_NEWEST}"
        rows = await self._fetch(
            "listing papers", f"{sql} LIMIT $2", codec.opt_utc(since), sql_limit
        )
        return [codec.paper_from_row(row) for row in rows]

    async def count_papers_since(self, since: datetime) -> int:
        sql = "SELECT count(*) FROM papers WHERE sort_date >= $1"
        found = await self._fetch("counting papers", sql, codec.opt_utc(since))
        return int(found[0][0])

    async def search(self, text: str, limit: int = 10) -> list[Paper]:
        """Papers holding every word of ``text`` (title, abstract or authors), best first.

        Ranked with title words weighted highest. Raises ``InvalidQueryError`` when ``text``
        holds no word (blank, or only punctuation) or ``limit`` is below 1.
        """
        tsquery, params = words_query(text, 2)
        sql = _search_sql(tsquery, "$1")
        rows = await self._fetch("searching papers", sql, codec.check_limit(limit), *params)
        return [codec.paper_from_row(row) for row in rows]

    async def search_candidates(self, match: str | None, limit: int, offset: int) -> list[Paper]:
        if match is None:
            sql = f"{_SELECT_PAPERS} {_NEWEST} LIMIT $1 OFFSET $2"
            rows = await self._fetch("listing papers", sql, limit, offset)
        else:
            tsquery, params = expression_query(match, 3)
            sql = _search_sql(tsquery, "$1", "OFFSET $2")
            rows = await self._fetch("searching papers", sql, limit, offset, *params)
        return [codec.paper_from_row(row) for row in rows]

    async def queued_for_matching(self, limit: int = 5000) -> QueuedPapers:
        """Papers waiting for the match step, newest first, with the versions read."""
        rows = await self._fetch("reading the match queue", _QUEUE, limit)
        papers = [(codec.paper_from_row(tuple(row)[2:]), bool(row[1])) for row in rows]
        return QueuedPapers(
            new=tuple(p for p, upvotes_only in papers if not upvotes_only),
            updated=tuple(p for p, upvotes_only in papers if upvotes_only),
            versions={p.key: int(row[0]) for (p, _), row in zip(papers, rows, strict=True)},
        )


async def _load_papers(conn: asyncpg.Connection, keys: list[str]) -> dict[str, Paper]:
    rows = await conn.fetch(f"{_SELECT_PAPERS} WHERE key = ANY($1::text[])", keys)
    return {row["key"]: codec.paper_from_row(row) for row in rows}


def _state_values(state: SourceState, now: datetime) -> tuple[object, ...]:
    return (
        codec.text(state.source_id),
        codec.http_cache_value(state.http_cache),
        codec.utc(state.last_success or now),
        codec.opt_text(state.last_note),
    )


async def _queue_for_matching(
    conn: asyncpg.Connection, result: UpsertResult, alert: AlertRule, stamp: datetime
) -> UpsertResult:
    """Queue what may be alerted; old news stays out of the queue for good."""
    news = [p for p in result.new if not alert.quiet_new(p)]
    if news:
        await conn.execute(_QUEUE_NEW, [p.key for p in news], stamp)
    updates = [p.key for p in result.updated if not alert.late(p)]
    if updates:
        await conn.execute(_QUEUE_UPDATED, updates, stamp)
    return replace(result, quiet=len(result.new) - len(news))
