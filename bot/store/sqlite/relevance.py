"""Paper vectors, the vectorizer they were made with, and ratings: the SQLite methods.

A mixin of ``SqliteStore`` (see ``meta`` for how it reaches the connections). Vectors are
opaque bytes here; ``bot.relevance.vectors`` gives them meaning.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.errors import NotFoundError
from bot.store.records import Feedback, Rating, VectorizerInfo, VectorizerState
from bot.store.sqlite import _codec as codec
from bot.store.sqlite._codec import Row, chunks

_CURRENT = "(SELECT version FROM vectorizer WHERE id = 1)"
_SELECT_INFO = "SELECT version, kind, n_docs, fitted_at FROM vectorizer WHERE id = 1"
_SELECT_STATE = "SELECT version, kind, n_docs, fitted_at, state FROM vectorizer WHERE id = 1"
_PUT_STATE = """
INSERT INTO vectorizer (id, version, kind, n_docs, fitted_at, state) VALUES (1, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, kind = excluded.kind,
    n_docs = excluded.n_docs, fitted_at = excluded.fitted_at, state = excluded.state
"""
_PUT_VECTOR = """
INSERT INTO paper_vectors (paper_key, version, vector) VALUES (?, ?, ?)
ON CONFLICT (paper_key) DO UPDATE SET version = excluded.version, vector = excluded.vector
"""
_RATE = """
INSERT INTO feedback (user_id, paper_key, rating, sub_id, rated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (user_id, paper_key) DO UPDATE SET rating = excluded.rating,
    sub_id = coalesce(excluded.sub_id, feedback.sub_id), rated_at = excluded.rated_at
"""
_RATING_VALUE = {Rating.LIKE: 1, Rating.DISLIKE: -1}


class RelevanceMixin:
    """``RelevanceStore`` over SQLite; mixed into ``SqliteStore``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    async def vectorizer_state(self) -> VectorizerState | None:
        found = await self._read("reading the vectorizer", _SELECT_STATE)
        if not found:
            return None
        version, kind, n_docs, fitted_at, state = found[0]
        return VectorizerState(
            int(version), str(kind), int(n_docs), datetime.fromisoformat(fitted_at), bytes(state)
        )

    async def vectorizer_info(self) -> VectorizerInfo | None:
        found = await self._read("reading which vectorizer is fitted", _SELECT_INFO)
        if not found:
            return None
        version, kind, n_docs, fitted = found[0]
        return VectorizerInfo(int(version), str(kind), int(n_docs), datetime.fromisoformat(fitted))

    async def count_papers(self) -> int:
        found = await self._read("counting papers", "SELECT count(*) FROM papers")
        return int(found[0][0])

    async def paper_texts(self, *, missing_vectors: bool, limit: int) -> list[tuple[str, str, str]]:
        where = ""
        if missing_vectors:
            where = (
                " WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v WHERE v.paper_key = p.key"
                f" AND v.version = {_CURRENT})"
            )
        sql = f"SELECT key, title, abstract FROM papers p{where} ORDER BY sort_date DESC LIMIT ?"
        found = await self._read("reading paper texts", sql, limit)
        return [(str(k), str(t), str(a)) for k, t, a in found]

    async def replace_vectorizer(
        self, state: VectorizerState, vectors: Mapping[str, bytes]
    ) -> None:
        async with self._write("installing a refitted vectorizer") as db:
            await db.execute(
                _PUT_STATE,
                (state.version, state.kind, state.n_docs, codec.iso(state.fitted_at), state.state),
            )
            await db.execute("DELETE FROM paper_vectors")
            await _put_vectors(db, state.version, vectors)

    async def save_vectors(self, version: int, vectors: Mapping[str, bytes]) -> bool:
        async with self._write("storing paper vectors") as db:
            found = list(await db.execute_fetchall(f"SELECT {_CURRENT}"))
            if not found or found[0][0] != version:
                return False
            await _put_vectors(db, version, vectors)
            return True

    async def get_vectors(self, keys: Collection[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(keys))
        out: dict[str, bytes] = {}
        for chunk in chunks(wanted):
            sql = (
                "SELECT paper_key, vector FROM paper_vectors WHERE version = "
                f"{_CURRENT} AND paper_key IN ({', '.join('?' * len(chunk))})"
            )
            for key, blob in await self._read("reading paper vectors", sql, *chunk):
                out[str(key)] = bytes(blob)
        return out

    async def recent_vectors(
        self, since: datetime | None = None, limit: int | None = None
    ) -> dict[str, bytes]:
        sql = (
            "SELECT p.key, v.vector FROM papers p JOIN paper_vectors v ON v.paper_key = p.key"
            f" WHERE v.version = {_CURRENT} AND p.sort_date >= ?"
            " ORDER BY p.sort_date DESC, p.key DESC LIMIT ?"
        )
        start = codec.iso(since) if since is not None else ""
        found = await self._read("reading recent vectors", sql, start, codec.check_limit(limit))
        return {str(key): bytes(blob) for key, blob in found}

    async def rate(
        self,
        user_id: int,
        ratings: Mapping[str, Rating],
        now: datetime,
        sub_ids: Mapping[str, int] | None = None,
    ) -> None:
        subs = sub_ids or {}
        async with self._write(f"recording feedback of user {user_id}") as db:
            keys = list(ratings)
            marks = ", ".join("?" * len(keys))
            sql = f"SELECT key FROM papers WHERE key IN ({marks})"
            known = {str(r[0]) for r in await db.execute_fetchall(sql, keys)} if keys else set()
            for key in keys:
                if key not in known:
                    raise NotFoundError(f"no stored paper {key}")
            rows = [
                (user_id, k, _RATING_VALUE[r], subs.get(k), codec.iso(now))
                for k, r in ratings.items()
            ]
            await db.executemany(_RATE, rows)

    async def list_feedback(self, user_id: int) -> list[Feedback]:
        return (await self.feedback_of([user_id]))[user_id]

    async def feedback_of(self, user_ids: Collection[int]) -> dict[int, list[Feedback]]:
        wanted = sorted(set(user_ids))
        out: dict[int, list[Feedback]] = {user_id: [] for user_id in wanted}
        for chunk in chunks(wanted):
            sql = (
                "SELECT user_id, paper_key, rating, rated_at, sub_id FROM feedback"
                f" WHERE user_id IN ({', '.join('?' * len(chunk))})"
                " ORDER BY user_id, rated_at DESC, paper_key"
            )
            for user_id, key, rating, at, sub in await self._read("reading feedback", sql, *chunk):
                out[int(user_id)].append(
                    Feedback.from_row(key, rating, datetime.fromisoformat(at), sub)
                )
        return out

    async def reset_feedback(self, user_id: int) -> int:
        async with self._write(f"resetting feedback of user {user_id}") as db:
            cursor = await db.execute("DELETE FROM feedback WHERE user_id = ?", (user_id,))
            return int(cursor.rowcount)


async def _put_vectors(
    db: aiosqlite.Connection, version: int, vectors: Mapping[str, bytes]
) -> None:
    # A paper deleted meanwhile would fail the foreign key: insert only keys that exist.
    rows = [(key, version, blob) for key, blob in vectors.items()]
    for chunk in chunks(rows):
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT key FROM papers WHERE key IN ({marks})"
        known = {str(r[0]) for r in await db.execute_fetchall(sql, [r[0] for r in chunk])}
        await db.executemany(_PUT_VECTOR, [r for r in chunk if r[0] in known])
