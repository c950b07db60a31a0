"""The PostgreSQL store's base: a connection pool, transactions, errors, opening and closing.

Every role's mixin (``papers``, ``matches``, …) derives from ``PgBase`` and reaches the
database in one of two ways:

* ``async with self._tx("what") as conn:`` — a pooled connection inside one transaction,
  committed if the body succeeds and rolled back if anything raises;
* ``async with self._conn("what") as conn:`` — a pooled connection without a transaction,
  for reads that need only one statement's snapshot.

Either turns a database or data error into one ``StoreError`` saying what we were doing.
Datetimes go in and come out as aware UTC datetimes (``timestamptz``); jsonb columns take
and give Python values.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Self
from urllib.parse import urlsplit

import asyncpg

from bot.errors import ConfigError, StoreError
from bot.store.postgres._migrate import check_schema, load_migrations, migrate

# Connections per process: the dispatcher's concurrent sends and the match step's chunks
# each hold one for a short transaction.
POOL_MIN = 1
POOL_MAX = 10
CONNECT_TIMEOUT = 10.0


def describe_url(url: str) -> str:
    """``postgresql://host:port/db`` — what errors and ``status`` may show: never the user's
    password, wherever in the URL it was given (userinfo or ``?password=``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the PostgreSQL database (its URL cannot be parsed)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=_to_json,
            decoder=json.loads,
            schema="pg_catalog",
        )


_to_json = json.JSONEncoder(ensure_ascii=False).encode


class PgBase:
    """What every mixin shares: the pool and the two ways in. Build the store with ``open``."""

    def __init__(self, pool: asyncpg.Pool, where: str) -> None:
        self._pool = pool
        self.where = where
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, read_only: bool = False) -> Self:
        """Connect to ``url`` and apply pending migrations (``read_only``: only check that
        none is pending, changing nothing)."""
        where = describe_url(url)
        pool = await _create_pool(url, where)
        try:
            with _pg_errors(f"opening {where}"):
                async with pool.acquire() as conn:
                    migrations = load_migrations()
                    if read_only:
                        await check_schema(conn, where, len(migrations))
                    else:
                        await migrate(conn, where, migrations)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, where)

    async def close(self) -> None:
        """Close the pool, after the transactions in progress; closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        with _pg_errors(f"closing {self.where}"):
            await self._pool.close()

    @asynccontextmanager
    async def _tx(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on a pooled connection: committed unless the body raises."""
        self._check_open()
        with _pg_errors(what):
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn

    @asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection outside any transaction (each statement its own)."""
        self._check_open()
        with _pg_errors(what):
            async with self._pool.acquire() as conn:
                yield conn

    async def _fetch(self, what: str, sql: str, *params: object) -> list[asyncpg.Record]:
        """One read statement's rows."""
        async with self._conn(what) as conn:
            return list(await conn.fetch(sql, *params))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store at {self.where} is closed")


async def _create_pool(url: str, where: str) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            init=_init_connection,
            timeout=CONNECT_TIMEOUT,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ConfigError(f"cannot connect to {where}: {_reason(exc, url)}") from exc
    except (ValueError, OverflowError) as exc:  # asyncpg's own URL parser, a bad port
        raise ConfigError(f"bad PostgreSQL URL ({where}): {_reason(exc, url)}") from exc
    if pool is None:  # pragma: no cover - only without a running loop
        raise StoreError(f"cannot connect to {where}")
    return pool


def _reason(exc: BaseException, url: str) -> str:
    """The error's text without any part of the URL's secrets."""
    text = str(exc) or type(exc).__name__
    try:
        secret = urlsplit(url).password
    except ValueError:
        secret = None
    return text.replace(secret, "***") if secret else text


@contextmanager
def _pg_errors(what: str) -> Iterator[None]:
    """Turn database and data errors into one StoreError saying what we were doing."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreError(f"{what} failed: {exc}") from exc
    except (ValueError, OverflowError) as exc:
        # A naive datetime or a paper that cannot be merged: bugs upstream, reported like a
        # database failure.
        raise StoreError(f"{what} failed: {exc}") from exc
