"""Matches and the outbox: the SQLite ``Store`` methods (digests: ``digests.py``).

A mixin of ``SqliteStore`` (see ``sqlite_accounts`` for how it reaches the connections).
Match rows and the deliveries they call for are written in one transaction, so a crash
can never leave a match nobody will hear about, nor an alert for a match we forgot. Which
deliveries a match calls for is decided before (``bot.delivery.policy``): this only writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.messages import Channel, PlannedMatch
from bot.models import MatchRecord, Owner, Paper, User
from bot.store.listing import delivery_listing
from bot.store.protocols import (
    Delivery,
    DeliveryKind,
    DeliveryState,
)
from bot.store.sqlite import _accounts_codec as rows
from bot.store.sqlite import _codec as codec
from bot.store.sqlite._codec import Row, chunks, iso
from bot.store.sqlite._match_rows import (
    FALLBACK,
    INSERT_ALERT,
    INSERT_ALERTS,
    INSERT_MATCHES,
    alert_key,
    build_rows,
    first_per_pair,
    new_pairs,
)
from bot.store.sqlite.accounts import SUPPRESS_PENDING_EMAIL

_OVERDUE = (
    "SELECT channel, count(*), min(next_attempt_at) FROM deliveries"
    " WHERE state = 'pending' AND next_attempt_at <= ? GROUP BY channel"
)
_SENT = "SET state = 'sent', sent_at = ?, last_error = NULL, updated_at = ?"
_SUPPRESSED = "SET state = 'suppressed', last_error = ?, updated_at = ?"
_SUPPRESSIBLE = "state IN ('pending', 'sending')"
_SENDING = "state = 'sending'"
_STRIKE = """
UPDATE users SET
    email_strikes = email_strikes + 1,
    email_suppressed = CASE WHEN email_strikes + 1 >= ? THEN 1 ELSE email_suppressed END,
    email_suppressed_reason = CASE WHEN email_suppressed = 0 AND email_strikes + 1 >= ?
        THEN ? ELSE email_suppressed_reason END,
    updated_at = ?
WHERE id = ? AND email = ?
"""


class OutboxMixin:
    """Matches and deliveries; mixed into ``SqliteStore``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _write_one(self, what: str, sql: str, params: Sequence[Any]) -> None: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    # --- matches ----------------------------------------------------------------------------

    async def record_matches(
        self,
        planned: Sequence[PlannedMatch],
        now: datetime,
        *,
        matched: Mapping[str, int] | None = None,
    ) -> list[MatchRecord]:
        unique = first_per_pair(planned)
        # Rows built before the transaction, so the writer is held only for the SQL.
        built = build_rows(unique, now)
        async with self._write(f"recording {len(unique)} matches") as db:
            await db.executemany(
                "DELETE FROM match_queue WHERE paper_key = ? AND version = ?",
                list((matched or {}).items()),
            )
            new = await new_pairs(db, list(unique))
            # Sorted by owner: the tables' keys and indexes lead with it, so rows append
            # to a few index pages instead of landing all over them.
            fresh = [built[pair] for pair in sorted(new)]
            await db.executemany(INSERT_MATCHES, [match for match, _ in fresh])
            await db.executemany(INSERT_ALERTS, [row for _, alerts in fresh for row in alerts])
        return [p.record for pair, p in unique.items() if pair in new]

    async def get_matches(self, owner: Owner, paper_keys: Sequence[str]) -> dict[str, MatchRecord]:
        found: dict[str, MatchRecord] = {}
        for chunk in chunks(list(dict.fromkeys(paper_keys))):
            keys = rows.placeholders(len(chunk))
            sql = f"{rows.SELECT_MATCHES} WHERE owner = ? AND paper_key IN ({keys})"
            for row in await self._read(f"reading matches of {owner}", sql, str(owner), *chunk):
                record = rows.match_from_row(row)
                found[record.paper_key] = record
        return found

    async def get_papers(self, keys: Sequence[str]) -> dict[str, Paper]:
        found: dict[str, Paper] = {}
        select = f"SELECT {', '.join(codec.PAPER_COLUMNS)} FROM papers WHERE key IN "
        for chunk in chunks(list(dict.fromkeys(keys))):
            sql = f"{select}({rows.placeholders(len(chunk))})"
            for row in await self._read("reading papers", sql, *chunk):
                paper = codec.paper_from_row(row)
                found[paper.key] = paper
        return found

    # --- the outbox -------------------------------------------------------------------------

    async def renew_lease(
        self, ids: Sequence[int], held: datetime, until: datetime
    ) -> frozenset[int]:
        sql = (
            "UPDATE deliveries SET lease_until = ? WHERE state = 'sending' AND lease_until = ? "
            "AND id IN ({ids}) RETURNING id"
        )
        renewed: set[int] = set()
        async with self._write(f"renewing the lease of {len(ids)} deliveries") as db:
            for chunk in chunks(list(ids)):
                found = await db.execute_fetchall(
                    sql.format(ids=rows.placeholders(len(chunk))), (iso(until), iso(held), *chunk)
                )
                renewed.update(row_id for (row_id,) in found)
        return frozenset(renewed)

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        await self._set_state(ids, _SENT, _SENDING, iso(now), iso(now))

    async def mark_failed(self, ids: Sequence[int], error: str, now: datetime) -> None:
        sql = "SET state = 'failed', last_error = ?, updated_at = ?"
        await self._set_state(ids, sql, _SENDING, error, iso(now))

    async def mark_suppressed(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        await self._set_state(ids, _SUPPRESSED, _SUPPRESSIBLE, reason, iso(now))

    async def settle(
        self, sent: Sequence[int], suppressed: Mapping[str, Sequence[int]], now: datetime
    ) -> None:
        stamp, rows_in = iso(now), len(sent) + sum(len(ids) for ids in suppressed.values())
        if not any(suppressed.values()):  # what the dispatcher writes after each message
            await self._set_state(sent, _SENT, _SENDING, stamp, stamp)
            return
        async with self._write(f"recording the outcome of {rows_in} deliveries") as db:
            await _update(db, sent, _SENT, _SENDING, stamp, stamp)
            for reason, ids in suppressed.items():
                await _update(db, ids, _SUPPRESSED, _SUPPRESSIBLE, reason, stamp)

    async def release(self, ids: Sequence[int], now: datetime) -> None:
        sql = "SET state = 'pending', attempts = max(attempts - 1, 0), updated_at = ?"
        await self._set_state(ids, sql, _SENDING, iso(now))

    async def retry_later(
        self,
        retries: Mapping[int, datetime],
        error: str,
        now: datetime,
        *,
        attempts: int | None = None,
    ) -> None:
        sql = (
            "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, last_error = ?, "
            "attempts = coalesce(?, attempts), updated_at = ? WHERE id = ? AND state = 'sending'"
        )
        params = [
            (iso(when), error, attempts, iso(now), row_id) for row_id, when in retries.items()
        ]
        async with self._write(f"rescheduling {len(params)} deliveries") as db:
            await db.executemany(sql, params)

    async def _set_state(self, ids: Sequence[int], assign: str, guard: str, *values: Any) -> None:
        what = f"updating {len(ids)} deliveries"
        if len(ids) > codec.CHUNK:  # several statements (see chunks): one transaction
            async with self._write(what) as db:
                await _update(db, ids, assign, guard, *values)
        elif ids:
            await self._write_one(what, _update_sql(len(ids), assign, guard), (*values, *ids))

    async def record_email_strike(
        self, user_id: int, address: str, reason: str, now: datetime, *, strikes: int = 3
    ) -> User | None:
        stamp = iso(now)
        why = f"{strikes} deliveries failed permanently, the last: {reason}"
        sql = f"{_STRIKE} RETURNING {', '.join(rows.USER_COLUMNS)}"
        async with self._write(f"counting a failed delivery to user #{user_id}") as db:
            found = list(
                await db.execute_fetchall(sql, (strikes, strikes, why, stamp, user_id, address))
            )
            if not found:
                return None
            user = rows.user_from_row(found[0])
            if user.email_suppressed:
                await db.execute(
                    SUPPRESS_PENDING_EMAIL, (user.email_suppressed_reason, stamp, str(user.owner))
                )
        return user

    async def fall_back_to_email(
        self, user_id: int, paper_keys: Sequence[str], now: datetime
    ) -> int:
        sql = (
            "UPDATE users SET discord_unreachable = 1, discord_notice_pending = 1, "
            f"updated_at = ? WHERE id = ? RETURNING {', '.join(rows.USER_COLUMNS)}"
        )
        queued = 0
        async with self._write(f"moving user #{user_id} from Discord to email") as db:
            found = list(await db.execute_fetchall(sql, (iso(now), user_id)))
            if not found or not rows.user_from_row(found[0]).email_deliverable:
                return 0
            for key in dict.fromkeys(paper_keys):
                owner = Owner.user(user_id)
                queued += await _queue_alert(db, Channel.EMAIL, owner, key, fallback=True, now=now)
        return queued

    async def overdue(self, due_before: datetime) -> dict[Channel, tuple[int, datetime]]:
        rows = await self._read("counting overdue deliveries", _OVERDUE, iso(due_before))
        return {Channel(c): (int(n), datetime.fromisoformat(oldest)) for c, n, oldest in rows}

    async def get_delivery(self, key: str) -> Delivery | None:
        sql = f"{rows.SELECT_DELIVERIES} WHERE key = ?"
        found = await self._read("reading a delivery", sql, key)
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
            lambda _: "?",
            owner=owner,
            state=state,
            kind=kind,
            paper_key=paper_key,
            after_id=after_id,
        )
        limit_value = codec.check_limit(limit)
        found = await self._read("listing deliveries", query.sql, *query.params, limit_value)
        return [rows.delivery_from_row(row) for row in (found if query.forward else found[::-1])]

    async def delivery_counts(self) -> dict[DeliveryState, int]:
        sql = "SELECT state, count(*) FROM deliveries GROUP BY state"
        found = await self._read("counting deliveries", sql)
        return {DeliveryState(state): int(n) for state, n in found}


async def _update(
    db: aiosqlite.Connection, ids: Sequence[int], assign: str, guard: str, *values: Any
) -> None:
    for chunk in chunks(list(ids)):
        await db.execute(_update_sql(len(chunk), assign, guard), (*values, *chunk))


def _update_sql(count: int, assign: str, guard: str) -> str:
    """``assign`` and ``guard`` are our own SQL; the ids are ``count`` placeholders."""
    return f"UPDATE deliveries {assign} WHERE {guard} AND id IN ({rows.placeholders(count)})"


async def _queue_alert(
    db: aiosqlite.Connection,
    channel: Channel,
    owner: Owner,
    paper_key: str,
    *,
    fallback: bool,
    now: datetime,
) -> int:
    """Insert one alert delivery unless its key exists; 1 if inserted."""
    stamp = iso(now)
    payload = rows.to_json(FALLBACK if fallback else {})
    params = (
        alert_key(channel, owner, paper_key),
        str(owner),
        str(channel),
        paper_key,
        payload,
        stamp,
        stamp,
        stamp,
    )
    return len(list(await db.execute_fetchall(INSERT_ALERT, params)))
