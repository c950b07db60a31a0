"""Papers followed through their life: the SQLite ``FollowStore`` methods.

A mixin of ``SqliteStore``. The changes themselves are written by ``ingest`` in its own
transaction (``record_changes`` here, called from there), only for papers someone follows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.messages import Channel
from bot.models import Owner, Paper
from bot.store.changes import paper_changes
from bot.store.records import ChangeKind, Follow, FollowNote, PaperChange
from bot.store.sqlite._codec import Row, chunks, iso

_CHANGE_COLUMNS = "id, paper_key, kind, detail, changed_at"
_FOLLOWERS = "SELECT owner, channel FROM follows WHERE paper_key = ?"


class FollowsMixin:
    """``follow``/``unfollow``/``list_follows``/``paper_change_log``/``queue_follow_notes``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    async def follow(self, owner: Owner, paper_key: str, channel: Channel, now: datetime) -> bool:
        known = "SELECT 1 FROM follows WHERE owner = ? AND paper_key = ?"
        sql = (
            "INSERT INTO follows (owner, paper_key, channel, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (owner, paper_key) DO UPDATE SET channel = excluded.channel"
        )
        async with self._write(f"following {paper_key!r} for {owner}") as db:
            before = list(await db.execute_fetchall(known, (str(owner), paper_key)))
            await db.execute(sql, (str(owner), paper_key, str(channel), iso(now)))
        return not before

    async def unfollow(self, owner: Owner, paper_key: str) -> bool:
        sql = "DELETE FROM follows WHERE owner = ? AND paper_key = ? RETURNING paper_key"
        async with self._write(f"unfollowing {paper_key!r} for {owner}") as db:
            rows = list(await db.execute_fetchall(sql, (str(owner), paper_key)))
        return bool(rows)

    async def list_follows(self, owner: Owner) -> list[Follow]:
        sql = (
            "SELECT owner, paper_key, channel, created_at FROM follows WHERE owner = ?"
            " ORDER BY created_at DESC, paper_key"
        )
        rows = await self._read(f"reading the papers {owner} follows", sql, str(owner))
        return [
            Follow(Owner.parse(r[0]), r[1], Channel(r[2]), datetime.fromisoformat(r[3]))
            for r in rows
        ]

    async def paper_change_log(self, keys: Collection[str]) -> dict[str, list[PaperChange]]:
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        sql = (
            f"SELECT {_CHANGE_COLUMNS} FROM paper_changes WHERE paper_key IN ({marks}) ORDER BY id"
        )
        found: dict[str, list[PaperChange]] = {}
        for row in await self._read("reading paper changes", sql, *keys):
            change = _change(row)
            found.setdefault(change.paper_key, []).append(change)
        return found

    async def queue_follow_notes(self, now: datetime, limit: int = 500) -> list[FollowNote]:
        """Each change not yet noted becomes one outbox row per follower (kind ``confirm``,
        purpose ``follow``, so it goes out first, as transactional mail does); the change is
        marked noted in the same transaction. Returns the notes queued."""
        stamp = iso(now)
        sql = f"SELECT {_CHANGE_COLUMNS} FROM paper_changes WHERE noted = 0 ORDER BY id LIMIT ?"
        notes: list[FollowNote] = []
        async with self._write("queueing notes about followed papers") as db:
            for row in await db.execute_fetchall(sql, (limit,)):
                change = _change(row)
                for owner, channel in await db.execute_fetchall(_FOLLOWERS, (change.paper_key,)):
                    note = FollowNote(change, Owner.parse(owner), Channel(channel))
                    await _insert_note(db, note, stamp)
                    notes.append(note)
                await db.execute("UPDATE paper_changes SET noted = 1 WHERE id = ?", (change.id,))
        return notes


async def record_changes(
    db: aiosqlite.Connection,
    stored: dict[str, Paper],
    updates: Sequence[Paper],
    upvote_threshold: int,
    stamp: str,
) -> None:
    """Inside ingest's transaction: the changes of each updated paper someone follows."""
    keys = [p.key for p in updates]
    if not keys:
        return
    followed: set[str] = set()
    for chunk in chunks(keys):
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT DISTINCT paper_key FROM follows WHERE paper_key IN ({marks})"
        followed.update(r[0] for r in await db.execute_fetchall(sql, chunk))
    rows = [
        (p.key, str(kind), json.dumps({"before": before, "after": after}), stamp)
        for p in updates
        if p.key in followed
        for kind, before, after in paper_changes(stored[p.key], p, upvote_threshold)
    ]
    sql = "INSERT INTO paper_changes (paper_key, kind, detail, changed_at) VALUES (?, ?, ?, ?)"
    await db.executemany(sql, rows)


async def _insert_note(db: aiosqlite.Connection, note: FollowNote, stamp: str) -> None:
    payload = json.dumps(
        {"purpose": "follow", "paper": note.change.paper_key, "change": note.change.id}
    )
    sql = (
        "INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, "
        "created_at, updated_at) VALUES (?, ?, ?, 'confirm', ?, ?, ?, ?)"
        " ON CONFLICT (key) DO NOTHING"
    )
    key = f"follow:{note.change.id}:{note.owner}"
    await db.execute(sql, (key, str(note.owner), str(note.channel), payload, stamp, stamp, stamp))


def _change(row: Row) -> PaperChange:
    detail = json.loads(row[3])
    return PaperChange(
        int(row[0]), row[1], ChangeKind(row[2]), detail["before"], detail["after"],
        datetime.fromisoformat(row[4]),
    )  # fmt: skip
