"""SqliteStore: what only SQLite shows about accounts, matches and the outbox.

The role contracts it passes with every other store are in tests/test_contract_*.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.delivery.planning import record_matches
from bot.errors import LimitError, StoreError
from bot.models import Owner
from bot.store.sqlite import claims
from bot.store.sqlite.accounts import _SUPPRESS_ORPHAN_ALERTS, SUPPRESS_PENDING_EMAIL
from bot.store.sqlite.schema import load_migrations
from bot.store.sqlite.selfservice import _COUNT_MANAGE_MAILS
from bot.store.sqlite.store import SqliteStore, open_sqlite_store
from tests.support_outbox import DISCORD, NOW, record


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    """These tests look under SQLite (its ids, indexes, messages): the SQLite store only."""
    return sqlite_store


async def test_ids_are_never_reused(store: SqliteStore) -> None:
    # Ids go into links that never expire: a deleted subscription's id must stay dead.
    user = await store.get_or_create_user(discord_id="1", now=NOW)
    first = await store.add_subscription(user.owner, "a", "a", DISCORD, NOW, limit=5)
    await store.remove_subscription(first.id, None, NOW)
    second = await store.add_subscription(user.owner, "b", "b", DISCORD, NOW, limit=5)
    assert second.id > first.id


async def test_limit_holds_across_two_processes_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    one, two = await open_sqlite_store(path), await open_sqlite_store(path)
    try:
        user = await one.get_or_create_user(discord_id="1", now=NOW)
        adds = [
            store.add_subscription(user.owner, f"q{n}", f"q{n}", DISCORD, NOW, limit=4)
            for n, store in enumerate([one, two] * 5)
        ]
        results = await asyncio.gather(*adds, return_exceptions=True)
        assert sum(isinstance(r, LimitError) for r in results) == 6
        assert len(await two.list_subscriptions(user.owner)) == 4
    finally:
        await one.close()
        await two.close()


def plan(sql: str, *params: object) -> str:
    db = sqlite3.connect(":memory:")
    try:
        for migration in load_migrations():
            db.executescript(migration.sql)
        return " ".join(str(step) for step in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    finally:
        db.close()


def test_due_rows_and_waiting_matches_use_their_indexes() -> None:
    due = plan("SELECT owner FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?", "x")
    assert "deliveries_due" in due
    waiting = plan(
        "SELECT owner, count(*) FROM matches "
        "WHERE digest_wanted = 1 AND digest_id IS NULL GROUP BY owner"
    )
    assert "matches_waiting_for_digest" in waiting


# What a claim (pending -> sending) and a "sent" change in each of an alert's some 80 rows,
# inside the write lock every other process waits for. The lease is the one exception:
# deliveries_leased finds rows whose process died, by lease_until, among 'sending' rows.
_CHANGED_BY_DELIVERY = {"state", "attempts", "updated_at", "sent_at", "last_error"}


def test_no_outbox_index_is_keyed_by_what_sending_changes() -> None:
    db = sqlite3.connect(":memory:")
    try:
        for migration in load_migrations():
            db.executescript(migration.sql)
        indexes = [row[1] for row in db.execute("PRAGMA index_list(deliveries)")]
        keyed = {
            name: columns
            for name in indexes
            if (columns := {row[2] for row in db.execute(f"PRAGMA index_info({name})")})
            & _CHANGED_BY_DELIVERY
        }
    finally:
        db.close()
    assert "deliveries_pending_by_owner" in indexes
    assert keyed == {}


def test_owner_queries_of_the_outbox_use_their_indexes() -> None:
    groups = [("user:1", "email", "alert"), ("user:2", "email", "alert")]
    claim, params = claims._claim(groups, "now", "until")
    assert "deliveries_by_owner (owner=?)" in plan(claim, *params)
    suppress = plan(SUPPRESS_PENDING_EMAIL, "why", "now", "user:1")
    assert "deliveries_pending_by_owner (owner=?)" in suppress
    assert "deliveries_confirm_by_owner (owner=? AND created_at>?)" in plan(
        _COUNT_MANAGE_MAILS, "user:1", "then"
    )
    confirm = f"{claims._ORDERS[0]} ORDER BY at, id"
    assert "deliveries_confirm_due (next_attempt_at<?)" in plan(confirm, "now")
    orphans = plan(_SUPPRESS_ORPHAN_ALERTS, "why", "now", "user:1", "user:1")
    assert "SCAN deliveries" not in orphans and "deliveries_by_paper" in orphans


async def test_a_match_needs_a_stored_paper(store: SqliteStore) -> None:
    sub = await store.add_subscription(Owner.channel("9"), "a", "a", DISCORD, NOW, limit=5)
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        await record_matches(store, [record(Owner.channel("9"), "nope", sub.id)], NOW)
    assert await store.list_deliveries() == []
