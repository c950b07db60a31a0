"""The rows ``record_matches`` writes, built in bulk (a mixin-free helper of ``outbox``).

A batch of planned matches becomes: one query finding which (owner, paper) pairs are new,
then one ``executemany`` of match rows and one of alert rows, sorted by owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from bot.messages import Channel, PlannedMatch
from bot.models import Owner
from bot.store.sqlite import _accounts_codec as rows
from bot.store.sqlite._codec import iso

FALLBACK = {"fallback": "discord"}  # payload of an email alert standing in for Discord
INSERT_MATCHES = (
    f"INSERT INTO matches ({', '.join(rows.MATCH_COLUMNS)}, digest_wanted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# Which of a batch of (owner, paper key) pairs, a JSON array of pairs, have no match yet:
# one query per batch, each pair a primary-key lookup.
NEW_PAIRS = """
SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?) AS j WHERE NOT EXISTS (
    SELECT 1 FROM matches AS m WHERE m.owner = j.value ->> 0 AND m.paper_key = j.value ->> 1)
"""
INSERT_ALERTS = """
INSERT INTO deliveries (key, owner, channel, kind, paper_key, payload, next_attempt_at,
                        created_at, updated_at)
VALUES (?, ?, ?, 'alert', ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
"""
# One alert, saying whether it was new.
INSERT_ALERT = """
INSERT INTO deliveries (key, owner, channel, kind, paper_key, payload, next_attempt_at,
                        created_at, updated_at)
VALUES (?, ?, ?, 'alert', ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING 1
"""


def alert_key(channel: Channel, owner: Owner | str, paper_key: str) -> str:
    return f"alert:{channel}:{owner}:{paper_key}"


Pair = tuple[str, str]  # (owner, paper key) as stored


def pair_of(plan: PlannedMatch) -> Pair:
    return str(plan.record.owner), plan.record.paper_key


def first_per_pair(planned: Sequence[PlannedMatch]) -> dict[Pair, PlannedMatch]:
    """The planned matches by (owner, paper), in order; a repeated pair keeps its first."""
    unique: dict[Pair, PlannedMatch] = {}
    for plan in planned:
        unique.setdefault(pair_of(plan), plan)
    return unique


async def new_pairs(db: aiosqlite.Connection, pairs: list[Pair]) -> set[Pair]:
    if not pairs:
        return set()
    found = await db.execute_fetchall(NEW_PAIRS, (rows.to_json(pairs),))
    return {(owner, key) for owner, key in found}


Built = tuple[tuple[Any, ...], list[tuple[Any, ...]]]  # a match row and its alert rows


def build_rows(unique: dict[Pair, PlannedMatch], now: datetime) -> dict[Pair, Built]:
    """Every pair's match row and outbox rows, built once per batch (a chunk has
    thousands: the stamps and payloads they share are encoded once)."""
    stamp = iso(now)
    payloads = {False: rows.to_json({}), True: rows.to_json(FALLBACK)}
    matched_at: dict[datetime, str] = {}
    # The same few subscription ids and words recur across an owner's records: each
    # distinct tuple is encoded once (a dict lookup costs a tenth of encoding).
    encoded: dict[tuple[int, ...] | tuple[str, ...], str] = {}
    built: dict[Pair, Built] = {}
    for (owner, key), p in unique.items():
        record = p.record
        if record.matched_at not in matched_at:
            matched_at[record.matched_at] = iso(record.matched_at)
        if (sub_ids := encoded.get(record.sub_ids)) is None:
            sub_ids = encoded[record.sub_ids] = rows.to_json(list(record.sub_ids))
        if (words := encoded.get(record.words)) is None:
            words = encoded[record.words] = rows.to_json(list(record.words))
        at = matched_at[record.matched_at]
        match = (owner, key, sub_ids, words, float(record.score), at, int(p.digest))
        times = (stamp, stamp, stamp)  # next attempt, created, updated
        alerts = [
            (
                alert_key(r.channel, owner, key),
                owner,
                str(r.channel),
                key,
                payloads[r.fallback],
                *times,
            )
            for r in p.alerts
        ]
        built[owner, key] = (match, alerts)
    return built
