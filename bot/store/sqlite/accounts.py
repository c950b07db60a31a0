"""Users, their email addresses and subscriptions: the SQLite ``Store`` methods.

A mixin of ``SqliteStore``: writes go through ``self._write`` (one IMMEDIATE transaction,
so checks such as the subscription limit and the write they guard cannot interleave with
another writer), reads through ``self._read`` on the reader connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.address import check_email_address
from bot.errors import InvalidValueError, LimitError, NotFoundError, UserError
from bot.messages import EMAIL_REMOVED, SUBSCRIPTION_REMOVED
from bot.models import DeliveryMode, Owner, OwnerKind, Subscription, User
from bot.store.sqlite import _accounts_codec as rows
from bot.store.sqlite._codec import Row, chunks, iso

_USER_RETURNING = f"RETURNING {', '.join(rows.USER_COLUMNS)}"
_SUB_RETURNING = f"RETURNING {', '.join(rows.SUB_COLUMNS)}"
_CLEAR_EMAIL_STATE = (
    "email_verified = 0, email_strikes = 0, email_suppressed = 0, email_suppressed_reason = NULL"
)
# Pending mail for an owner that can no longer go anywhere (address removed, unsubscribed).
SUPPRESS_PENDING_EMAIL = """
UPDATE deliveries SET state = 'suppressed', last_error = ?, updated_at = ?
WHERE owner = ? AND channel = 'email' AND state = 'pending'
"""
# Pending alerts of an owner's matches none of whose subscriptions still exist.
_SUPPRESS_ORPHAN_ALERTS = """
UPDATE deliveries SET state = 'suppressed', last_error = ?, updated_at = ?
WHERE owner = ? AND kind = 'alert' AND state = 'pending' AND paper_key IN (
    SELECT m.paper_key FROM matches AS m
    WHERE m.owner = ? AND NOT EXISTS (
        SELECT 1 FROM json_each(m.sub_ids) AS j JOIN subscriptions AS s ON s.id = j.value))
"""
_COUNT_MATCHES = """
SELECT j.value, count(*) FROM matches AS m, json_each(m.sub_ids) AS j
WHERE m.owner IN (SELECT owner FROM subscriptions WHERE id IN ({ids})) AND j.value IN ({ids})
GROUP BY j.value
"""


def _identity(discord_id: str | None, email: str | None) -> tuple[str, str]:
    if (discord_id is None) == (email is None):
        raise TypeError("give exactly one of discord_id and email")
    if discord_id is not None:
        if not discord_id:
            raise InvalidValueError("a Discord id cannot be empty")
        return "discord_id", discord_id
    assert email is not None
    return "email", check_email_address(email)


def _check_delivery(owner: Owner, deliver: frozenset[DeliveryMode]) -> str:
    if not deliver:
        choices = ", ".join(DeliveryMode)
        raise UserError(f"choose at least one way to deliver: {choices}")
    if owner.kind is OwnerKind.CHANNEL and deliver != {DeliveryMode.DISCORD}:
        raise UserError("a channel subscription can only post to Discord")
    return rows.deliver_json(deliver)


def _limit_message(owner: Owner, count: int, limit: int) -> str:
    who = "you have" if owner.kind is OwnerKind.USER else "this channel has"
    if count > limit:
        return f"{who} {count} subscriptions and at most {limit} are allowed; remove some first"
    return f"{who} {count} subscriptions, the most allowed; remove one first"


async def _one(db: aiosqlite.Connection, sql: str, *params: Any) -> Row | None:
    found = list(await db.execute_fetchall(sql, params))
    return found[0] if found else None


async def _user_where(db: aiosqlite.Connection, column: str, value: object) -> User | None:
    # ``column`` is one of our own names, never user input.
    row = await _one(db, f"{rows.SELECT_USERS} WHERE {column} = ?", value)
    return None if row is None else rows.user_from_row(row)


async def _sub_by_id(db: aiosqlite.Connection, sub_id: int) -> Subscription | None:
    row = await _one(db, f"{rows.SELECT_SUBS} WHERE id = ?", sub_id)
    return None if row is None else rows.sub_from_row(row)


async def _own_sub(db: aiosqlite.Connection, sub_id: int, owner: Owner | None) -> Subscription:
    sub = await _sub_by_id(db, sub_id)
    if sub is None or (owner is not None and sub.owner != owner):
        raise NotFoundError(f"there is no subscription #{sub_id} of yours")
    return sub


async def _require_user(db: aiosqlite.Connection, user_id: int) -> User:
    user = await _user_where(db, "id", user_id)
    if user is None:
        raise NotFoundError(f"there is no user #{user_id}")
    return user


class AccountsMixin:
    """Users and subscriptions; mixed into ``SqliteStore``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    # --- users ----------------------------------------------------------------------------

    async def get_or_create_user(
        self, *, discord_id: str | None = None, email: str | None = None, now: datetime
    ) -> User:
        column, value = _identity(discord_id, email)
        async with self._write(f"finding or creating a user by {column}") as db:
            found = await _user_where(db, column, value)
            if found is not None:
                return found
            stamp = iso(now)
            sql = f"INSERT INTO users ({column}, created_at, updated_at) VALUES (?, ?, ?) "
            row = await _one(db, sql + _USER_RETURNING, value, stamp, stamp)
            assert row is not None
            return rows.user_from_row(row)

    async def get_user(self, user_id: int) -> User | None:
        found = await self._read("reading a user", f"{rows.SELECT_USERS} WHERE id = ?", user_id)
        return rows.user_from_row(found[0]) if found else None

    async def find_user(
        self, *, discord_id: str | None = None, email: str | None = None
    ) -> User | None:
        if (discord_id is None) == (email is None):
            raise TypeError("give exactly one of discord_id and email")
        column, value = ("discord_id", discord_id) if email is None else ("email", email.strip())
        sql = f"{rows.SELECT_USERS} WHERE {column} = ?"
        found = await self._read(f"finding a user by {column}", sql, value)
        return rows.user_from_row(found[0]) if found else None

    async def update_user(self, user_id: int, now: datetime, **changes: object) -> User:
        unknown = sorted(set(changes) - set(rows.USER_SETTINGS))
        if unknown:
            raise TypeError(f"update_user cannot change {', '.join(unknown)}")
        values = {name: rows.USER_SETTINGS[name](value) for name, value in changes.items()}
        assignments = "".join(f"{name} = ?, " for name in values)
        sql = f"UPDATE users SET {assignments}updated_at = ? WHERE id = ? {_USER_RETURNING}"
        async with self._write(f"updating user #{user_id}") as db:
            row = await _one(db, sql, *values.values(), iso(now), user_id)
        if row is None:
            raise NotFoundError(f"there is no user #{user_id}")
        return rows.user_from_row(row)

    async def list_users(self, *, after_id: int = 0, limit: int | None = None) -> list[User]:
        sql = f"{rows.SELECT_USERS} WHERE id > ? ORDER BY id LIMIT ?"
        size = -1 if limit is None else limit  # a negative LIMIT is none in SQLite
        found = await self._read("listing users", sql, after_id, size)
        return [rows.user_from_row(row) for row in found]

    async def count_users(self) -> int:
        found = await self._read("counting users", "SELECT count(*) FROM users")
        return int(found[0][0])

    async def count_subscriptions(self) -> int:
        found = await self._read("counting subscriptions", "SELECT count(*) FROM subscriptions")
        return int(found[0][0])

    # --- email addresses ------------------------------------------------------------------

    async def set_email(
        self, user_id: int, address: str, now: datetime, *, max_per_day: int = 3
    ) -> User:
        address = check_email_address(address)
        stamp = iso(now)
        async with self._write(f"setting the address of user #{user_id}") as db:
            user = await _require_user(db, user_id)
            holder = await _user_where(db, "email", address)
            if holder is not None and holder.id != user_id:
                raise UserError("that address is used by another account")
            await _check_confirmation_limit(db, address, now, max_per_day)
            sql = f"UPDATE users SET email = ?, {_CLEAR_EMAIL_STATE}, updated_at = ? WHERE id = ? "
            row = await _one(db, sql + _USER_RETURNING, address, stamp, user_id)
            await db.execute(
                "INSERT INTO confirmations (user_id, address, issued_at) VALUES (?, ?, ?)",
                (user_id, address, stamp),
            )
            await _queue_confirmation(db, user.owner, address, stamp)
        assert row is not None
        return rows.user_from_row(row)

    async def confirmation_times(
        self, user_id: int, address: str, since: datetime
    ) -> list[datetime]:
        sql = (
            "SELECT issued_at FROM confirmations WHERE user_id = ? AND address = ? "
            "AND issued_at >= ? ORDER BY issued_at"
        )
        found = await self._read("reading confirmations", sql, user_id, address, iso(since))
        return [datetime.fromisoformat(row[0]) for row in found]

    async def wrong_codes(self, user_id: int, address: str, since: datetime) -> int:
        sql = (
            "SELECT coalesce(sum(wrong_codes), 0) FROM confirmations "
            "WHERE user_id = ? AND address = ? AND issued_at >= ?"
        )
        found = await self._read("counting wrong codes", sql, user_id, address, iso(since))
        return int(found[0][0])

    async def record_wrong_code(self, user_id: int, address: str) -> None:
        sql = (
            "UPDATE confirmations SET wrong_codes = wrong_codes + 1 WHERE id = ("
            "SELECT id FROM confirmations WHERE user_id = ? AND address = ? "
            "ORDER BY issued_at DESC LIMIT 1)"
        )
        async with self._write(f"counting a wrong code of user #{user_id}") as db:
            await db.execute(sql, (user_id, address))

    async def verify_email(self, user_id: int, address: str, now: datetime) -> User | None:
        sql = "UPDATE users SET email_verified = 1, updated_at = ? WHERE id = ? AND email = ? "
        async with self._write(f"confirming the address of user #{user_id}") as db:
            row = await _one(db, sql + _USER_RETURNING, iso(now), user_id, address)
        return None if row is None else rows.user_from_row(row)

    async def remove_email(self, user_id: int, now: datetime) -> User:
        stamp = iso(now)
        sql = f"UPDATE users SET email = NULL, {_CLEAR_EMAIL_STATE}, updated_at = ? WHERE id = ? "
        async with self._write(f"removing the address of user #{user_id}") as db:
            row = await _one(db, sql + _USER_RETURNING, stamp, user_id)
            if row is None:
                raise NotFoundError(f"there is no user #{user_id}")
            owner = str(Owner.user(user_id))
            await db.execute(SUPPRESS_PENDING_EMAIL, (EMAIL_REMOVED, stamp, owner))
        return rows.user_from_row(row)

    async def suppress_email(self, address: str, reason: str, now: datetime) -> User | None:
        stamp = iso(now)
        # The first reason stays: a later unsubscribe does not hide earlier bounces.
        sql = (
            "UPDATE users SET email_suppressed_reason = CASE WHEN email_suppressed = 1 "
            "THEN email_suppressed_reason ELSE ? END, email_suppressed = 1, updated_at = ? "
            "WHERE email = ? "
        )
        async with self._write("suppressing an address") as db:
            row = await _one(db, sql + _USER_RETURNING, reason, stamp, address.strip())
            if row is None:
                return None
            user = rows.user_from_row(row)
            await db.execute(SUPPRESS_PENDING_EMAIL, (reason, stamp, str(user.owner)))
        return user

    # --- subscriptions --------------------------------------------------------------------

    async def add_subscription(
        self,
        owner: Owner,
        query: str,
        normalized: str,
        deliver: frozenset[DeliveryMode],
        now: datetime,
        *,
        limit: int,
        guild_id: str | None = None,
        min_relevance: float | None = None,
    ) -> Subscription:
        if not query.strip() or not normalized.strip():
            raise UserError("a subscription needs a query")
        modes = _check_delivery(owner, deliver)
        async with self._write(f"adding a subscription for {owner}") as db:
            if owner.kind is OwnerKind.USER:
                await _require_user(db, int(owner.id))
            await _check_unique(db, owner, normalized, limit)
            sql = (
                "INSERT INTO subscriptions (owner, guild_id, query, normalized, deliver, "
                f"created_at, min_relevance) VALUES (?, ?, ?, ?, ?, ?, ?) {_SUB_RETURNING}"
            )
            params = (str(owner), guild_id, query, normalized, modes, iso(now), min_relevance)
            row = await _one(db, sql, *params)
        assert row is not None
        return rows.sub_from_row(row)

    async def remove_subscription(
        self, sub_id: int, owner: Owner | None, now: datetime
    ) -> Subscription:
        stamp = iso(now)
        async with self._write(f"removing subscription #{sub_id}") as db:
            sub = await _own_sub(db, sub_id, owner)
            await db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))
            who = str(sub.owner)
            await db.execute(_SUPPRESS_ORPHAN_ALERTS, (SUBSCRIPTION_REMOVED, stamp, who, who))
        return sub

    async def set_subscription_delivery(
        self, sub_id: int, owner: Owner | None, deliver: frozenset[DeliveryMode], now: datetime
    ) -> Subscription:
        async with self._write(f"changing how subscription #{sub_id} delivers") as db:
            sub = await _own_sub(db, sub_id, owner)
            modes = _check_delivery(sub.owner, deliver)
            sql = f"UPDATE subscriptions SET deliver = ? WHERE id = ? {_SUB_RETURNING}"
            row = await _one(db, sql, modes, sub_id)
        assert row is not None
        return rows.sub_from_row(row)

    async def set_min_relevance(
        self, sub_id: int, owner: Owner | None, value: float | None, now: datetime
    ) -> Subscription:
        async with self._write(f"changing the relevance floor of subscription #{sub_id}") as db:
            await _own_sub(db, sub_id, owner)
            sql = f"UPDATE subscriptions SET min_relevance = ? WHERE id = ? {_SUB_RETURNING}"
            row = await _one(db, sql, value, sub_id)
        assert row is not None
        return rows.sub_from_row(row)

    async def get_subscription(self, sub_id: int) -> Subscription | None:
        sql = f"{rows.SELECT_SUBS} WHERE id = ?"
        found = await self._read(f"reading subscription #{sub_id}", sql, sub_id)
        return rows.sub_from_row(found[0]) if found else None

    async def list_subscriptions(
        self, owner: Owner | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[Subscription]:
        sql = f"{rows.SELECT_SUBS} WHERE id > ?{{}} ORDER BY id LIMIT ?"
        size = -1 if limit is None else limit  # a negative LIMIT is none in SQLite
        if owner is None:
            found = await self._read("listing subscriptions", sql.format(""), after_id, size)
        else:
            sql = sql.format(" AND owner = ?")
            what = f"listing subscriptions of {owner}"
            found = await self._read(what, sql, after_id, str(owner), size)
        return [rows.sub_from_row(row) for row in found]

    async def subscriptions_marker(self) -> int:
        sql = "SELECT n FROM subscription_changes WHERE id = 1"
        found = await self._read("reading the subscriptions' change counter", sql)
        return int(found[0][0])

    async def count_matches(self, sub_ids: Sequence[int]) -> dict[int, int]:
        counts = dict.fromkeys(sub_ids, 0)
        if not counts:
            return counts
        for ids in chunks(list(counts)):
            sql = _COUNT_MATCHES.format(ids=rows.placeholders(len(ids)))
            for sub_id, count in await self._read("counting matches", sql, *ids, *ids):
                counts[int(sub_id)] = count
        return counts

    async def count_matches_since(self, since: datetime) -> int:
        sql = "SELECT count(*) FROM matches WHERE matched_at >= ?"
        [(count,)] = await self._read("counting recent matches", sql, iso(since))
        return int(count)


async def _check_unique(
    db: aiosqlite.Connection, owner: Owner, normalized: str, limit: int
) -> None:
    same = await _one(
        db,
        "SELECT id FROM subscriptions WHERE owner = ? AND normalized = ?",
        str(owner),
        normalized,
    )
    if same is not None:
        who = "you already have" if owner.kind is OwnerKind.USER else "this channel already has"
        raise UserError(f"{who} this subscription (#{same[0]})")
    counted = await _one(db, "SELECT count(*) FROM subscriptions WHERE owner = ?", str(owner))
    count = int(counted[0]) if counted else 0
    if count >= limit:
        raise LimitError(_limit_message(owner, count, limit))


async def _check_confirmation_limit(
    db: aiosqlite.Connection, address: str, now: datetime, max_per_day: int
) -> None:
    since = iso(now - timedelta(days=1))
    sql = "SELECT count(*) FROM confirmations WHERE address = ? AND issued_at > ?"
    counted = await _one(db, sql, address, since)
    if counted is not None and counted[0] >= max_per_day:
        raise LimitError(
            f"{max_per_day} confirmation mails went to this address in the last 24 hours, the "
            "most allowed; use the code or link from one of them, or try again tomorrow"
        )


async def _queue_confirmation(
    db: aiosqlite.Connection, owner: Owner, address: str, stamp: str
) -> None:
    await db.execute(
        "INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, "
        "created_at, updated_at) VALUES (?, ?, 'email', 'confirm', ?, ?, ?, ?)",
        (
            f"confirm:email:{address}:{stamp}",
            str(owner),
            rows.to_json({"address": address, "issued": stamp}),
            stamp,
            stamp,
            stamp,
        ),
    )
