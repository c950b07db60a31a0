"""What people change themselves on the web: subscriptions edited or paused, manage links
queued and revoked, the matches they were sent. The SQLite ``Store`` methods (a mixin of
``SqliteStore``, like ``accounts``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.errors import LimitError, UserError
from bot.models import MatchRecord, Owner, Subscription
from bot.store.protocols import Delivery
from bot.store.sqlite import _accounts_codec as rows
from bot.store.sqlite._codec import Row, iso
from bot.store.sqlite.accounts import _one, _own_sub, _require_user

MANAGE = "manage"  # payload purpose of a manage-link mail (kind 'confirm', see 0009)

_COUNT_MANAGE_MAILS = """
SELECT count(*) FROM deliveries
WHERE owner = ? AND kind = 'confirm' AND json_extract(payload, '$.purpose') = 'manage'
  AND created_at > ?
"""
# A match was sent when its alert went out, or the digest it was attached to did.
_SENT = """(
    EXISTS (SELECT 1 FROM deliveries AS d WHERE d.owner = m.owner AND d.paper_key = m.paper_key
            AND d.kind = 'alert' AND d.state = 'sent')
    OR EXISTS (SELECT 1 FROM deliveries AS d WHERE d.id = m.digest_id AND d.state = 'sent'))"""
_MATCH_COLUMNS = ", ".join(f"m.{name}" for name in rows.MATCH_COLUMNS)


class SelfServiceMixin:
    """Subscriptions changed in place, manage links, recent matches."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

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
            text, normalized = (part.strip() for part in query)
            if not text or not normalized:
                raise UserError("a subscription needs a query")
            sets.update(query=text, normalized=normalized)
        if paused is not None:
            sets["paused"] = int(paused)
        async with self._write(f"changing subscription #{sub_id}") as db:
            sub = await _own_sub(db, sub_id, owner)
            if not sets:
                return sub
            if query is not None:
                await _check_other_same(db, sub, str(sets["normalized"]))
            assignments = ", ".join(f"{name} = ?" for name in sets)
            sql = (
                f"UPDATE subscriptions SET {assignments} WHERE id = ? "
                f"RETURNING {', '.join(rows.SUB_COLUMNS)}"
            )
            row = await _one(db, sql, *sets.values(), sub_id)
        assert row is not None
        return rows.sub_from_row(row)

    async def queue_manage_link(
        self, user_id: int, now: datetime, *, max_per_day: int, revoke: bool = False
    ) -> Delivery:
        stamp = iso(now)
        async with self._write(f"queueing a manage link for user #{user_id}") as db:
            user = await _require_user(db, user_id)
            if not user.email:
                raise UserError("this account has no address to mail a link to")
            counted = await _one(db, _COUNT_MANAGE_MAILS, str(user.owner), iso(now - timedelta(1)))
            if counted is not None and counted[0] >= max_per_day:
                raise LimitError(
                    f"{max_per_day} links went to this address in the last 24 hours, the most "
                    "allowed; use the newest one, or try again tomorrow"
                )
            if revoke:  # with the mail, or not at all: never revoked with no new link on its way
                sql = "UPDATE users SET manage_generation = manage_generation + 1 WHERE id = ?"
                await db.execute(sql, (user_id,))
            payload = rows.to_json({"address": user.email, "issued": stamp, "purpose": MANAGE})
            sql = (
                "INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, "
                "created_at, updated_at) VALUES (?, ?, 'email', 'confirm', ?, ?, ?, ?) "
                f"RETURNING {', '.join(rows.DELIVERY_COLUMNS)}"
            )
            key = f"manage:email:{user.email}:{stamp}"
            row = await _one(db, sql, key, str(user.owner), payload, stamp, stamp, stamp)
        assert row is not None
        return rows.delivery_from_row(row)

    async def recent_matches(
        self, owner: Owner, limit: int, *, sent_only: bool = False
    ) -> list[MatchRecord]:
        sent = f"AND {_SENT}" if sent_only else ""
        sql = (
            f"SELECT {_MATCH_COLUMNS} FROM matches AS m WHERE m.owner = ? {sent} "
            "ORDER BY m.matched_at DESC, m.paper_key LIMIT ?"
        )
        found = await self._read(f"reading recent matches of {owner}", sql, str(owner), limit)
        return [rows.match_from_row(row) for row in found]


async def _check_other_same(db: aiosqlite.Connection, sub: Subscription, normalized: str) -> None:
    sql = "SELECT id FROM subscriptions WHERE owner = ? AND normalized = ? AND id <> ?"
    same = await _one(db, sql, str(sub.owner), normalized, sub.id)
    if same is not None:
        raise UserError(f"you already have this query as subscription #{same[0]}")
