"""Opening the store the settings name: PostgreSQL when ``PAPERBELL_DATABASE_URL`` is set,
otherwise the SQLite file in the data directory (the embedded default).

A URL that names no database paperbell can reach becomes one ``ConfigError`` line (exit 78)
saying which host and database, never the password.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.settings import Settings
from bot.store.postgres._base import describe_url
from bot.store.postgres.store import PostgresStore, open_postgres_store
from bot.store.protocols import Store
from bot.store.sqlite.store import open_sqlite_reader, open_sqlite_store


async def open_store(settings: Settings) -> Store:
    """The store for reading and writing, migrated (created on first use for SQLite)."""
    if settings.database_url is not None:
        return await open_postgres_store(settings.database_url.get_secret_value())
    return await open_sqlite_store(settings.database_path)


async def open_reader(settings: Settings) -> Store:
    """The store for commands that only read: nothing created, nothing migrated."""
    if settings.database_url is not None:
        return await PostgresStore.open(settings.database_url.get_secret_value(), read_only=True)
    return await open_sqlite_reader(settings.database_path)


@asynccontextmanager
async def reading_store(settings: Settings) -> AsyncIterator[Store]:
    """``open_reader`` for one block, closed after it."""
    store = await open_reader(settings)
    try:
        yield store
    finally:
        await store.close()


def store_name(settings: Settings) -> str:
    """Where the store is, for messages: the file, or the database without its password."""
    if settings.database_url is not None:
        return describe_url(settings.database_url.get_secret_value())
    return str(settings.database_path)
