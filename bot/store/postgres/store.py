"""The PostgreSQL ``Store``: every role's mixin over one connection pool.

Several paperbell processes, on several machines, may share one database: every write is
one transaction, and the work processes must not do twice (ingests, outbox claims) is
serialised or claimed in the database itself, never in one process's memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.store.postgres._base import PgBase
from bot.store.postgres.accounts import AccountsMixin
from bot.store.postgres.claims import ClaimsMixin
from bot.store.postgres.follows import FollowsMixin
from bot.store.postgres.leases import LeasesMixin
from bot.store.postgres.matches import MatchesMixin
from bot.store.postgres.meta import MetaMixin
from bot.store.postgres.outbox import OutboxMixin
from bot.store.postgres.papers import PapersMixin
from bot.store.postgres.relevance import RelevanceMixin
from bot.store.postgres.selfservice import SelfServiceMixin


class PostgresStore(
    PapersMixin,
    MatchesMixin,
    MetaMixin,
    LeasesMixin,
    RelevanceMixin,
    AccountsMixin,
    SelfServiceMixin,
    ClaimsMixin,
    OutboxMixin,
    FollowsMixin,
    PgBase,
):
    """``Store`` over PostgreSQL. Build it with ``open_postgres_store``."""


async def open_postgres_store(url: str) -> PostgresStore:
    """Connect to the database at ``url`` and apply pending migrations."""
    return await PostgresStore.open(url)


@asynccontextmanager
async def reading_postgres_store(url: str) -> AsyncIterator[PostgresStore]:
    """The store for one block of reads, migrating nothing (``SchemaOutdatedError`` when the
    database needs a migration), closed after it."""
    store = await PostgresStore.open(url, read_only=True)
    try:
        yield store
    finally:
        await store.close()
