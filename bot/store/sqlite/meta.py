"""Key/value facts paperbell keeps about itself: the SQLite ``Store`` methods.

A mixin of ``SqliteStore`` (see ``sqlite_accounts`` for how it reaches the connections).
Values are short strings the caller owns, such as the hash of the Discord command set.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.store.sqlite._codec import Row

_UPSERT = """
INSERT INTO meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""


class MetaMixin:
    """``get_meta``/``set_meta``; mixed into ``SqliteStore``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    async def get_meta(self, key: str) -> str | None:
        rows = await self._read(
            f"reading meta {key!r}", "SELECT value FROM meta WHERE key = ?", key
        )
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._write(f"writing meta {key!r}") as db:
            await db.execute(_UPSERT, (key, value))
