"""Key/value facts paperbell keeps about itself: ``MetaStore`` on PostgreSQL."""

from __future__ import annotations

from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase

_UPSERT = """
INSERT INTO meta (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""


class MetaMixin(PgBase):
    """``get_meta``/``set_meta`` (``close`` is ``PgBase``'s)."""

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetch(
            f"reading meta {key!r}", "SELECT value FROM meta WHERE key = $1", codec.text(key)
        )
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._tx(f"writing meta {key!r}") as conn:
            await conn.execute(_UPSERT, codec.text(key), codec.text(value))
