"""``paperbell migrate-store``: a SQLite database copied into a real PostgreSQL, every
table, counts checked, and a second run changing nothing."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from bot.delivery.planning import record_matches
from bot.messages import Channel
from bot.models import AnnounceType, DeliveryMode, SourceState
from bot.store.postgres import PostgresStore
from bot.store.protocols import Rating, Store
from bot.store.sqlite.store import open_sqlite_store
from bot.store.transfer import TABLES
from tests.support_outbox import NOW, record, verified_user
from tests.support_papers import LATER, arxiv_paper, sightings
from tests.support_relevance import by_title, store_corpus
from tests.test_cli import run_cli

INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
FOLLOWED = "2403.00001"


async def _follow(store: Store, owner_id: int) -> None:
    """A followed paper with its arXiv comment, and the change its second version makes."""
    first = arxiv_paper(FOLLOWED, arxiv_comment="9 pages")
    await store.ingest(sightings(first), SourceState("arxiv"), NOW)
    owner = (await store.get_user(owner_id)).owner  # type: ignore[union-attr]
    await store.follow(owner, FOLLOWED, Channel.EMAIL, NOW)
    second = arxiv_paper(FOLLOWED, version=2, arxiv_comment="12 pages", journal_ref="J. 1")
    found = sightings(second, announce=AnnounceType.REPLACE)
    await store.ingest(found, SourceState("arxiv"), LATER)


async def _seed(path: Path) -> None:
    """Something in every table: papers and vectors, people, matches, the outbox, ratings."""
    store = await open_sqlite_store(path)
    try:
        await store_corpus(store, NOW)
        keys = by_title("graph")[:2]
        for n in range(3):
            user = await verified_user(store, f"u{n}@example.org")
            sub = await store.add_subscription(user.owner, "g", "graph", INSTANT, NOW, limit=5)
            await record_matches(store, [record(user.owner, k, sub.id) for k in keys], NOW)
            await store.rate(user.id, {keys[0]: Rating.LIKE}, NOW, {keys[0]: sub.id})
        pending = await store.get_or_create_user(discord_id="later", now=NOW)
        await store.set_email(pending.id, "later@example.org", NOW)  # a confirmation
        await store.set_meta("commands", "hash-1")
        await _follow(store, user.id)
    finally:
        await store.close()


async def _same(sqlite_path: Path, url: str) -> None:
    source, target = await open_sqlite_store(sqlite_path), await PostgresStore.open(url)
    stores: tuple[Store, Store] = (source, target)
    try:
        for read in ("list_users", "list_subscriptions", "list_deliveries"):
            mine, theirs = [await getattr(s, read)() for s in stores]
            assert mine == theirs, read
        keys = by_title("graph")
        assert [await source.get_paper(k) for k in keys] == [
            await target.get_paper(k) for k in keys
        ]
        assert await target.get_meta("commands") == "hash-1"
        assert await source.get_paper(FOLLOWED) == await target.get_paper(FOLLOWED)
        log = await target.paper_change_log([FOLLOWED])
        assert log == await source.paper_change_log([FOLLOWED]) and log
        owners = [u.owner for u in await source.list_users()]
        follows = [await s.list_follows(o) for s in stores for o in owners]
        assert follows[: len(owners)] == follows[len(owners) :] and any(follows)
        newcomer = await target.get_or_create_user(discord_id="new", now=NOW)
        assert newcomer.id > max(u.id for u in await source.list_users())
    finally:
        await source.close()
        await target.close()


async def test_every_table_is_copied_and_a_second_run_changes_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    path = tmp_path / "paperbell.db"
    await _seed(path)
    with sqlite3.connect(path) as db:
        empty = [t for t in TABLES if not db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    assert empty == []  # the copy below is checked on every table
    for _ in range(2):
        result = run_cli("migrate-store", "--from", f"sqlite:{path}", "--to", postgres_url)
        assert result.returncode == 0, result.stderr
        for table in TABLES:
            assert re.search(
                rf"^{table}\s+sqlite\s+(\d+)\s+postgresql\s+\1\s+ok$", result.stdout, re.M
            )
        assert "every table's count matches" in result.stdout
        assert "Traceback" not in result.stderr
    await _same(path, postgres_url)


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    result = run_cli("migrate-store", "--from", str(tmp_path), "--to", "postgresql://x/y")
    assert result.returncode == 2
    assert "--from must be sqlite:PATH" in result.stderr
    result = run_cli("migrate-store", "--from", "sqlite:x.db", "--to", "mysql://u:pw@h/db")
    assert result.returncode == 2
    assert "--to must be a postgresql:// URL" in result.stderr
    assert "pw" not in result.stderr
