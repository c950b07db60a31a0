"""Rows of the users, subscriptions, matches and deliveries tables, to values and back.

Same conventions as ``sqlite_codec``: datetimes are fixed-width ISO-8601 UTC text, lists
and mappings JSON, booleans 0/1. Local dates (digests) are ISO ``YYYY-MM-DD``. User
settings pass a check on the way in (``USER_SETTINGS``), raising ``InvalidValueError``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import InvalidValueError
from bot.messages import Channel
from bot.models import (
    DeliveryMode,
    DigestFrequency,
    MatchRecord,
    Owner,
    Subscription,
    User,
)
from bot.store.protocols import Delivery, DeliveryKind, DeliveryState
from bot.store.sqlite._codec import Row, opt_datetime

USER_COLUMNS = (
    "id",
    "created_at",
    "discord_id",
    "email",
    "email_verified",
    "email_strikes",
    "email_suppressed",
    "timezone",
    "digest_hour",
    "digest_frequency",
    "digest_weekday",
    "paused",
    "discord_dm_channel",
    "discord_unreachable",
    "discord_notice_pending",
    "email_suppressed_reason",
    "manage_generation",
)
SUB_COLUMNS = (
    "id",
    "owner",
    "query",
    "normalized",
    "deliver",
    "created_at",
    "guild_id",
    "paused",
    "min_relevance",
)
MATCH_COLUMNS = ("owner", "paper_key", "sub_ids", "words", "score", "matched_at")
DELIVERY_COLUMNS = (
    "id",
    "key",
    "owner",
    "channel",
    "kind",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "paper_key",
    "digest_date",
    "payload",
    "last_error",
    "sent_at",
)

SELECT_USERS = f"SELECT {', '.join(USER_COLUMNS)} FROM users"
SELECT_SUBS = f"SELECT {', '.join(SUB_COLUMNS)} FROM subscriptions"
SELECT_MATCHES = f"SELECT {', '.join(MATCH_COLUMNS)} FROM matches"
SELECT_DELIVERIES = f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM deliveries"

_to_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def to_json(value: object) -> str:
    return _to_json(value)


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def user_from_row(row: Row) -> User:
    (user_id, created, discord_id, email, verified, strikes, suppressed, tz) = row[:8]
    (hour, frequency, weekday, paused, dm_channel, unreachable, notice, reason) = row[8:16]
    generation = row[16]
    return User(
        id=user_id,
        created_at=_datetime(created),
        discord_id=discord_id,
        email=email,
        email_verified=bool(verified),
        email_strikes=strikes,
        email_suppressed=bool(suppressed),
        timezone=tz,
        digest_hour=hour,
        digest_frequency=DigestFrequency(frequency),
        digest_weekday=weekday,
        paused=bool(paused),
        discord_dm_channel=dm_channel,
        discord_unreachable=bool(unreachable),
        discord_notice_pending=bool(notice),
        email_suppressed_reason=reason,
        manage_generation=generation,
    )


def deliver_json(modes: Iterable[DeliveryMode]) -> str:
    # Sorted so equal sets store as equal text.
    return to_json(sorted(str(mode) for mode in modes))


def sub_from_row(row: Row) -> Subscription:
    sub_id, owner, query, normalized, deliver, created, guild_id, paused, min_relevance = row
    return Subscription(
        id=sub_id,
        owner=Owner.parse(owner),
        query=query,
        normalized=normalized,
        deliver=frozenset(DeliveryMode(mode) for mode in json.loads(deliver)),
        created_at=_datetime(created),
        guild_id=guild_id,
        paused=bool(paused),
        min_relevance=None if min_relevance is None else float(min_relevance),
    )


def match_from_row(row: Row) -> MatchRecord:
    owner, paper_key, sub_ids, words, score, matched_at = row[:6]
    return MatchRecord(
        owner=_owner(owner),
        paper_key=paper_key,
        sub_ids=_ids(sub_ids),
        words=_words(words),
        score=score,
        matched_at=_datetime(matched_at),
    )


# A claim or a digest reads thousands of match rows naming a few owners, subscription
# lists and word lists over and over: each text is decoded once (values are immutable).
@functools.lru_cache(maxsize=4096)
def _owner(text: str) -> Owner:
    return Owner.parse(text)


@functools.lru_cache(maxsize=4096)
def _ids(text: str) -> tuple[int, ...]:
    return tuple(int(i) for i in json.loads(text))


@functools.lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


# A claim decodes thousands of rows: plain lookups instead of the enums' own calls.
_CHANNELS = {str(c): c for c in Channel}
_KINDS = {str(k): k for k in DeliveryKind}
_STATES = {str(s): s for s in DeliveryState}


def delivery_from_row(row: Row) -> Delivery:
    (row_id, key, owner, channel, kind, state, attempts, next_at, created) = row[:9]
    paper_key, digest_date, payload, last_error, sent_at = row[9:14]
    return Delivery(
        id=row_id,
        key=key,
        owner=_owner(owner),
        channel=_CHANNELS[channel],
        kind=_KINDS[kind],
        state=_STATES[state],
        attempts=attempts,
        next_attempt_at=_datetime(next_at),
        created_at=_datetime(created),
        paper_key=paper_key,
        digest_date=None if digest_date is None else date.fromisoformat(digest_date),
        payload={} if payload == "{}" else json.loads(payload),
        last_error=last_error,
        sent_at=opt_datetime(sent_at),
    )


@functools.lru_cache(maxsize=4096)  # a claim's thousands of rows share a few timestamps
def _datetime(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- user settings on their way in ------------------------------------------------------


def _check_timezone(value: object) -> str:
    if isinstance(value, str) and value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value
    raise InvalidValueError(
        f"unknown timezone {value!r}: use an IANA name such as Europe/Berlin or America/New_York"
    )


def _int_in(name: str, low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidValueError(
                f"{name} must be a whole number from {low} to {high}, not {value!r}"
            )
        return value

    return check


def _check_frequency(value: object) -> str:
    try:
        return str(DigestFrequency(str(value)))
    except ValueError:
        choices = ", ".join(DigestFrequency)
        raise InvalidValueError(
            f"digest frequency must be one of {choices}, not {value!r}"
        ) from None


def _flag(name: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        if not isinstance(value, bool):
            raise InvalidValueError(f"{name} must be true or false, not {value!r}")
        return int(value)

    return check


def _optional_text(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise InvalidValueError(f"expected an id or nothing, not {value!r}")


# The settings update_user may change, each with the check that turns it into a SQL value.
USER_SETTINGS: dict[str, Callable[[object], object]] = {
    "timezone": _check_timezone,
    "digest_hour": _int_in("digest hour", 0, 23),
    "digest_frequency": _check_frequency,
    "digest_weekday": _int_in("digest weekday (0 = Monday)", 0, 6),
    "paused": _flag("paused"),
    "discord_dm_channel": _optional_text,
    "discord_unreachable": _flag("discord_unreachable"),
    "discord_notice_pending": _flag("discord_notice_pending"),
}
