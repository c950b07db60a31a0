"""What people change themselves on the web: subscriptions edited or paused, manage links
queued and revoked. The PostgreSQL ``Store`` methods (a mixin of ``PostgresStore``, like
``accounts``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from bot.errors import LimitError, UserError
from bot.models import Owner, Subscription
from bot.store.postgres import _accounts_codec as rows
from bot.store.postgres._base import PgBase
from bot.store.postgres.accounts import LOCK_OWNER_SUBS, lock, own_sub, require_user
from bot.store.protocols import Delivery
from bot.store.sqlite._codec import iso
from bot.store.sqlite.selfservice import MANAGE

_COUNT_MANAGE_MAILS = """
SELECT count(*) FROM deliveries
WHERE owner = $1 AND kind = 'confirm' AND payload ->> 'purpose' = 'manage' AND created_at > $2
"""
_QUEUE_MANAGE_LINK = f"""
INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, created_at,
                        updated_at)
VALUES ($1, $2, 'email', 'confirm', $3, $4, $4, $4) {rows.DELIVERY_RETURNING}
"""


class SelfServiceMixin(PgBase):
    """Subscriptions changed in place, manage links."""

    async def update_subscription(
        self,
        sub_id: int,
        owner: Owner | None,
        now: datetime,
        *,
        query: tuple[str, str] | None = None,
        paused: bool | None = None,
    ) -> Subscription:
        sets: dict[str, object] = {}
        if query is not None:
            text, normalized = (rows.text(part.strip()) for part in query)
            if not text or not normalized:
                raise UserError("a subscription needs a query")
            sets.update(query=text, normalized=normalized)
        if paused is not None:
            sets["paused"] = paused
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(sets, start=2))
        sql = f"UPDATE subscriptions SET {assignments} WHERE id = $1 {rows.SUB_RETURNING}"
        async with self._tx(f"changing subscription #{sub_id}") as conn:
            sub = await own_sub(conn, sub_id, owner)
            if not sets:
                return sub
            if query is not None:
                await lock(conn, LOCK_OWNER_SUBS, str(sub.owner))
                await _check_other_same(conn, sub, str(sets["normalized"]))
            row = await conn.fetchrow(sql, sub_id, *sets.values())
        assert row is not None
        return rows.sub_from_row(row)

    async def queue_manage_link(
        self, user_id: int, now: datetime, *, max_per_day: int, revoke: bool = False
    ) -> Delivery:
        async with self._tx(f"queueing a manage link for user #{user_id}") as conn:
            # The user's row locked: the daily cap holds against concurrent requests.
            user = await require_user(conn, user_id, lock=True)
            if not user.email:
                raise UserError("this account has no address to mail a link to")
            counted = await conn.fetchval(_COUNT_MANAGE_MAILS, str(user.owner), now - timedelta(1))
            if counted >= max_per_day:
                raise LimitError(
                    f"{max_per_day} links went to this address in the last 24 hours, the most "
                    "allowed; use the newest one, or try again tomorrow"
                )
            if revoke:  # with the mail, or not at all: never revoked with no new link on its way
                sql = "UPDATE users SET manage_generation = manage_generation + 1 WHERE id = $1"
                await conn.execute(sql, user_id)
            stamp = iso(now)
            payload = {"address": user.email, "issued": stamp, "purpose": MANAGE}
            key = f"manage:email:{user.email}:{stamp}"
            row = await conn.fetchrow(_QUEUE_MANAGE_LINK, key, str(user.owner), payload, now)
        assert row is not None
        return rows.delivery_from_row(row)


async def _check_other_same(conn: asyncpg.Connection, sub: Subscription, normalized: str) -> None:
    sql = "SELECT id FROM subscriptions WHERE owner = $1 AND normalized = $2 AND id <> $3"
    same = await conn.fetchval(sql, str(sub.owner), normalized, sub.id)
    if same is not None:
        raise UserError(f"you already have this query as subscription #{same}")
