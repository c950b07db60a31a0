"""Rows of the users, subscriptions, matches and deliveries tables as PostgreSQL gives them.

The columns and the checks on user settings are SQLite's (``bot.store.sqlite._accounts_codec``),
so both stores take and refuse the same values; only the types differ: booleans are
``boolean``, datetimes aware ``timestamptz``, lists ``text[]``/``bigint[]``, payloads jsonb
(decoded by the pool's codec).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bot.messages import Channel
from bot.models import DeliveryMode, DigestFrequency, MatchRecord, Owner, Subscription, User
from bot.store.protocols import Delivery, DeliveryKind, DeliveryState
from bot.store.sqlite._accounts_codec import (
    DELIVERY_COLUMNS,
    MATCH_COLUMNS,
    SUB_COLUMNS,
    USER_COLUMNS,
    USER_SETTINGS,
)

Row = Sequence[Any]

SELECT_USERS = f"SELECT {', '.join(USER_COLUMNS)} FROM users"
SELECT_SUBS = f"SELECT {', '.join(SUB_COLUMNS)} FROM subscriptions"
SELECT_DELIVERIES = f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM deliveries"
USER_RETURNING = f"RETURNING {', '.join(USER_COLUMNS)}"
SUB_RETURNING = f"RETURNING {', '.join(SUB_COLUMNS)}"
DELIVERY_RETURNING = f"RETURNING {', '.join(DELIVERY_COLUMNS)}"
DELIVERY_RETURNING_D = "RETURNING " + ", ".join(f"d.{name}" for name in DELIVERY_COLUMNS)
MATCH_SELECT = ", ".join(f"m.{name}" for name in MATCH_COLUMNS)

_FLAGS = frozenset({"paused", "discord_unreachable", "discord_notice_pending"})


def _as_bool(check: Callable[[object], object]) -> Callable[[object], object]:
    return lambda value: bool(check(value))


# SQLite's checks; the flags they turn into 0/1 go to boolean columns here.
PG_USER_SETTINGS: dict[str, Callable[[object], object]] = {
    name: _as_bool(check) if name in _FLAGS else check for name, check in USER_SETTINGS.items()
}


def text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; nothing shown to a reader keeps one anyway."""
    return value.replace("\x00", "")


def deliver_list(modes: Iterable[DeliveryMode]) -> list[str]:
    return sorted(str(mode) for mode in modes)  # sorted: equal sets store equal


def user_from_row(row: Row) -> User:
    (user_id, created, discord_id, email, verified, strikes, suppressed, tz) = tuple(row[:8])
    (hour, frequency, weekday, paused, dm_channel, unreachable, notice, reason) = tuple(row[8:16])
    return User(
        id=user_id,
        created_at=created,
        discord_id=discord_id,
        email=email,
        email_verified=verified,
        email_strikes=strikes,
        email_suppressed=suppressed,
        timezone=tz,
        digest_hour=hour,
        digest_frequency=DigestFrequency(frequency),
        digest_weekday=weekday,
        paused=paused,
        discord_dm_channel=dm_channel,
        discord_unreachable=unreachable,
        discord_notice_pending=notice,
        email_suppressed_reason=reason,
        manage_generation=row[16],
    )


def sub_from_row(row: Row) -> Subscription:
    sub_id, owner, query, normalized, deliver, created, guild_id, paused, floor = tuple(row)
    return Subscription(
        id=sub_id,
        owner=Owner.parse(owner),
        query=query,
        normalized=normalized,
        deliver=frozenset(DeliveryMode(mode) for mode in deliver),
        created_at=created,
        guild_id=guild_id,
        paused=paused,
        min_relevance=floor,
    )


def match_from_row(row: Row) -> MatchRecord:
    owner, paper_key, sub_ids, words, score, matched_at = tuple(row[:6])
    return MatchRecord(
        owner=Owner.parse(owner),
        paper_key=paper_key,
        sub_ids=tuple(sub_ids),
        words=tuple(words),
        score=score,
        matched_at=matched_at,
    )


# A claim decodes thousands of rows: plain lookups instead of the enums' own calls.
_CHANNELS = {str(c): c for c in Channel}
_KINDS = {str(k): k for k in DeliveryKind}
_STATES = {str(s): s for s in DeliveryState}


def delivery_from_row(row: Row) -> Delivery:
    (row_id, key, owner, channel, kind, state, attempts, next_at, created) = tuple(row[:9])
    paper_key, digest_date, payload, last_error, sent_at = tuple(row[9:14])
    return Delivery(
        id=row_id,
        key=key,
        owner=Owner.parse(owner),
        channel=_CHANNELS[channel],
        kind=_KINDS[kind],
        state=_STATES[state],
        attempts=attempts,
        next_attempt_at=next_at,
        created_at=created,
        paper_key=paper_key,
        digest_date=digest_date,
        payload=payload,
        last_error=last_error,
        sent_at=sent_at,
    )
