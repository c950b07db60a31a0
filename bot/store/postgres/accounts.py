"""Users, their email addresses and subscriptions: the PostgreSQL ``Store`` methods.

A mixin of ``PostgresStore``. Each write is one transaction on a pooled connection; where
a check guards the write (the subscription limit, the daily cap of confirmation mails) a
transaction-scoped advisory lock on the owner or address serialises the writers that could
interleave, across processes. Addresses compare regardless of case, as SQLite's NOCASE.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from bot.address import check_email_address
from bot.errors import LimitError, NotFoundError, UserError
from bot.messages import EMAIL_REMOVED, SUBSCRIPTION_REMOVED
from bot.models import DeliveryMode, Owner, OwnerKind, Subscription, User
from bot.store.postgres import _accounts_codec as rows
from bot.store.postgres._base import PgBase
from bot.store.sqlite._codec import iso
from bot.store.sqlite.accounts import _check_delivery, _identity, _limit_message

# Advisory lock classes (the first key of the two-key form), one per kind of thing locked.
LOCK_OWNER_SUBS = 15_001
LOCK_ADDRESS = 15_002

_CLEAR_EMAIL_STATE = (
    "email_verified = false, email_strikes = 0, email_suppressed = false, "
    "email_suppressed_reason = NULL"
)
# Pending mail for an owner that can no longer go anywhere (address removed, unsubscribed).
SUPPRESS_PENDING_EMAIL = """
UPDATE deliveries SET state = 'suppressed', last_error = $1, updated_at = $2
WHERE owner = $3 AND channel = 'email' AND state = 'pending'
"""
# Pending alerts of an owner's matches none of whose subscriptions still exist.
_SUPPRESS_ORPHAN_ALERTS = """
UPDATE deliveries SET state = 'suppressed', last_error = $1, updated_at = $2
WHERE owner = $3 AND kind = 'alert' AND state = 'pending' AND paper_key IN (
    SELECT m.paper_key FROM matches AS m
    WHERE m.owner = $3
      AND NOT EXISTS (SELECT 1 FROM subscriptions AS s WHERE s.id = ANY (m.sub_ids)))
"""
_QUEUE_CONFIRMATION = """
INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, created_at,
                        updated_at)
VALUES ($1, $2, 'email', 'confirm', $3, $4, $4, $4)
"""
_EMAIL_IS = "lower(email) = lower($1)"


async def lock(conn: asyncpg.Connection, kind: int, name: str) -> None:
    """Hold ``name``'s advisory lock of ``kind`` until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", kind, name)


async def user_where(conn: asyncpg.Connection, where: str, value: object) -> User | None:
    # ``where`` is one of our own conditions on $1, never user input.
    row = await conn.fetchrow(f"{rows.SELECT_USERS} WHERE {where}", value)
    return None if row is None else rows.user_from_row(row)


async def require_user(conn: asyncpg.Connection, user_id: int, *, lock: bool = False) -> User:
    user = await user_where(conn, "id = $1" + (" FOR UPDATE" if lock else ""), user_id)
    if user is None:
        raise NotFoundError(f"there is no user #{user_id}")
    return user


async def own_sub(conn: asyncpg.Connection, sub_id: int, owner: Owner | None) -> Subscription:
    row = await conn.fetchrow(f"{rows.SELECT_SUBS} WHERE id = $1", sub_id)
    sub = None if row is None else rows.sub_from_row(row)
    if sub is None or (owner is not None and sub.owner != owner):
        raise NotFoundError(f"there is no subscription #{sub_id} of yours")
    return sub


class AccountsMixin(PgBase):
    """Users and subscriptions; mixed into ``PostgresStore``."""

    # --- users ----------------------------------------------------------------------------

    async def get_or_create_user(
        self, *, discord_id: str | None = None, email: str | None = None, now: datetime
    ) -> User:
        column, checked = _identity(discord_id, email)
        value = rows.text(checked)
        where = _EMAIL_IS if column == "email" else "discord_id = $1"
        insert = (
            f"INSERT INTO users ({column}, created_at, updated_at) VALUES ($1, $2, $2) "
            f"ON CONFLICT DO NOTHING {rows.USER_RETURNING}"
        )
        async with self._tx(f"finding or creating a user by {column}") as conn:
            found = await user_where(conn, where, value)
            if found is not None:
                return found
            # Another process may insert the same identity meanwhile: the insert then waits
            # for it and does nothing, and the read after it sees that user.
            row = await conn.fetchrow(insert, value, now)
            found = rows.user_from_row(row) if row else await user_where(conn, where, value)
        assert found is not None
        return found

    async def get_user(self, user_id: int) -> User | None:
        found = await self._fetch("reading a user", f"{rows.SELECT_USERS} WHERE id = $1", user_id)
        return rows.user_from_row(found[0]) if found else None

    async def find_user(
        self, *, discord_id: str | None = None, email: str | None = None
    ) -> User | None:
        if (discord_id is None) == (email is None):
            raise TypeError("give exactly one of discord_id and email")
        if email is None:
            where, value, column = "discord_id = $1", str(discord_id), "discord_id"
        else:
            where, value, column = _EMAIL_IS, email.strip(), "email"
        sql = f"{rows.SELECT_USERS} WHERE {where}"
        found = await self._fetch(f"finding a user by {column}", sql, rows.text(value))
        return rows.user_from_row(found[0]) if found else None

    async def update_user(self, user_id: int, now: datetime, **changes: object) -> User:
        unknown = sorted(set(changes) - set(rows.PG_USER_SETTINGS))
        if unknown:
            raise TypeError(f"update_user cannot change {', '.join(unknown)}")
        values = [rows.PG_USER_SETTINGS[name](value) for name, value in changes.items()]
        assignments = "".join(f"{name} = ${n}, " for n, name in enumerate(changes, start=3))
        sql = f"UPDATE users SET {assignments}updated_at = $2 WHERE id = $1 {rows.USER_RETURNING}"
        async with self._tx(f"updating user #{user_id}") as conn:
            row = await conn.fetchrow(sql, user_id, now, *values)
        if row is None:
            raise NotFoundError(f"there is no user #{user_id}")
        return rows.user_from_row(row)

    async def list_users(self, *, after_id: int = 0, limit: int | None = None) -> list[User]:
        sql = f"{rows.SELECT_USERS} WHERE id > $1 ORDER BY id LIMIT $2"  # LIMIT NULL: none
        found = await self._fetch("listing users", sql, after_id, limit)
        return [rows.user_from_row(row) for row in found]

    async def count_users(self) -> int:
        found = await self._fetch("counting users", "SELECT count(*) FROM users")
        return int(found[0][0])

    async def count_subscriptions(self) -> int:
        found = await self._fetch("counting subscriptions", "SELECT count(*) FROM subscriptions")
        return int(found[0][0])

    # --- email addresses ------------------------------------------------------------------

    async def set_email(
        self, user_id: int, address: str, now: datetime, *, max_per_day: int = 3
    ) -> User:
        address = check_email_address(address)
        sql = (
            f"UPDATE users SET email = $2, {_CLEAR_EMAIL_STATE}, updated_at = $3 WHERE id = $1 "
            f"{rows.USER_RETURNING}"
        )
        async with self._tx(f"setting the address of user #{user_id}") as conn:
            user = await require_user(conn, user_id)
            await lock(conn, LOCK_ADDRESS, address.lower())
            holder = await user_where(conn, _EMAIL_IS, address)
            if holder is not None and holder.id != user_id:
                raise UserError("that address is used by another account")
            await _check_confirmation_limit(conn, address, now, max_per_day)
            row = await conn.fetchrow(sql, user_id, address, now)
            await conn.execute(
                "INSERT INTO confirmations (user_id, address, issued_at) VALUES ($1, $2, $3)",
                user_id,
                address,
                now,
            )
            await _queue_confirmation(conn, user.owner, address, now)
        assert row is not None
        return rows.user_from_row(row)

    async def confirmation_times(
        self, user_id: int, address: str, since: datetime
    ) -> list[datetime]:
        sql = (
            "SELECT issued_at FROM confirmations WHERE user_id = $1 "
            "AND lower(address) = lower($2) AND issued_at >= $3 ORDER BY issued_at"
        )
        found = await self._fetch("reading confirmations", sql, user_id, rows.text(address), since)
        return [row[0] for row in found]

    async def wrong_codes(self, user_id: int, address: str, since: datetime) -> int:
        sql = (
            "SELECT coalesce(sum(wrong_codes), 0) FROM confirmations "
            "WHERE user_id = $1 AND lower(address) = lower($2) AND issued_at >= $3"
        )
        found = await self._fetch("counting wrong codes", sql, user_id, rows.text(address), since)
        return int(found[0][0])

    async def record_wrong_code(self, user_id: int, address: str) -> None:
        sql = (
            "UPDATE confirmations SET wrong_codes = wrong_codes + 1 WHERE id = ("
            "SELECT id FROM confirmations WHERE user_id = $1 AND lower(address) = lower($2) "
            "ORDER BY issued_at DESC, id DESC LIMIT 1)"
        )
        async with self._tx(f"counting a wrong code of user #{user_id}") as conn:
            await conn.execute(sql, user_id, rows.text(address))

    async def verify_email(self, user_id: int, address: str, now: datetime) -> User | None:
        sql = (
            "UPDATE users SET email_verified = true, updated_at = $3 "
            f"WHERE id = $2 AND {_EMAIL_IS} {rows.USER_RETURNING}"
        )
        async with self._tx(f"confirming the address of user #{user_id}") as conn:
            row = await conn.fetchrow(sql, rows.text(address), user_id, now)
        return None if row is None else rows.user_from_row(row)

    async def remove_email(self, user_id: int, now: datetime) -> User:
        sql = (
            f"UPDATE users SET email = NULL, {_CLEAR_EMAIL_STATE}, updated_at = $2 "
            f"WHERE id = $1 {rows.USER_RETURNING}"
        )
        async with self._tx(f"removing the address of user #{user_id}") as conn:
            row = await conn.fetchrow(sql, user_id, now)
            if row is None:
                raise NotFoundError(f"there is no user #{user_id}")
            owner = str(Owner.user(user_id))
            await conn.execute(SUPPRESS_PENDING_EMAIL, EMAIL_REMOVED, now, owner)
        return rows.user_from_row(row)

    async def suppress_email(self, address: str, reason: str, now: datetime) -> User | None:
        # The first reason stays: a later unsubscribe does not hide earlier bounces.
        sql = (
            "UPDATE users SET email_suppressed_reason = CASE WHEN email_suppressed "
            "THEN email_suppressed_reason ELSE $2 END, email_suppressed = true, "
            f"updated_at = $3 WHERE {_EMAIL_IS} {rows.USER_RETURNING}"
        )
        why = rows.text(reason)
        async with self._tx("suppressing an address") as conn:
            row = await conn.fetchrow(sql, rows.text(address.strip()), why, now)
            if row is None:
                return None
            user = rows.user_from_row(row)
            await conn.execute(SUPPRESS_PENDING_EMAIL, why, now, str(user.owner))
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
        _check_delivery(owner, deliver)
        sql = (
            "INSERT INTO subscriptions (owner, guild_id, query, normalized, deliver, "
            f"created_at, min_relevance) VALUES ($1, $2, $3, $4, $5, $6, $7) {rows.SUB_RETURNING}"
        )
        who, text, norm = str(owner), rows.text(query), rows.text(normalized)
        async with self._tx(f"adding a subscription for {owner}") as conn:
            await lock(conn, LOCK_OWNER_SUBS, who)  # the limit holds across processes
            if owner.kind is OwnerKind.USER:
                await require_user(conn, int(owner.id))
            await _check_unique(conn, owner, norm, limit)
            modes = rows.deliver_list(deliver)
            row = await conn.fetchrow(sql, who, guild_id, text, norm, modes, now, min_relevance)
        assert row is not None
        return rows.sub_from_row(row)

    async def remove_subscription(
        self, sub_id: int, owner: Owner | None, now: datetime
    ) -> Subscription:
        async with self._tx(f"removing subscription #{sub_id}") as conn:
            sub = await own_sub(conn, sub_id, owner)
            await conn.execute("DELETE FROM subscriptions WHERE id = $1", sub_id)
            who = str(sub.owner)
            await conn.execute(_SUPPRESS_ORPHAN_ALERTS, SUBSCRIPTION_REMOVED, now, who)
        return sub

    async def set_subscription_delivery(
        self, sub_id: int, owner: Owner | None, deliver: frozenset[DeliveryMode], now: datetime
    ) -> Subscription:
        sql = f"UPDATE subscriptions SET deliver = $2 WHERE id = $1 {rows.SUB_RETURNING}"
        async with self._tx(f"changing how subscription #{sub_id} delivers") as conn:
            sub = await own_sub(conn, sub_id, owner)
            _check_delivery(sub.owner, deliver)
            row = await conn.fetchrow(sql, sub_id, rows.deliver_list(deliver))
        assert row is not None
        return rows.sub_from_row(row)

    async def set_min_relevance(
        self, sub_id: int, owner: Owner | None, value: float | None, now: datetime
    ) -> Subscription:
        sql = f"UPDATE subscriptions SET min_relevance = $2 WHERE id = $1 {rows.SUB_RETURNING}"
        async with self._tx(f"changing the relevance floor of subscription #{sub_id}") as conn:
            await own_sub(conn, sub_id, owner)
            row = await conn.fetchrow(sql, sub_id, value)
        assert row is not None
        return rows.sub_from_row(row)

    async def get_subscription(self, sub_id: int) -> Subscription | None:
        sql = f"{rows.SELECT_SUBS} WHERE id = $1"
        found = await self._fetch(f"reading subscription #{sub_id}", sql, sub_id)
        return rows.sub_from_row(found[0]) if found else None

    async def list_subscriptions(
        self, owner: Owner | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[Subscription]:
        # LIMIT NULL is no limit in PostgreSQL.
        if owner is None:
            sql = f"{rows.SELECT_SUBS} WHERE id > $1 ORDER BY id LIMIT $2"
            found = await self._fetch("listing subscriptions", sql, after_id, limit)
        else:
            sql = f"{rows.SELECT_SUBS} WHERE id > $1 AND owner = $3 ORDER BY id LIMIT $2"
            what = f"listing subscriptions of {owner}"
            found = await self._fetch(what, sql, after_id, limit, str(owner))
        return [rows.sub_from_row(row) for row in found]

    async def subscriptions_marker(self) -> int:
        sql = "SELECT n FROM subscription_changes WHERE id = 1"
        found = await self._fetch("reading the subscriptions' change counter", sql)
        return int(found[0][0])


async def _check_unique(
    conn: asyncpg.Connection, owner: Owner, normalized: str, limit: int
) -> None:
    sql = "SELECT id FROM subscriptions WHERE owner = $1 AND normalized = $2"
    same = await conn.fetchval(sql, str(owner), normalized)
    if same is not None:
        who = "you already have" if owner.kind is OwnerKind.USER else "this channel already has"
        raise UserError(f"{who} this subscription (#{same})")
    sql = "SELECT count(*) FROM subscriptions WHERE owner = $1"
    count = int(await conn.fetchval(sql, str(owner)))
    if count >= limit:
        raise LimitError(_limit_message(owner, count, limit))


async def _check_confirmation_limit(
    conn: asyncpg.Connection, address: str, now: datetime, max_per_day: int
) -> None:
    sql = "SELECT count(*) FROM confirmations WHERE lower(address) = lower($1) AND issued_at > $2"
    count = await conn.fetchval(sql, address, now - timedelta(days=1))
    if count >= max_per_day:
        raise LimitError(
            f"{max_per_day} confirmation mails went to this address in the last 24 hours, the "
            "most allowed; use the code or link from one of them, or try again tomorrow"
        )


async def _queue_confirmation(
    conn: asyncpg.Connection, owner: Owner, address: str, now: datetime
) -> None:
    stamp = iso(now)  # the key and payload keep SQLite's text, so links and keys agree
    key = f"confirm:email:{address}:{stamp}"
    payload = {"address": address, "issued": stamp}
    await conn.execute(_QUEUE_CONFIRMATION, key, str(owner), payload, now)
