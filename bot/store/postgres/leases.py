"""Named leases between processes: ``MetaStore``'s leases on PostgreSQL.

The database's clock (``clock_timestamp()``) decides expiry, so processes on several
machines agree on who holds a lease even when their own clocks drift. The conditional
upsert runs under the row's lock: two processes racing for a free lease cannot both win.
"""

from __future__ import annotations

from datetime import timedelta

from bot.store.postgres import _codec as codec
from bot.store.postgres._base import PgBase
from bot.store.records import Lease, check_lease

_ACQUIRE = """
INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, clock_timestamp() + $3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()
RETURNING holder
"""


class LeasesMixin(PgBase):
    """``acquire_lease``/``release_lease``/``get_lease``."""

    async def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        check_lease(name, holder, ttl)
        async with self._tx(f"taking lease {name!r}") as conn:
            got = await conn.fetchval(_ACQUIRE, codec.text(name), codec.text(holder), ttl)
        return got is not None

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._tx(f"releasing lease {name!r}") as conn:
            await conn.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)

    async def get_lease(self, name: str) -> Lease | None:
        sql = (
            "SELECT holder, expires_at FROM leases"
            " WHERE name = $1 AND expires_at > clock_timestamp()"
        )
        rows = await self._fetch(f"reading lease {name!r}", sql, codec.text(name))
        if not rows:
            return None
        return Lease(name, str(rows[0][0]), codec.utc(rows[0][1]))
