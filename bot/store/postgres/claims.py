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
from bot.store.protocols import DEFAULT_LEASE, Delivery, DeliveryBatch, DeliveryKind

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
            groups = await _due_groups(conn, now, limit, picked)
            found = await _claim(conn, groups, now, until) if groups else []
        claimed = _by_group(found)
        batches = []
        for group in groups:  # in claim order; a group another process took is skipped
            taken = sorted(claimed.get(group, ()), key=lambda d: d.id)
            if taken:
                owner, channel, kind = group
                batches.append(DeliveryBatch(
                    Owner.parse(owner), Channel(channel), DeliveryKind(kind), tuple(taken), until
                ))  # fmt: skip
        return batches

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


async def _due_groups(
    conn: asyncpg.Connection, now: datetime, limit: int, channels: list[str] | None
) -> list[Group]:
    """Up to ``limit`` groups with due rows, in claim order (see the module)."""
    groups: dict[Group, None] = {}
    for select in _WALKS:
        first = f"SELECT * FROM ({select}) AS walk WHERE true{_CHANNELS} ORDER BY at, id"
        after = first.replace(" ORDER BY", f"{_AFTER} ORDER BY")
        last: tuple[datetime, int] | tuple[()] = ()
        while len(groups) < limit:
            sql = f"{after if last else first} LIMIT {PAGE}"
            page = await conn.fetch(sql, now, channels, *last)
            for _, _at, owner, channel, kind in page:
                if len(groups) < limit:
                    groups.setdefault((owner, channel, kind), None)
            if len(page) < PAGE:
                break
            last = (page[-1][1], page[-1][0])
    return list(groups)


async def _claim(
    conn: asyncpg.Connection, groups: list[Group], now: datetime, until: datetime
) -> list[asyncpg.Record]:
    owners, channels, kinds = (list(column) for column in zip(*groups, strict=True))
    return list(await conn.fetch(_CLAIM, now, until, owners, channels, kinds))


def _by_group(found: Sequence[asyncpg.Record]) -> dict[Group, list[Delivery]]:
    claimed: dict[Group, list[Delivery]] = {}
    for row in found:
        delivery = rows.delivery_from_row(row)
        claimed.setdefault((row[2], row[3], row[4]), []).append(delivery)  # owner, channel, kind
    return claimed
