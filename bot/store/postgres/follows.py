"""Papers followed through their life: ``FollowStore`` on PostgreSQL.

The changes themselves are written by ``ingest`` in its own transaction (``record_changes``
here, called from there), only for papers someone follows, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import asyncpg

from bot.messages import Channel
from bot.models import Owner, Paper
from bot.store.changes import paper_changes
from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase
from bot.store.records import ChangeKind, Follow, FollowNote, PaperChange

_CHANGE_COLUMNS = "id, paper_key, kind, detail, changed_at"
# xmax is 0 only on a row this statement inserted (an updated row carries our xid).
_FOLLOW = """
INSERT INTO follows (owner, paper_key, channel, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (owner, paper_key) DO UPDATE SET channel = excluded.channel
RETURNING xmax = 0
"""
_FOLLOWERS = 'SELECT owner, channel FROM follows WHERE paper_key = $1 ORDER BY owner COLLATE "C"'
_TO_NOTE = (
    f"SELECT {_CHANGE_COLUMNS} FROM paper_changes WHERE NOT noted ORDER BY id LIMIT $1"
    " FOR UPDATE SKIP LOCKED"
)
_INSERT_NOTE = """
INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, created_at,
                        updated_at)
VALUES ($1, $2, $3, 'confirm', $4, $5, $5, $5)
ON CONFLICT (key) DO NOTHING
"""
_INSERT_CHANGE = """
INSERT INTO paper_changes (paper_key, kind, detail, changed_at) VALUES ($1, $2, $3, $4)
"""


class FollowsMixin(PgBase):
    """``follow``/``unfollow``/``list_follows``/``paper_change_log``/``queue_follow_notes``."""

    async def follow(self, owner: Owner, paper_key: str, channel: Channel, now: datetime) -> bool:
        async with self._tx(f"following {paper_key!r} for {owner}") as conn:
            inserted = await conn.fetchval(
                _FOLLOW, str(owner), codec.text(paper_key), str(channel), codec.utc(now)
            )
        return bool(inserted)

    async def unfollow(self, owner: Owner, paper_key: str) -> bool:
        sql = "DELETE FROM follows WHERE owner = $1 AND paper_key = $2 RETURNING paper_key"
        async with self._tx(f"unfollowing {paper_key!r} for {owner}") as conn:
            rows = await conn.fetch(sql, str(owner), codec.text(paper_key))
        return bool(rows)

    async def list_follows(self, owner: Owner) -> list[Follow]:
        sql = (
            "SELECT owner, paper_key, channel, created_at FROM follows WHERE owner = $1"
            ' ORDER BY created_at DESC, paper_key COLLATE "C"'
        )
        rows = await self._fetch(f"reading the papers {owner} follows", sql, str(owner))
        return [Follow(Owner.parse(r[0]), r[1], Channel(r[2]), r[3]) for r in rows]

    async def paper_change_log(self, keys: Collection[str]) -> dict[str, list[PaperChange]]:
        if not keys:
            return {}
        sql = (
            f"SELECT {_CHANGE_COLUMNS} FROM paper_changes WHERE paper_key = ANY($1::text[])"
            " ORDER BY id"
        )
        found: dict[str, list[PaperChange]] = {}
        for row in await self._fetch("reading paper changes", sql, codec.texts(list(keys))):
            change = _change(row)
            found.setdefault(change.paper_key, []).append(change)
        return found

    async def queue_follow_notes(self, now: datetime, limit: int = 500) -> list[FollowNote]:
        """Each change not yet noted becomes one outbox row per follower (kind ``confirm``,
        purpose ``follow``, so it goes out first, as transactional mail does); the change is
        marked noted in the same transaction. Returns the notes queued."""
        stamp = codec.utc(now)
        notes: list[FollowNote] = []
        async with self._tx("queueing notes about followed papers") as conn:
            changes = [_change(row) for row in await conn.fetch(_TO_NOTE, limit)]
            for change in changes:
                for owner, channel in await conn.fetch(_FOLLOWERS, change.paper_key):
                    note = FollowNote(change, Owner.parse(owner), Channel(channel))
                    await _insert_note(conn, note, stamp)
                    notes.append(note)
            await conn.execute(
                "UPDATE paper_changes SET noted = true WHERE id = ANY($1::bigint[])",
                [c.id for c in changes],
            )
        return notes


async def record_changes(
    conn: asyncpg.Connection,
    stored: dict[str, Paper],
    updates: Sequence[Paper],
    upvote_threshold: int,
    stamp: datetime,
) -> None:
    """Inside ingest's transaction: the changes of each updated paper someone follows."""
    keys = [p.key for p in updates]
    if not keys:
        return
    sql = "SELECT DISTINCT paper_key FROM follows WHERE paper_key = ANY($1::text[])"
    followed = {r[0] for r in await conn.fetch(sql, keys)}
    rows = [
        (p.key, str(kind), {"before": dict(before), "after": dict(after)}, stamp)
        for p in updates
        if p.key in followed
        for kind, before, after in paper_changes(stored[p.key], p, upvote_threshold)
    ]
    if rows:
        await conn.executemany(_INSERT_CHANGE, rows)


async def _insert_note(conn: asyncpg.Connection, note: FollowNote, stamp: datetime) -> None:
    payload = {"purpose": "follow", "paper": note.change.paper_key, "change": note.change.id}
    key = f"follow:{note.change.id}:{note.owner}"
    await conn.execute(_INSERT_NOTE, key, str(note.owner), str(note.channel), payload, stamp)


def _change(row: asyncpg.Record) -> PaperChange:
    detail = row[3]
    return PaperChange(
        int(row[0]), row[1], ChangeKind(row[2]), detail["before"], detail["after"], row[4]
    )
