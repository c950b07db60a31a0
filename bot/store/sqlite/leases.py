"""Named leases between processes: the SQLite ``Store`` methods.

A mixin of ``SqliteStore``. One writer connection serializes every acquire, so the
conditional upsert below cannot hand one lease to two holders.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.store.records import Lease, check_lease
from bot.store.sqlite._codec import Row, iso

# Taken when free, expired or already ours (a renewal); otherwise left alone.
_ACQUIRE = """
INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
"""


class LeasesMixin:
    """``acquire_lease``/``release_lease``/``get_lease``; mixed into ``SqliteStore``."""

    if TYPE_CHECKING:

        def _write(self, what: str) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _read(self, what: str, sql: str, *params: Any) -> list[Row]: ...

    async def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        check_lease(name, holder, ttl)
        now = datetime.now(UTC)
        async with self._write(f"taking lease {name!r}") as db:
            await db.execute(_ACQUIRE, (name, holder, iso(now + ttl), iso(now)))
            async with db.execute("SELECT holder FROM leases WHERE name = ?", (name,)) as cur:
                row = await cur.fetchone()
        return row is not None and row[0] == holder

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._write(f"releasing lease {name!r}") as db:
            await db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def get_lease(self, name: str) -> Lease | None:
        sql = "SELECT holder, expires_at FROM leases WHERE name = ? AND expires_at > ?"
        rows = await self._read(f"reading lease {name!r}", sql, name, iso(datetime.now(UTC)))
        if not rows:
            return None
        return Lease(name, str(rows[0][0]), datetime.fromisoformat(str(rows[0][1])))
