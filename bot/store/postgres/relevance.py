"""Paper vectors, the vectorizer they were made with, and ratings: ``RelevanceStore`` on
PostgreSQL. Vectors are opaque bytes here; ``bot.relevance.vectors`` gives them meaning.

A refit and the vectors saved meanwhile are ordered by the vectorizer row's lock: saving
vectors reads the version ``FOR SHARE``, so it either lands before a refit replaces every
vector or sees the new version and stores nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

import asyncpg

from bot.errors import NotFoundError
from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase
from bot.store.records import Feedback, Rating, VectorizerInfo, VectorizerState

_CURRENT = "(SELECT version FROM vectorizer WHERE id = 1)"
_SELECT_INFO = "SELECT version, kind, n_docs, fitted_at FROM vectorizer WHERE id = 1"
_SELECT_STATE = "SELECT version, kind, n_docs, fitted_at, state FROM vectorizer WHERE id = 1"
_PUT_STATE = """
INSERT INTO vectorizer (id, version, kind, n_docs, fitted_at, state) VALUES (1, $1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, kind = excluded.kind,
    n_docs = excluded.n_docs, fitted_at = excluded.fitted_at, state = excluded.state
"""
# Only papers that exist: one deleted meanwhile would fail the foreign key.
_PUT_VECTORS = """
INSERT INTO paper_vectors (paper_key, version, vector)
SELECT v.key, $3, v.vector FROM unnest($1::text[], $2::bytea[]) AS v (key, vector)
WHERE EXISTS (SELECT 1 FROM papers AS p WHERE p.key = v.key)
ON CONFLICT (paper_key) DO UPDATE SET version = excluded.version, vector = excluded.vector
"""
_RATE = """
INSERT INTO feedback (user_id, paper_key, rating, sub_id, rated_at)
SELECT $1, r.key, r.rating, r.sub_id, $5
FROM unnest($2::text[], $3::int[], $4::bigint[]) AS r (key, rating, sub_id)
ON CONFLICT (user_id, paper_key) DO UPDATE SET rating = excluded.rating,
    sub_id = coalesce(excluded.sub_id, feedback.sub_id), rated_at = excluded.rated_at
"""
_RATING_VALUE = {Rating.LIKE: 1, Rating.DISLIKE: -1}


class RelevanceMixin(PgBase):
    """``RelevanceStore`` over PostgreSQL."""

    async def vectorizer_state(self) -> VectorizerState | None:
        found = await self._fetch("reading the vectorizer", _SELECT_STATE)
        if not found:
            return None
        version, kind, n_docs, fitted_at, state = found[0]
        return VectorizerState(int(version), str(kind), int(n_docs), fitted_at, bytes(state))

    async def vectorizer_info(self) -> VectorizerInfo | None:
        found = await self._fetch("reading which vectorizer is fitted", _SELECT_INFO)
        if not found:
            return None
        version, kind, n_docs, fitted_at = found[0]
        return VectorizerInfo(int(version), str(kind), int(n_docs), fitted_at)

    async def count_papers(self) -> int:
        found = await self._fetch("counting papers", "SELECT count(*) FROM papers")
        return int(found[0][0])

    async def paper_texts(self, *, missing_vectors: bool, limit: int) -> list[tuple[str, str, str]]:
        where = ""
        if missing_vectors:
            where = (
                " WHERE NOT EXISTS (SELECT 1 FROM paper_vectors v WHERE v.paper_key = p.key"
                f" AND v.version = {_CURRENT})"
            )
        sql = (
            f"SELECT key, title, abstract FROM papers p{where}"
            " ORDER BY sort_date DESC, key DESC LIMIT $1"
        )
        found = await self._fetch("reading paper texts", sql, limit)
        return [(str(k), str(t), str(a)) for k, t, a in found]

    async def replace_vectorizer(
        self, state: VectorizerState, vectors: Mapping[str, bytes]
    ) -> None:
        async with self._tx("installing a refitted vectorizer") as conn:
            await conn.execute(
                _PUT_STATE,
                state.version,
                state.kind,
                state.n_docs,
                codec.utc(state.fitted_at),
                state.state,
            )
            await conn.execute("DELETE FROM paper_vectors")
            await _put_vectors(conn, state.version, vectors)

    async def save_vectors(self, version: int, vectors: Mapping[str, bytes]) -> bool:
        async with self._tx("storing paper vectors") as conn:
            current = await conn.fetchval("SELECT version FROM vectorizer WHERE id = 1 FOR SHARE")
            if current != version:
                return False
            await _put_vectors(conn, version, vectors)
            return True

    async def get_vectors(self, keys: Collection[str]) -> dict[str, bytes]:
        sql = (
            f"SELECT paper_key, vector FROM paper_vectors WHERE version = {_CURRENT}"
            " AND paper_key = ANY($1::text[])"
        )
        wanted = list(dict.fromkeys(codec.texts(list(keys))))
        found = await self._fetch("reading paper vectors", sql, wanted)
        return {str(key): bytes(blob) for key, blob in found}

    async def recent_vectors(
        self, since: datetime | None = None, limit: int | None = None
    ) -> dict[str, bytes]:
        sql = (
            "SELECT p.key, v.vector FROM papers p JOIN paper_vectors v ON v.paper_key = p.key"
            f" WHERE v.version = {_CURRENT} AND ($1::timestamptz IS NULL OR p.sort_date >= $1)"
            " ORDER BY p.sort_date DESC, p.key DESC LIMIT $2"
        )
        found = await self._fetch(
            "reading recent vectors", sql, codec.opt_utc(since), codec.check_limit(limit)
        )
        return {str(key): bytes(blob) for key, blob in found}

    async def rate(
        self,
        user_id: int,
        ratings: Mapping[str, Rating],
        now: datetime,
        sub_ids: Mapping[str, int] | None = None,
    ) -> None:
        subs = sub_ids or {}
        keys = list(ratings)
        async with self._tx(f"recording feedback of user {user_id}") as conn:
            sql = "SELECT key FROM papers WHERE key = ANY($1::text[])"
            known = {str(r[0]) for r in await conn.fetch(sql, keys)}
            for key in keys:
                if key not in known:
                    raise NotFoundError(f"no stored paper {key}")
            values = [_RATING_VALUE[ratings[k]] for k in keys]
            await conn.execute(
                _RATE, user_id, keys, values, [subs.get(k) for k in keys], codec.utc(now)
            )

    async def list_feedback(self, user_id: int) -> list[Feedback]:
        return (await self.feedback_of([user_id]))[user_id]

    async def feedback_of(self, user_ids: Collection[int]) -> dict[int, list[Feedback]]:
        sql = (
            "SELECT user_id, paper_key, rating, rated_at, sub_id FROM feedback"
            " WHERE user_id = ANY($1::bigint[]) ORDER BY user_id, rated_at DESC, paper_key"
        )
        wanted = sorted(set(user_ids))
        out: dict[int, list[Feedback]] = {user_id: [] for user_id in wanted}
        for user_id, key, rating, at, sub in await self._fetch("reading feedback", sql, wanted):
            out[int(user_id)].append(Feedback.from_row(key, rating, at, sub))
        return out

    async def reset_feedback(self, user_id: int) -> int:
        async with self._tx(f"resetting feedback of user {user_id}") as conn:
            status = await conn.execute("DELETE FROM feedback WHERE user_id = $1", user_id)
            return int(status.rsplit(" ", 1)[-1])


async def _put_vectors(
    conn: asyncpg.Connection, version: int, vectors: Mapping[str, bytes]
) -> None:
    if vectors:
        await conn.execute(_PUT_VECTORS, list(vectors), list(vectors.values()), version)
