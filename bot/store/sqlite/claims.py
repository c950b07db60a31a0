"""Claiming due deliveries, and the bulk reads that turn a claim into messages.

A mixin of ``SqliteStore``. A claim finds its groups (owner, channel, kind) on the reader
connection, walking an index in claim order and stopping as soon as it has ``limit``
groups, so a backlog of a million due rows costs a claim no more than the rows of the
groups it takes; then one statement, a write of its own, updates those groups' rows. So
SQLite's write lock, which every other process's writes ("sent", a subscribe) wait for,
is held for that statement alone: walking the index inside the write held it for the
walk and for a turn of the event loop after each step, some 60 ms a claim beside a busy
dispatcher (bench/cycle.py). A row claimed by another process in between is simply not
returned (the update re-checks that each row is still due); when another process took
every group found, the claim looks again (``CLAIM_TRIES``), so "nothing claimed" means
nothing was due.

Claim order: confirmations (transactional mail) first, then rows whose lease ran out
(their process died mid-send), then alerts and digests oldest due first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.messages import Channel
from bot.models import MatchRecord, Owner, Subscription, User
from bot.store.protocols import DEFAULT_LEASE, Delivery, DeliveryBatch, DeliveryKind
from bot.store.sqlite import _accounts_codec as rows
from bot.store.sqlite._codec import Row, chunks, iso

PAGE = 2000  # rows per step of the walk along the claim order
_DUE = "((state = 'pending' AND next_attempt_at <= ?) OR (state = 'sending' AND lease_until <= ?))"
_AFTER = "AND (at > ? OR (at = ? AND id > ?))"  # keyset paging: past the last row seen
# (sql, the index that yields it in order); each selects id, at, owner, channel, kind.
_ORDERS = (
    "SELECT id, next_attempt_at AS at, owner, channel, kind FROM deliveries "
    "INDEXED BY deliveries_confirm_due WHERE state = 'pending' AND kind = 'confirm' "
    "AND next_attempt_at <= ?",
    "SELECT id, lease_until AS at, owner, channel, kind FROM deliveries "
    "INDEXED BY deliveries_leased WHERE state = 'sending' AND lease_until <= ?",
    "SELECT id, next_attempt_at AS at, owner, channel, kind FROM deliveries "
    "INDEXED BY deliveries_due WHERE state = 'pending' AND next_attempt_at <= ? "
    "AND kind <> 'confirm'",
)
_CLAIM = (
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ?, "
    "lease_until = ? WHERE {due} AND owner IN ({owners}) AND (owner, channel, kind) IN "
    "(VALUES {groups}) RETURNING {columns}"
)
_WANTED = (
    "WITH wanted (owner, paper_key) AS (VALUES {pairs}) SELECT {columns} FROM wanted "
    "JOIN matches AS m ON m.owner = wanted.owner AND m.paper_key = wanted.paper_key"
)

Group = tuple[str, str, str]  # owner, channel, kind as stored
Fetch = Callable[[str, Sequence[Any]], Awaitable[list[Row]]]
# Looks before a claim gives up because other processes took every group it found: each
# look that loses finds the groups after those taken, so more than a few means a crowd.
CLAIM_TRIES = 5


class ClaimsMixin:
    """``claim_due`` and the dispatcher's bulk reads; mixed into ``SqliteStore``."""

    if TYPE_CHECKING:

        async def _write_rows(self, what: str, sql: str, params: Sequence[Any]) -> list[Row]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

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
        until, picked = now + lease, [str(c) for c in channels or ()]
        groups, raw = await self._claim_groups(iso(now), iso(until), limit, picked)
        claimed = _by_group(raw)  # decoded after the commit: the writer is free sooner
        batches = []
        for group in groups:  # in claim order; a group another process took is skipped
            found = sorted(claimed.get(group, ()), key=lambda d: d.id)
            if found:
                owner, channel, kind = group
                batches.append(DeliveryBatch(
                    Owner.parse(owner), Channel(channel), DeliveryKind(kind), tuple(found), until
                ))  # fmt: skip
        return batches

    async def _claim_groups(
        self, stamp: str, until: str, limit: int, channels: list[str]
    ) -> tuple[list[Group], list[Row]]:
        """The groups found and the rows claimed of them; found but all taken by another
        process in between: look again (past them, as their rows are no longer due)."""
        for _ in range(CLAIM_TRIES):
            groups = await _due_groups(self._fetch, stamp, limit, channels)
            if not groups:
                return [], []
            sql, params = _claim(groups, stamp, until)
            raw = await self._write_rows("claiming due deliveries", sql, params)
            if raw:
                return groups, raw
        return [], []

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return await self._read("finding due deliveries", sql, *params)

    # --- bulk reads for the dispatcher ------------------------------------------------------

    async def get_users(self, user_ids: Collection[int]) -> dict[int, User]:
        found: dict[int, User] = {}
        for chunk in chunks(sorted(set(user_ids))):
            sql = f"{rows.SELECT_USERS} WHERE id IN ({rows.placeholders(len(chunk))})"
            for row in await self._read("reading users", sql, *chunk):
                user = rows.user_from_row(row)
                found[user.id] = user
        return found

    async def subscriptions_of(self, owners: Collection[Owner]) -> dict[Owner, list[Subscription]]:
        found: dict[Owner, list[Subscription]] = {owner: [] for owner in owners}
        for chunk in chunks(sorted({str(owner) for owner in owners})):
            sql = f"{rows.SELECT_SUBS} WHERE owner IN ({rows.placeholders(len(chunk))}) ORDER BY id"
            for row in await self._read("listing subscriptions", sql, *chunk):
                sub = rows.sub_from_row(row)
                found.setdefault(sub.owner, []).append(sub)
        return found

    async def matches_for(
        self, pairs: Collection[tuple[Owner, str]]
    ) -> dict[tuple[Owner, str], MatchRecord]:
        found: dict[tuple[Owner, str], MatchRecord] = {}
        columns = ", ".join(f"m.{c}" for c in rows.MATCH_COLUMNS)
        for chunk in chunks(sorted({(str(o), k) for o, k in pairs})):
            sql = _WANTED.format(pairs=", ".join(["(?, ?)"] * len(chunk)), columns=columns)
            params = [v for pair in chunk for v in pair]
            for row in await self._read("reading matches", sql, *params):
                record = rows.match_from_row(row)
                found[record.owner, record.paper_key] = record
        return found


async def _due_groups(fetch: Fetch, stamp: str, limit: int, channels: list[str]) -> list[Group]:
    """Up to ``limit`` groups with due rows, in claim order (see the module)."""
    only = f" AND channel IN ({rows.placeholders(len(channels))})" if channels else ""
    groups: dict[Group, None] = {}
    for select in _ORDERS:
        sql = f"SELECT * FROM ({select}{only}) WHERE 1 {{after}} ORDER BY at, id LIMIT {PAGE}"
        last: tuple[Any, ...] = ()
        while len(groups) < limit:
            after = _AFTER if last else ""
            params = (stamp, *channels, *last)
            page = await fetch(sql.format(after=after), params)
            for _, _at, owner, channel, kind in page:
                if len(groups) < limit:
                    groups.setdefault((owner, channel, kind), None)
            if len(page) < PAGE:
                break
            last = (page[-1][1], page[-1][1], page[-1][0])
    return list(groups)


def _claim(groups: list[Group], stamp: str, until: str) -> tuple[str, tuple[Any, ...]]:
    """The statement claiming these groups' due rows, and its parameters."""
    owners = list(dict.fromkeys(owner for owner, _, _ in groups))
    sql = _CLAIM.format(
        due=_DUE,
        owners=rows.placeholders(len(owners)),
        groups=", ".join(["(?, ?, ?)"] * len(groups)),
        columns=", ".join(rows.DELIVERY_COLUMNS),
    )
    params = (stamp, until, stamp, stamp, *owners, *(v for g in groups for v in g))
    return sql, params


def _by_group(found: list[Row]) -> dict[Group, list[Delivery]]:
    claimed: dict[Group, list[Delivery]] = {}
    for row in found:
        delivery = rows.delivery_from_row(row)
        claimed.setdefault((row[2], row[3], row[4]), []).append(delivery)  # owner, channel, kind
    return claimed
