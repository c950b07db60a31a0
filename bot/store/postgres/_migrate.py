"""Numbered migrations for PostgreSQL, applied once, by one process at a time.

Migrations are ``bot/store/postgres/migrations/NNNN_name.sql``, numbered from 0001 without
gaps. ``schema_migrations`` records each one applied. Opening a store applies the rest in one
transaction under a transaction-scoped advisory lock, so processes starting together on a
new database wait for one another instead of racing, and a failing migration changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from bot.errors import NoDatabaseError, SchemaOutdatedError, SchemaTooNewError, StoreError

MIGRATIONS_PACKAGE = "bot.store.postgres.migrations"
# Any fixed number: the advisory lock every paperbell process takes to migrate.
MIGRATION_LOCK = 0x70617065  # "pape"

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations(package: str = MIGRATIONS_PACKAGE) -> list[Migration]:
    """Every migration in ``package``, in order; raises StoreError on a gap or a duplicate."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match and entry.is_file():
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations in {package} must be numbered 1..N, found {numbers}")
    return found


async def migrate(conn: asyncpg.Connection, where: str, migrations: list[Migration]) -> int:
    """Apply pending migrations; return the schema version now in force."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_CREATE_TABLE)
        current = await schema_version(conn)
        if current > len(migrations):
            raise _too_new(where, current, len(migrations))
        for migration in migrations[current:]:
            try:
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise StoreError(f"migration {migration.name} failed: {exc}") from exc
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.number,
                migration.name,
            )
    return max(current, len(migrations))


async def schema_version(conn: asyncpg.Connection) -> int:
    """The number of the last migration applied; 0 for a database paperbell never opened."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def check_schema(conn: asyncpg.Connection, where: str, latest: int) -> None:
    """For readers that must not change the database: refuse a schema other than ``latest``."""
    current = await schema_version(conn)
    if current > latest:
        raise _too_new(where, current, latest)
    if current == 0:
        raise NoDatabaseError(
            f"no paperbell tables yet in {where} — run `paperbell run` or `paperbell ingest` first"
        )
    if current < latest:
        raise SchemaOutdatedError(
            f"{where} has schema version {current}, older than this paperbell's ({latest}): "
            "upgrade it with `paperbell migrate` (or start `paperbell run`)",
            current=current,
            latest=latest,
        )


def _too_new(where: str, current: int, latest: int) -> SchemaTooNewError:
    return SchemaTooNewError(
        f"{where} has schema version {current}, newer than this paperbell knows "
        f"({latest}); upgrade paperbell or use another database"
    )
