"""Matches and the digests they wait for: ``MatchStore`` on PostgreSQL.

Match rows and the deliveries they call for are written in one transaction, in bulk: each
batch is one JSON parameter unpacked by ``jsonb_to_recordset``, so a chunk of thousands of
records is a handful of statements. ``ON CONFLICT DO NOTHING … RETURNING`` says which
(owner, paper) pairs were new, so two processes recording the same match at once write its
alerts once. At most one digest per (owner, date) is the unique index's promise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from bot.messages import Channel, PlannedMatch
from bot.models import MatchRecord, Owner
from bot.store.postgres import _accounts_codec as rows
from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase
from bot.store.records import Delivery, DueDigest
from bot.store.sqlite._match_rows import FALLBACK, alert_key, first_per_pair, pair_of

WAITING = "m.digest_wanted AND m.digest_id IS NULL"
_MATCHES = f"SELECT {rows.MATCH_SELECT} FROM matches AS m"
_UNQUEUE = """
DELETE FROM match_queue AS q USING unnest($1::text[], $2::int[]) AS done (key, version)
WHERE q.paper_key = done.key AND q.version = done.version
"""
_INSERT_MATCHES = """
INSERT INTO matches (owner, paper_key, sub_ids, words, score, matched_at, digest_wanted)
SELECT x.owner, x.paper_key, x.sub_ids, x.words, x.score, x.matched_at, x.digest_wanted
FROM jsonb_to_recordset($1::jsonb) AS x (owner text, paper_key text, sub_ids bigint[],
    words text[], score double precision, matched_at timestamptz, digest_wanted boolean)
ORDER BY x.owner, x.paper_key
ON CONFLICT DO NOTHING RETURNING owner, paper_key
"""
_INSERT_ALERTS = """
INSERT INTO deliveries (key, owner, channel, kind, paper_key, payload, next_attempt_at,
                        created_at, updated_at)
SELECT x.key, x.owner, x.channel, 'alert', x.paper_key, x.payload, $2, $2, $2
FROM jsonb_to_recordset($1::jsonb) AS x (key text, owner text, channel text, paper_key text,
    payload jsonb)
ON CONFLICT (key) DO NOTHING
"""
# Waiting matches none of whose subscriptions still asks for a digest (a floor,
# min_relevance, holds alerts back for the digest too) stop waiting.
_STOP_UNWANTED_WAITING = f"""
UPDATE matches AS m SET digest_wanted = false WHERE m.owner = ANY($1::text[]) AND {WAITING}
AND NOT EXISTS (
    SELECT 1 FROM subscriptions AS s WHERE s.id = ANY(m.sub_ids)
    AND (s.min_relevance IS NOT NULL OR 'email_digest' = ANY(s.deliver)))
"""
_OLDEST_WAITING = f"""
SELECT m.owner, min(m.matched_at) FROM matches AS m WHERE m.owner = ANY($1::text[]) AND {WAITING}
GROUP BY m.owner
"""
_INSERT_DIGESTS = f"""
INSERT INTO deliveries (key, owner, channel, kind, digest_date, next_attempt_at, created_at,
                        updated_at)
SELECT d.key, d.owner, 'email', 'digest', d.day, $4, $4, $4
FROM unnest($1::text[], $2::text[], $3::date[]) AS d (key, owner, day)
ON CONFLICT DO NOTHING {rows.DELIVERY_RETURNING}
"""
_ATTACH_WAITING = f"""
UPDATE matches AS m SET digest_id = d.id
FROM unnest($1::bigint[], $2::text[]) AS d (id, owner)
WHERE m.owner = d.owner AND {WAITING}
"""
_COUNT_MATCHES = """
SELECT s.id, count(*) FROM matches AS m, unnest(m.sub_ids) AS s (id)
WHERE m.sub_ids && $1::bigint[] AND s.id = ANY($1::bigint[]) GROUP BY s.id
"""
_SENT = """(
    EXISTS (SELECT 1 FROM deliveries AS d WHERE d.owner = m.owner AND d.paper_key = m.paper_key
            AND d.kind = 'alert' AND d.state = 'sent')
    OR EXISTS (SELECT 1 FROM deliveries AS d WHERE d.id = m.digest_id AND d.state = 'sent'))"""
# Owners per digest transaction: short transactions, whatever the number due.
DIGEST_CHUNK = 500


def digest_key(owner: Owner, local_date: date) -> str:
    return f"digest:{Channel.EMAIL}:{owner}:{local_date.isoformat()}"


def _affected(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class MatchesMixin(PgBase):
    """``MatchStore`` over PostgreSQL."""

    async def record_matches(
        self,
        planned: Sequence[PlannedMatch],
        now: datetime,
        *,
        matched: Mapping[str, int] | None = None,
    ) -> list[MatchRecord]:
        unique = first_per_pair(planned)
        match_rows, alert_rows = _match_rows(unique.values()), _alert_rows(unique.values())
        done = dict(matched or {})
        async with self._tx(f"recording {len(unique)} matches") as conn:
            if done:
                await conn.execute(_UNQUEUE, list(done), list(done.values()))
            new = {(o, k) for o, k in await conn.fetch(_INSERT_MATCHES, match_rows)}
            alerts = [a for a in alert_rows if (a["owner"], a["paper_key"]) in new]
            if alerts:
                await conn.execute(_INSERT_ALERTS, alerts, codec.utc(now))
        return [p.record for p in unique.values() if pair_of(p) in new]

    async def get_matches(self, owner: Owner, paper_keys: Sequence[str]) -> dict[str, MatchRecord]:
        sql = f"{_MATCHES} WHERE m.owner = $1 AND m.paper_key = ANY($2::text[])"
        found = await self._fetch(
            f"reading matches of {owner}", sql, str(owner), codec.texts(paper_keys)
        )
        return {r.paper_key: r for r in map(rows.match_from_row, found)}

    async def count_matches(self, sub_ids: Sequence[int]) -> dict[int, int]:
        counts = dict.fromkeys(sub_ids, 0)
        if counts:
            found = await self._fetch("counting matches", _COUNT_MATCHES, list(counts))
            counts.update({int(sub_id): int(n) for sub_id, n in found})
        return counts

    async def count_matches_since(self, since: datetime) -> int:
        sql = "SELECT count(*) FROM matches WHERE matched_at >= $1"
        [(count,)] = await self._fetch("counting recent matches", sql, codec.utc(since))
        return int(count)

    async def recent_matches(
        self, owner: Owner, limit: int, *, sent_only: bool = False
    ) -> list[MatchRecord]:
        sent = f"AND {_SENT}" if sent_only else ""
        sql = (
            f"{_MATCHES} WHERE m.owner = $1 {sent} ORDER BY m.matched_at DESC, m.paper_key LIMIT $2"
        )
        found = await self._fetch(f"reading recent matches of {owner}", sql, str(owner), limit)
        return [rows.match_from_row(row) for row in found]

    # --- digests ----------------------------------------------------------------------------

    async def digest_waiting(self) -> dict[Owner, int]:
        sql = f"SELECT m.owner, count(*) FROM matches AS m WHERE {WAITING} GROUP BY m.owner"
        found = await self._fetch("counting matches waiting for a digest", sql)
        return {Owner.parse(owner): int(count) for owner, count in found}

    async def waiting_digest_matches(self, owner: Owner) -> list[MatchRecord]:
        sql = f"{_MATCHES} WHERE m.owner = $1 AND {WAITING} ORDER BY m.score DESC, m.paper_key"
        found = await self._fetch(
            f"reading matches waiting for a digest of {owner}", sql, str(owner)
        )
        return [rows.match_from_row(row) for row in found]

    async def drop_waiting_digest_matches(self, owner: Owner) -> int:
        sql = f"UPDATE matches AS m SET digest_wanted = false WHERE m.owner = $1 AND {WAITING}"
        async with self._tx(f"dropping matches waiting for a digest of {owner}") as conn:
            return _affected(await conn.execute(sql, str(owner)))

    async def latest_digest_dates(self) -> dict[Owner, date]:
        sql = "SELECT owner, max(digest_date) FROM deliveries WHERE kind = 'digest' GROUP BY owner"
        found = await self._fetch("reading digest dates", sql)
        return {Owner.parse(owner): day for owner, day in found}

    async def digest_matches(self, delivery_id: int) -> list[MatchRecord]:
        sql = f"{_MATCHES} WHERE m.digest_id = $1 ORDER BY m.score DESC, m.paper_key"
        found = await self._fetch(f"reading the matches of digest #{delivery_id}", sql, delivery_id)
        return [rows.match_from_row(row) for row in found]

    async def create_digest(
        self,
        owner: Owner,
        local_date: date,
        now: datetime,
        *,
        allow_empty: bool = False,
        matched_by: datetime | None = None,
    ) -> Delivery | None:
        due = DueDigest(owner, local_date, matched_by)
        async with self._tx(f"creating the {local_date} digest of {owner}") as conn:
            made = await _create_digests(conn, [due], codec.utc(now), allow_empty=allow_empty)
        return made[0] if made else None

    async def create_digests(
        self, due: Sequence[DueDigest], now: datetime, *, allow_empty: bool = False
    ) -> list[Delivery]:
        firsts: dict[Owner, DueDigest] = {}
        for wanted in due:
            firsts.setdefault(wanted.owner, wanted)
        first = list(firsts.values())
        created: dict[Owner, Delivery] = {}
        for start in range(0, len(first), DIGEST_CHUNK):
            chunk = first[start : start + DIGEST_CHUNK]
            async with self._tx(f"creating {len(chunk)} digests") as conn:
                made = await _create_digests(conn, chunk, codec.utc(now), allow_empty=allow_empty)
            created.update((d.owner, d) for d in made)
        return [created[d.owner] for d in first if d.owner in created]


async def _create_digests(
    conn: asyncpg.Connection, due: Sequence[DueDigest], now: datetime, *, allow_empty: bool
) -> list[Delivery]:
    """The digests of distinct owners, each statement once for all of them."""
    owners = [str(d.owner) for d in due]
    await conn.execute(_STOP_UNWANTED_WAITING, owners)
    oldest: dict[str, datetime] = dict(await conn.fetch(_OLDEST_WAITING, owners))
    wanted = [d for d in due if _is_due(oldest.get(str(d.owner)), d.matched_by, allow_empty)]
    if not wanted:
        return []
    keys = [digest_key(d.owner, d.local_date) for d in wanted]
    days = [d.local_date for d in wanted]
    inserted = await conn.fetch(_INSERT_DIGESTS, keys, [str(d.owner) for d in wanted], days, now)
    created = [rows.delivery_from_row(row) for row in inserted]  # not the dates that had one
    if created:
        ids, who = [d.id for d in created], [str(d.owner) for d in created]
        await conn.execute(_ATTACH_WAITING, ids, who)
    return created


def _is_due(oldest: datetime | None, matched_by: datetime | None, allow_empty: bool) -> bool:
    late = matched_by is not None and oldest is not None and oldest > codec.utc(matched_by)
    return allow_empty or (oldest is not None and not late)


def _match_rows(planned: Iterable[PlannedMatch]) -> list[dict[str, Any]]:
    """Match rows as JSON objects (``jsonb_to_recordset``'s input), sorted by owner."""
    out = []
    for p in planned:
        record = p.record
        out.append(
            {
                "owner": str(record.owner),
                "paper_key": codec.text(record.paper_key),
                "sub_ids": list(record.sub_ids),
                "words": codec.texts(record.words),
                "score": float(record.score),
                "matched_at": codec.utc(record.matched_at).isoformat(),
                "digest_wanted": bool(p.digest),
            }
        )
    return out


def _alert_rows(planned: Iterable[PlannedMatch]) -> list[dict[str, Any]]:
    """One alert row per route of each planned match (a fallback: email for Discord)."""
    out = []
    for p in planned:
        owner, key = str(p.record.owner), codec.text(p.record.paper_key)
        for route in p.alerts:
            out.append(
                {
                    "key": alert_key(route.channel, owner, key),
                    "owner": owner,
                    "channel": str(route.channel),
                    "paper_key": key,
                    "payload": FALLBACK if route.fallback else {},
                }
            )
    return out
