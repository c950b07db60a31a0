"""Claiming due deliveries, and the bulk reads that turn a claim into messages.

A mixin of ``PostgresStore``. A claim first finds its groups (owner, channel, kind) by
walking the claim order along an index, page by page, stopping as soon as it has ``limit``
groups, so a backlog of a million due rows costs a claim only the rows of the groups it
takes. It then locks those groups' due rows with ``FOR UPDATE SKIP LOCKED`` and moves them
to 'sending' under a lease, in one statement: a row another process is claiming right
then is skipped rather than waited for, and a row it has claimed meanwhile is no longer
due when the lock re-reads it. So any number of processes, each with its own pool, claim
from one outbox and never get the same row.

Claim order: confirmations (transactional mail) first, then rows whose lease ran out
(their process died mid-send), then alerts and digests oldest due first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import asyncpg

from bot.messages import Channel
from bot.models import MatchRecord, Owner, Subscription, User
from bot.store.postgres import _accounts_codec as rows
from bot.store.postgres._base import PgBase
from bot.store.protocols import DEFAULT_LEASE, DeliveryBatch, DeliveryKind

PAGE = 2000  # rows per step of the walk along the claim order
_DUE = (
    "((state = 'pending' AND next_attempt_at <= $1) OR (state = 'sending' AND lease_until <= $1))"
)
# Each walk selects id, at, owner, channel, kind in (at, id) order: $1 is now, $2 the
# channels (NULL: all); a page after the first adds $3 and $4, the (at, id) of the last row
# seen, so each page starts where the last one ended on the index.
_WALKS = (
    "SELECT id, next_attempt_at AS at, owner, channel, kind FROM deliveries "
    "WHERE state = 'pending' AND kind = 'confirm' AND next_attempt_at <= $1",
    "SELECT id, lease_until AS at, owner, channel, kind FROM deliveries "
    "WHERE state = 'sending' AND lease_until <= $1",
    "SELECT id, next_attempt_at AS at, owner, channel, kind FROM deliveries "
    "WHERE state = 'pending' AND next_attempt_at <= $1 AND kind <> 'confirm'",
)
_CHANNELS = " AND ($2::text[] IS NULL OR channel = ANY ($2))"
_AFTER = " AND (at, id) > ($3, $4)"
_CLAIM = f"""
UPDATE deliveries AS d
SET state = 'sending', attempts = d.attempts + 1, updated_at = $1, lease_until = $2
FROM (
    SELECT id FROM deliveries
    WHERE {_DUE} AND owner = ANY ($3::text[])
      AND (owner, channel, kind) IN (SELECT * FROM unnest($3::text[], $4::text[], $5::text[]))
    FOR UPDATE SKIP LOCKED
) AS picked
WHERE d.id = picked.id
{rows.DELIVERY_RETURNING_D}
"""
_WANTED = f"""
SELECT {rows.MATCH_SELECT}
FROM unnest($1::text[], $2::text[]) AS wanted (owner, paper_key)
JOIN matches AS m ON m.owner = wanted.owner AND m.paper_key = wanted.paper_key
"""

Group = tuple[str, str, str]  # owner, channel, kind as stored


class ClaimsMixin(PgBase):
    """``claim_due`` and the dispatcher's bulk reads; mixed into ``PostgresStore``."""

    async def claim_due(
        self,
        now: datetime,
        limit: int = 100,
        channels: Collection[Channel] | None = None,
        *,
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[DeliveryBatch]:
        if channels is not None and not channels:
            return []
        until = now + lease
        picked = [str(c) for c in channels] if channels is not None else None
        async with self._tx("claiming due deliveries") as conn:
            claimed = await _claim_groups(conn, now, until, limit, picked)
        # Decoded after the commit: the rows' locks are released sooner.
        return [_batch(group, found, until) for group, found in claimed.items()]

    # --- bulk reads for the dispatcher ------------------------------------------------------

    async def get_users(self, user_ids: Collection[int]) -> dict[int, User]:
        sql = f"{rows.SELECT_USERS} WHERE id = ANY ($1::bigint[])"
        found = await self._fetch("reading users", sql, sorted(set(user_ids)))
        users = (rows.user_from_row(row) for row in found)
        return {user.id: user for user in users}

    async def subscriptions_of(self, owners: Collection[Owner]) -> dict[Owner, list[Subscription]]:
        subs: dict[Owner, list[Subscription]] = {owner: [] for owner in owners}
        sql = f"{rows.SELECT_SUBS} WHERE owner = ANY ($1::text[]) ORDER BY id"
        found = await self._fetch("listing subscriptions", sql, sorted({str(o) for o in owners}))
        for row in found:
            sub = rows.sub_from_row(row)
            subs.setdefault(sub.owner, []).append(sub)
        return subs

    async def matches_for(
        self, pairs: Collection[tuple[Owner, str]]
    ) -> dict[tuple[Owner, str], MatchRecord]:
        wanted = sorted({(str(owner), key) for owner, key in pairs})
        owners, keys = [o for o, _ in wanted], [k for _, k in wanted]
        found = await self._fetch("reading matches", _WANTED, owners, keys)
        records = (rows.match_from_row(row) for row in found)
        return {(r.owner, r.paper_key): r for r in records}


class _Walk:
    """The groups with due rows in claim order (see the module), read a page at a time
    as they are taken, each group once."""

    def __init__(self, conn: asyncpg.Connection, now: datetime, channels: list[str] | None):
        self._conn, self._now, self._channels = conn, now, channels
        self._walks = list(_WALKS)
        self._last: tuple[datetime, int] | tuple[()] = ()
        self._ahead: list[Group] = []
        self._seen: set[Group] = set()

    async def take(self, count: int) -> list[Group]:
        """The next ``count`` groups (fewer when the walk ends)."""
        while len(self._ahead) < count and self._walks:
            await self._read_page()
        taken, self._ahead = self._ahead[:count], self._ahead[count:]
        return taken

    async def _read_page(self) -> None:
        first = f"SELECT * FROM ({self._walks[0]}) AS walk WHERE true{_CHANNELS} ORDER BY at, id"
        sql = first.replace(" ORDER BY", f"{_AFTER} ORDER BY") if self._last else first
        page = await self._conn.fetch(f"{sql} LIMIT {PAGE}", self._now, self._channels, *self._last)
        for _, _at, owner, channel, kind in page:
            if (owner, channel, kind) not in self._seen:
                self._seen.add((owner, channel, kind))
                self._ahead.append((owner, channel, kind))
        if len(page) < PAGE:
            self._walks.pop(0)
            self._last = ()
        else:
            self._last = (page[-1][1], page[-1][0])


async def _claim_groups(
    conn: asyncpg.Connection, now: datetime, until: datetime, limit: int, channels: list[str] | None
) -> dict[Group, list[asyncpg.Record]]:
    """Up to ``limit`` groups claimed, in claim order, with their rows.

    A group whose rows another claim holds or has just taken comes back empty: the next
    group of the walk takes its place, so concurrent claims spread over the backlog
    instead of coming back empty-handed.
    """
    walk = _Walk(conn, now, channels)
    claimed: dict[Group, list[asyncpg.Record]] = {}
    while len(claimed) < limit and (groups := await walk.take(limit - len(claimed))):
        found = _by_group(await _claim(conn, groups, now, until))
        claimed.update((group, found[group]) for group in groups if group in found)
    return claimed


async def _claim(
    conn: asyncpg.Connection, groups: list[Group], now: datetime, until: datetime
) -> list[asyncpg.Record]:
    owners, channels, kinds = (list(column) for column in zip(*groups, strict=True))
    return list(await conn.fetch(_CLAIM, now, until, owners, channels, kinds))


def _by_group(found: Sequence[asyncpg.Record]) -> dict[Group, list[asyncpg.Record]]:
    grouped: dict[Group, list[asyncpg.Record]] = {}
    for row in found:
        grouped.setdefault((row[2], row[3], row[4]), []).append(row)  # owner, channel, kind
    return grouped


def _batch(group: Group, found: list[asyncpg.Record], until: datetime) -> DeliveryBatch:
    owner, channel, kind = group
    deliveries = sorted((rows.delivery_from_row(row) for row in found), key=lambda d: d.id)
    return DeliveryBatch(
        Owner.parse(owner), Channel(channel), DeliveryKind(kind), tuple(deliveries), until
    )
