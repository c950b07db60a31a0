"""The outbox after the claim: outcomes, retries, strikes, the fall back to email, and the
reads that report on it. The PostgreSQL ``Store`` methods (a mixin of ``PostgresStore``).

Every update of claimed rows re-checks their state, so an outcome recorded by a process
whose lease ran out (and whose rows another process took) changes nothing it no longer
holds. Id lists travel as one array parameter, whatever their length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from bot.messages import Channel
from bot.models import Owner, User
from bot.store.listing import delivery_listing
from bot.store.postgres import _accounts_codec as rows
from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase
from bot.store.postgres.accounts import SUPPRESS_PENDING_EMAIL
from bot.store.protocols import Delivery, DeliveryKind, DeliveryState
from bot.store.sqlite._match_rows import FALLBACK, alert_key

_SENT = "SET state = 'sent', sent_at = $2, last_error = NULL, updated_at = $2"
_SUPPRESSED = "SET state = 'suppressed', last_error = $2, updated_at = $3"
_SENDING = "state = 'sending'"
_SUPPRESSIBLE = "state IN ('pending', 'sending')"
_OVERDUE = (
    "SELECT channel, count(*), min(next_attempt_at) FROM deliveries"
    " WHERE state = 'pending' AND next_attempt_at <= $1 GROUP BY channel"
)
_RENEW = (
    "UPDATE deliveries SET lease_until = $3 WHERE id = ANY ($1::bigint[]) "
    "AND state = 'sending' AND lease_until = $2 RETURNING id"
)
_RETRY = """
UPDATE deliveries AS d SET state = 'pending', next_attempt_at = r.at, last_error = $3,
    attempts = coalesce($4, d.attempts), updated_at = $5
FROM unnest($1::bigint[], $2::timestamptz[]) AS r (id, at)
WHERE d.id = r.id AND d.state = 'sending'
"""
_STRIKE = f"""
UPDATE users SET
    email_strikes = email_strikes + 1,
    email_suppressed = email_suppressed OR email_strikes + 1 >= $3,
    email_suppressed_reason = CASE WHEN NOT email_suppressed AND email_strikes + 1 >= $3
        THEN $4 ELSE email_suppressed_reason END,
    updated_at = $5
WHERE id = $1 AND lower(email) = lower($2) {rows.USER_RETURNING}
"""
_UNREACHABLE = (
    "UPDATE users SET discord_unreachable = true, discord_notice_pending = true, "
    f"updated_at = $2 WHERE id = $1 {rows.USER_RETURNING}"
)
_QUEUE_ALERTS = """
INSERT INTO deliveries (key, owner, channel, kind, paper_key, payload, next_attempt_at,
                        created_at, updated_at)
SELECT a.key, $2, $3, 'alert', a.paper_key, $4, $5, $5, $5
FROM unnest($1::text[], $6::text[]) AS a (key, paper_key)
ON CONFLICT (key) DO NOTHING
"""


async def _update(
    conn: asyncpg.Connection, ids: Sequence[int], assign: str, guard: str, *values: object
) -> None:
    """``assign`` and ``guard`` are our own SQL; ``$1`` is the ids, ``values`` from ``$2``."""
    sql = f"UPDATE deliveries {assign} WHERE {guard} AND id = ANY ($1::bigint[])"
    await conn.execute(sql, list(ids), *values)


class OutboxMixin(PgBase):
    """Outcomes of claimed deliveries and what a failing channel changes."""

    async def renew_lease(
        self, ids: Sequence[int], held: datetime, until: datetime
    ) -> frozenset[int]:
        async with self._tx(f"renewing the lease of {len(ids)} deliveries") as conn:
            found = await conn.fetch(_RENEW, list(ids), held, until)
        return frozenset(row[0] for row in found)

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        await self._set_state(ids, _SENT, _SENDING, now)

    async def mark_failed(self, ids: Sequence[int], error: str, now: datetime) -> None:
        sql = "SET state = 'failed', last_error = $2, updated_at = $3"
        await self._set_state(ids, sql, _SENDING, rows.text(error), now)

    async def mark_suppressed(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        await self._set_state(ids, _SUPPRESSED, _SUPPRESSIBLE, rows.text(reason), now)

    async def settle(
        self, sent: Sequence[int], suppressed: Mapping[str, Sequence[int]], now: datetime
    ) -> None:
        count = len(sent) + sum(len(ids) for ids in suppressed.values())
        if not any(suppressed.values()):  # what the dispatcher writes after each message
            await self._set_state(sent, _SENT, _SENDING, now)
            return
        async with self._tx(f"recording the outcome of {count} deliveries") as conn:
            await _update(conn, sent, _SENT, _SENDING, now)
            for reason, ids in suppressed.items():
                await _update(conn, ids, _SUPPRESSED, _SUPPRESSIBLE, rows.text(reason), now)

    async def release(self, ids: Sequence[int], now: datetime) -> None:
        sql = "SET state = 'pending', attempts = greatest(attempts - 1, 0), updated_at = $2"
        await self._set_state(ids, sql, _SENDING, now)

    async def retry_later(
        self,
        retries: Mapping[int, datetime],
        error: str,
        now: datetime,
        *,
        attempts: int | None = None,
    ) -> None:
        ids, times = list(retries), list(retries.values())
        async with self._tx(f"rescheduling {len(ids)} deliveries") as conn:
            await conn.execute(_RETRY, ids, times, rows.text(error), attempts, now)

    async def _set_state(
        self, ids: Sequence[int], assign: str, guard: str, *values: object
    ) -> None:
        # One statement, so a transaction of its own: one round trip, not three.
        async with self._conn(f"updating {len(ids)} deliveries") as conn:
            await _update(conn, ids, assign, guard, *values)

    async def record_email_strike(
        self, user_id: int, address: str, reason: str, now: datetime, *, strikes: int = 3
    ) -> User | None:
        why = rows.text(f"{strikes} deliveries failed permanently, the last: {reason}")
        async with self._tx(f"counting a failed delivery to user #{user_id}") as conn:
            row = await conn.fetchrow(_STRIKE, user_id, rows.text(address), strikes, why, now)
            if row is None:
                return None
            user = rows.user_from_row(row)
            if user.email_suppressed:
                reason_kept = user.email_suppressed_reason
                await conn.execute(SUPPRESS_PENDING_EMAIL, reason_kept, now, str(user.owner))
        return user

    async def fall_back_to_email(
        self, user_id: int, paper_keys: Sequence[str], now: datetime
    ) -> int:
        owner = Owner.user(user_id)
        keys = list(dict.fromkeys(paper_keys))
        alert_keys = [alert_key(Channel.EMAIL, owner, key) for key in keys]
        async with self._tx(f"moving user #{user_id} from Discord to email") as conn:
            row = await conn.fetchrow(_UNREACHABLE, user_id, now)
            if row is None or not rows.user_from_row(row).email_deliverable:
                return 0
            params = (str(owner), str(Channel.EMAIL), dict(FALLBACK), now, keys)
            status = await conn.execute(_QUEUE_ALERTS, alert_keys, *params)
        return int(status.split()[-1])  # "INSERT 0 <rows>"

    async def overdue(self, due_before: datetime) -> dict[Channel, tuple[int, datetime]]:
        found = await self._fetch("counting overdue deliveries", _OVERDUE, due_before)
        return {Channel(c): (int(n), oldest) for c, n, oldest in found}

    async def get_delivery(self, key: str) -> Delivery | None:
        sql = f"{rows.SELECT_DELIVERIES} WHERE key = $1"
        found = await self._fetch("reading a delivery", sql, rows.text(key))
        return rows.delivery_from_row(found[0]) if found else None

    async def list_deliveries(
        self,
        owner: Owner | None = None,
        state: DeliveryState | None = None,
        *,
        kind: DeliveryKind | None = None,
        paper_key: str | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[Delivery]:
        query = delivery_listing(
            rows.SELECT_DELIVERIES,
            lambda n: f"${n}",
            owner=owner,
            state=state,
            kind=kind,
            paper_key=paper_key,
            after_id=after_id,
            text=rows.text,
        )
        limit_value = codec.check_limit(limit)  # None: LIMIT NULL, none
        found = await self._fetch("listing deliveries", query.sql, *query.params, limit_value)
        return [rows.delivery_from_row(row) for row in (found if query.forward else found[::-1])]

    async def delivery_counts(self) -> dict[DeliveryState, int]:
        sql = "SELECT state, count(*) FROM deliveries GROUP BY state"
        found = await self._fetch("counting deliveries", sql)
        return {DeliveryState(state): int(n) for state, n in found}
