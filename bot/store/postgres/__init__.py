"""The PostgreSQL implementation of the store protocols (asyncpg, one pool per process).

Several processes may share one database. Imports the store protocols and the foundation
only.
"""

from bot.store.postgres.store import PostgresStore, open_postgres_store

__all__ = ["PostgresStore", "open_postgres_store"]
