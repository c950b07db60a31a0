"""Digests in SQLite: the matches waiting for one, and the digest rows made of them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.messages import Channel
from bot.models import MatchRecord, Owner
from bot.store.protocols import Delivery, DueDigest
from bot.store.sqlite import _accounts_codec as rows
from bot.store.sqlite._codec import Row, chunks, iso

_DELIVERY_RETURNING = f"RETURNING {', '.join(rows.DELIVERY_COLUMNS)}"
_WAITING = "digest_wanted = 1 AND digest_id IS NULL"
# Waiting matches none of whose subscriptions still asks for a digest.
_STOP_UNWANTED_WAITING = f"""
UPDATE matches SET digest_wanted = 0 WHERE owner = ? AND {_WAITING} AND NOT EXISTS (
    SELECT 1 FROM json_each(matches.sub_ids) AS j
    JOIN subscriptions AS s ON s.id = j.value
    WHERE s.min_relevance IS NOT NULL
       OR EXISTS (SELECT 1 FROM json_each(s.deliver) AS d WHERE d.value = 'email_digest'))
"""
# The same for many owners: the subscriptions that want a digest are found once for all of
# them (an owner's matches name only that owner's subscriptions), not joined per match.
_STOP_UNWANTED_WAITING_OF = f"""
UPDATE matches SET digest_wanted = 0 WHERE owner IN ({{marks}}) AND {_WAITING} AND NOT EXISTS (
    SELECT 1 FROM json_each(matches.sub_ids) AS j WHERE j.value IN (
        SELECT s.id FROM subscriptions AS s WHERE s.owner IN ({{marks}}) AND (
            s.min_relevance IS NOT NULL
            OR EXISTS (SELECT 1 FROM json_each(s.deliver) AS d WHERE d.value = 'email_digest'))))
"""
_OLDEST_WAITING_OF = (
    f"SELECT owner, min(matched_at) FROM matches WHERE owner IN ({{marks}}) AND {_WAITING}"
    " GROUP BY owner"
)
_INSERT_DIGESTS = f"""
INSERT INTO deliveries (key, owner, channel, kind, digest_date, next_attempt_at, created_at,
                        updated_at)
VALUES {{values}} ON CONFLICT DO NOTHING {_DELIVERY_RETURNING}
"""
_OLDEST_WAITING = f"SELECT min(matched_at) FROM matches WHERE owner = ? AND {_WAITING}"
_ATTACH_WAITING = f"UPDATE matches SET digest_id = ? WHERE owner = ? AND {_WAITING}"
_INSERT_DIGEST = f"""
INSERT INTO deliveries (key, owner, channel, kind, digest_date, next_attempt_at, created_at,
                        updated_at)
VALUES (?, ?, 'email', 'digest', ?, ?, ?, ?) ON CONFLICT DO NOTHING {_DELIVERY_RETURNING}
"""


def digest_key(owner: Owner, local_date: date) -> str:
    return f"digest:{Channel.EMAIL}:{owner}:{local_date.isoformat()}"


class DigestsMixin:
    """Digests: the matches waiting for one and the rows made of them; mixed into
    ``SqliteStore``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    async def digest_waiting(self) -> dict[Owner, int]:
        sql = f"SELECT owner, count(*) FROM matches WHERE {_WAITING} GROUP BY owner"
        found = await self._read("counting matches waiting for a digest", sql)
        return {Owner.parse(owner): count for owner, count in found}

    async def latest_digest_dates(self) -> dict[Owner, date]:
        sql = "SELECT owner, max(digest_date) FROM deliveries WHERE kind = 'digest' GROUP BY owner"
        found = await self._read("reading digest dates", sql)
        return {Owner.parse(owner): date.fromisoformat(day) for owner, day in found}

    async def create_digest(
        self,
        owner: Owner,
        local_date: date,
        now: datetime,
        *,
        allow_empty: bool = False,
        matched_by: datetime | None = None,
    ) -> Delivery | None:
        stamp, who = iso(now), str(owner)
        async with self._write(f"creating the {local_date} digest of {owner}") as db:
            await db.execute(_STOP_UNWANTED_WAITING, (who,))
            oldest = next(iter(await db.execute_fetchall(_OLDEST_WAITING, (who,))))[0]
            late = matched_by is not None and oldest is not None and oldest > iso(matched_by)
            if not allow_empty and (oldest is None or late):
                return None
            day = local_date.isoformat()
            params = (digest_key(owner, local_date), who, day, stamp, stamp, stamp)
            created = list(await db.execute_fetchall(_INSERT_DIGEST, params))
            if not created:
                return None  # that date's digest exists: never a second one
            digest = rows.delivery_from_row(created[0])
            await db.execute(_ATTACH_WAITING, (digest.id, who))
        return digest

    async def create_digests(
        self, due: Sequence[DueDigest], now: datetime, *, allow_empty: bool = False
    ) -> list[Delivery]:
        firsts: dict[Owner, DueDigest] = {}
        for wanted in due:
            firsts.setdefault(wanted.owner, wanted)
        first = list(firsts.values())
        created: dict[Owner, Delivery] = {}
        for chunk in chunks(first):
            async with self._write(f"creating {len(chunk)} digests") as db:
                for digest in await _create_digests(db, chunk, now, allow_empty=allow_empty):
                    created[digest.owner] = digest
        return [created[d.owner] for d in first if d.owner in created]

    async def drop_waiting_digest_matches(self, owner: Owner) -> int:
        async with self._write(f"dropping matches waiting for a digest of {owner}") as db:
            cursor = await db.execute(
                f"UPDATE matches SET digest_wanted = 0 WHERE owner = ? AND {_WAITING}",
                (str(owner),),
            )
            return cursor.rowcount

    async def digest_matches(self, delivery_id: int) -> list[MatchRecord]:
        sql = f"{rows.SELECT_MATCHES} WHERE digest_id = ? ORDER BY score DESC, paper_key"
        found = await self._read(f"reading the matches of digest #{delivery_id}", sql, delivery_id)
        return [rows.match_from_row(row) for row in found]

    async def waiting_digest_matches(self, owner: Owner) -> list[MatchRecord]:
        sql = f"{rows.SELECT_MATCHES} WHERE owner = ? AND {_WAITING} ORDER BY score DESC, paper_key"
        found = await self._read(
            f"reading matches waiting for a digest of {owner}", sql, str(owner)
        )
        return [rows.match_from_row(row) for row in found]


async def _create_digests(
    db: aiosqlite.Connection, due: Sequence[DueDigest], now: datetime, *, allow_empty: bool
) -> list[Delivery]:
    """``create_digest``'s statements, each once for a chunk of distinct owners."""
    owners = [str(d.owner) for d in due]
    marks = ", ".join("?" * len(owners))
    await db.execute(_STOP_UNWANTED_WAITING_OF.format(marks=marks), owners + owners)
    found = await db.execute_fetchall(_OLDEST_WAITING_OF.format(marks=marks), owners)
    oldest: dict[str, str | None] = {row[0]: row[1] for row in found}
    wanted = [d for d in due if _is_due(oldest.get(str(d.owner)), d.matched_by, allow_empty)]
    if not wanted:
        return []
    params = [value for d in wanted for value in _digest_values(d, iso(now))]
    values = ", ".join(["(?, ?, 'email', 'digest', ?, ?, ?, ?)"] * len(wanted))
    inserted = await db.execute_fetchall(_INSERT_DIGESTS.format(values=values), params)
    created = [rows.delivery_from_row(row) for row in inserted]  # not the dates that had one
    await db.executemany(_ATTACH_WAITING, [(d.id, str(d.owner)) for d in created])
    return created


def _digest_values(due: DueDigest, stamp: str) -> tuple[str, ...]:
    key = digest_key(due.owner, due.local_date)
    return (key, str(due.owner), due.local_date.isoformat(), stamp, stamp, stamp)


def _is_due(oldest: str | None, matched_by: datetime | None, allow_empty: bool) -> bool:
    late = matched_by is not None and oldest is not None and oldest > iso(matched_by)
    return allow_empty or (oldest is not None and not late)
