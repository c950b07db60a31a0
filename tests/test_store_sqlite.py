"""SqliteStore: what only SQLite has (migrations, WAL, FTS5).

The role contracts it passes with every other store are in tests/test_contract_*.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.delivery.planning import record_matches
from bot.errors import InvalidQueryError, StoreError
from bot.models import HttpCacheEntry, SourceState
from bot.store.protocols import DeliveryState
from bot.store.sqlite._codec import CHUNK, Row, fts_query
from bot.store.sqlite.schema import (
    GIL_SWITCH_SECONDS,
    connect,
    load_migrations,
    migrate,
    split_statements,
)
from bot.store.sqlite.store import SqliteStore, open_sqlite_store
from tests.support_outbox import INSTANT, add_papers, record, verified_user
from tests.support_outbox import NOW as OUTBOX_NOW
from tests.support_papers import LATER, NOW, arxiv_paper, hf_paper, ingest, sightings


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    """These tests look under SQLite (its file, connections, messages): the SQLite store only."""
    return sqlite_store


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to look under the store, as an operator's sqlite3 shell would."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def is_file(path: Path) -> bool:
    return path.is_file()


def scalar(path: Path, sql: str, *params: object) -> object:
    with raw(path) as db:
        return db.execute(sql, params).fetchone()[0]


# --- opening and migrations -------------------------------------------------------------------


async def test_open_creates_directory_file_and_schema(db_path: Path) -> None:
    store = await open_sqlite_store(db_path)
    await store.close()
    assert is_file(db_path)
    assert scalar(db_path, "PRAGMA user_version") == len(load_migrations())
    assert scalar(db_path, "PRAGMA journal_mode") == "wal"
    with raw(db_path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_schema")}
    assert {"papers", "papers_fts", "sources_state", "papers_fts_source"} <= tables


async def test_reopening_is_idempotent_and_keeps_data(db_path: Path) -> None:
    for _ in range(3):
        store = await open_sqlite_store(db_path)
        await ingest(store, sightings(arxiv_paper("2603.00001")))
        await store.close()
    store = await open_sqlite_store(db_path)
    try:
        assert len(await store.list_papers()) == 1
    finally:
        await store.close()
    assert scalar(db_path, "PRAGMA user_version") == len(load_migrations())


async def test_newer_schema_is_refused_clearly(db_path: Path) -> None:
    await (await open_sqlite_store(db_path)).close()
    with raw(db_path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer than this paperbell knows"):
        await open_sqlite_store(db_path)
    assert scalar(db_path, "PRAGMA user_version") == 99


async def test_connection_pragmas(store: SqliteStore) -> None:
    for db in (store._writer, store._reader):
        pragmas = [
            next(iter(await db.execute_fetchall(f"PRAGMA {name}")))[0]
            for name in ("foreign_keys", "busy_timeout", "synchronous", "journal_mode")
        ]
        assert pragmas == [1, 5000, 1, "wal"]  # synchronous 1 = NORMAL


async def test_opening_a_store_lowers_the_switch_interval_and_never_raises_it(
    tmp_path: Path,
) -> None:
    """The connections' threads take the GIL back after every row; at Python's default
    5 ms interval each take-back waits that long whenever the event loop is busy."""
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        store = await open_sqlite_store(tmp_path / "one.db")
        await store.close()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
        sys.setswitchinterval(0.0001)  # the embedding program wants it lower still: kept
        store = await open_sqlite_store(tmp_path / "two.db")
        await store.close()
        assert sys.getswitchinterval() == pytest.approx(0.0001)
    finally:
        sys.setswitchinterval(before)


@pytest.fixture
def garbage_db(db_path: Path) -> Path:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    return db_path


async def test_not_a_database_is_store_error(garbage_db: Path) -> None:
    with pytest.raises(StoreError, match=r"opening .*paperbell\.db failed"):
        await open_sqlite_store(garbage_db)


async def test_unusable_directory_is_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the database directory"):
        await open_sqlite_store(tmp_path / "file" / "paperbell.db")


def write_migrations(root: Path, files: dict[str, str]) -> str:
    # A name of its own per test: imported packages stay in sys.modules.
    package = root / f"migrations_{root.name}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, sql in files.items():
        (package / name).write_text(sql)
    return package.name


def test_migration_numbering_gap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = write_migrations(tmp_path, {"0001_a.sql": "", "0003_c.sql": "", "notes.txt": ""})
    with pytest.raises(StoreError, match=r"numbered 1..N, found \[1, 3\]"):
        load_migrations(package)


async def test_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    files = {"0001_ok.sql": "CREATE TABLE t (x);", "0002_broken.sql": "CREATE TABLE (;"}
    migrations = load_migrations(write_migrations(tmp_path, files))
    path = tmp_path / "m.db"
    db = await connect(path)
    try:
        with pytest.raises(StoreError, match=r"migration 0002_broken\.sql failed"):
            await migrate(db, path, migrations)
        assert await migrate(db, path, migrations[:1]) == 1
        assert await migrate(db, path, migrations[:1]) == 1
    finally:
        await db.close()
    assert scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name = 't'") == 1


def test_split_statements_respects_strings_comments_and_triggers() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET x = 'c;d';
        SELECT 1;
    END;
    /* block; comment */ SELECT 2;
    -- trailing comment
    """
    parts = split_statements(script)
    assert len(parts) == 3
    assert parts[0].endswith("DEFAULT 'a;b');")
    assert parts[1].startswith("CREATE TRIGGER")
    assert parts[1].endswith("END;")
    with pytest.raises(StoreError, match="ends inside a statement"):
        split_statements("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;")


# --- storage format and indexes ---------------------------------------------------------------


async def test_datetimes_are_sortable_utc_text(store: SqliteStore, db_path: Path) -> None:
    await ingest(store, sightings(arxiv_paper("2603.00001")))
    with raw(db_path) as db:
        row = db.execute("SELECT published, first_seen, authors FROM papers").fetchone()
    first_seen = NOW.isoformat(timespec="microseconds")
    assert row == ("2026-03-01T05:00:00.000000+00:00", first_seen, '["Ada Lovelace"]')


def test_list_papers_uses_the_date_index(tmp_path: Path) -> None:
    with raw(tmp_path / "plan.db") as db:
        for migration in load_migrations():
            db.executescript(migration.sql)
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT key FROM papers WHERE sort_date >= ? "
            "ORDER BY sort_date DESC, key DESC LIMIT 5",
            ("2026",),
        ).fetchall()
    assert "papers_by_sort_date" in " ".join(str(step) for step in plan)


def fts_instances(db: sqlite3.Connection) -> tuple[list[tuple[object, ...]], ...]:
    """Every (term, row, column, offset) in papers_fts, and in an index rebuilt from papers."""
    db.executescript(
        """
        DROP TABLE IF EXISTS temp.fresh;
        CREATE VIRTUAL TABLE temp.fresh USING fts5 (title, abstract, authors,
            tokenize = 'unicode61 remove_diacritics 2');
        INSERT INTO temp.fresh (rowid, title, abstract, authors)
            SELECT id, title, abstract, authors FROM papers_fts_source;
        CREATE VIRTUAL TABLE IF NOT EXISTS temp.live_vocab
            USING fts5vocab(main, papers_fts, instance);
        CREATE VIRTUAL TABLE IF NOT EXISTS temp.fresh_vocab
            USING fts5vocab(temp, fresh, instance);
        """
    )
    query = "SELECT term, doc, col, offset FROM temp.{} ORDER BY 1, 2, 3, 4"
    live = db.execute(query.format("live_vocab")).fetchall()
    return live, db.execute(query.format("fresh_vocab")).fetchall()


async def test_fts_stays_in_step_through_insert_update_delete(
    store: SqliteStore, db_path: Path
) -> None:
    await ingest(store, sightings(arxiv_paper("1", title="Old title", authors=("Ann Old",))))
    await ingest(store, sightings(arxiv_paper("2", title="Keep me")))
    revised = arxiv_paper("1", version=2, title="New heading", authors=("Bo Neu", "Cy"))
    await ingest(store, sightings(revised), now=LATER)
    await ingest(store, sightings(hf_paper("2", upvotes=50)), now=LATER)  # no text change
    assert await store.search("old") == []
    assert [p.key for p in await store.search("heading neu")] == ["1"]
    with raw(db_path) as db:
        live, fresh = fts_instances(db)
        assert live == fresh
        assert live
        db.execute("DELETE FROM papers WHERE key = '1'")
        live, fresh = fts_instances(db)
        assert live == fresh
        assert live
    assert await store.search("heading") == []
    assert [p.key for p in await store.search("keep")] == ["2"]


# --- transactions and concurrency -------------------------------------------------------------


async def test_failure_after_papers_were_written_rolls_everything_back(
    store: SqliteStore,
) -> None:
    cache = {"https://x/": HttpCacheEntry(etag="1")}
    await store.ingest(sightings(arxiv_paper("2603.00001")), SourceState("s", cache), NOW)
    batch = sightings(arxiv_paper("2603.00002", title="Phantom"), hf_paper("2603.00001"))
    # The state is written last; an empty source id breaks its CHECK after the papers'
    # INSERT and UPDATE already ran inside the transaction.
    with pytest.raises(StoreError, match="CHECK constraint failed"):
        await store.ingest(batch, SourceState(""), LATER)
    assert [p.key for p in await store.list_papers()] == ["2603.00001"]
    assert await store.search("phantom") == []
    assert await store.get_source_state("") is None
    state = await store.get_source_state("s")
    assert state is not None
    assert state.http_cache == cache
    assert len((await ingest(store, batch, now=LATER)).new) == 1  # the store still works


async def test_two_stores_on_one_file_do_not_hit_database_locked(db_path: Path) -> None:
    one, two = await open_sqlite_store(db_path), await open_sqlite_store(db_path)
    try:
        batches = [
            ingest(s, sightings(*(arxiv_paper(f"2603.{n}{i:04d}") for i in range(300))), f"{n}")
            for n, s in enumerate((one, two, one, two))
        ]
        results = await asyncio.gather(*batches)
        assert sum(len(r.new) for r in results) == 1200
        assert len(await two.list_papers()) == 1200
    finally:
        await one.close()
        await two.close()


async def test_reads_see_committed_data_while_a_write_is_open(store: SqliteStore) -> None:
    await ingest(store, sightings(arxiv_paper("2603.00001")))
    async with store._write("test") as db:
        await db.execute("DELETE FROM papers")
        assert await store.get_paper("2603.00001") is not None  # reader: last commit
    assert await store.get_paper("2603.00001") is None


async def test_big_batch_crosses_key_chunks(store: SqliteStore) -> None:
    papers = [arxiv_paper(f"2603.{i:05d}") for i in range(1234)]
    assert len((await ingest(store, sightings(*papers))).new) == 1234
    again = await ingest(store, sightings(*papers), now=LATER)
    assert (again.new, again.updated, again.unchanged) == ((), (), 1234)


async def test_sent_rows_take_one_statement_and_many_take_one_transaction(
    store: SqliteStore,
) -> None:
    """Writing "sent" after a message is one autocommit statement (one trip to the
    writer's thread); more ids than one statement takes stay in one transaction."""
    user = await verified_user(store, "many@example.org")
    await store.add_subscription(user.owner, "g", "graph", INSTANT, OUTBOX_NOW, limit=5)
    keys = [f"p{n}" for n in range(CHUNK + 3)]
    await add_papers(store, *keys)
    sub = (await store.list_subscriptions())[0]
    await record_matches(store, [record(user.owner, k, sub.id) for k in keys], OUTBOX_NOW)
    ids = [d.id for b in await store.claim_due(OUTBOX_NOW) for d in b.deliveries if d.paper_key]
    assert len(ids) == CHUNK + 3
    statements: list[str] = []
    await store._writer.set_trace_callback(statements.append)
    await store.settle(ids[:3], {}, OUTBOX_NOW)
    assert [s.split()[0] for s in statements] == ["UPDATE"]
    statements.clear()
    await store.settle(ids[2:], {}, OUTBOX_NOW + timedelta(hours=1))  # ids[2] was sent
    assert [s.split()[0] for s in statements] == ["BEGIN", "UPDATE", "UPDATE", "COMMIT"]
    sent = await store.list_deliveries(state=DeliveryState.SENT)
    assert sorted(d.id for d in sent) == sorted(ids)
    assert {d.sent_at for d in sent if d.id in ids[:3]} == {OUTBOX_NOW}  # written once


async def _two_readers_alerts(store: SqliteStore) -> list[int]:
    """Two readers with one pending alert each; their user ids, in claim order."""
    users = [await verified_user(store, f"r{n}@example.org") for n in (1, 2)]
    await add_papers(store, "p1")
    for user in users:
        await store.add_subscription(user.owner, "g", "graph", INSTANT, OUTBOX_NOW, limit=5)
    subs = {s.owner: s.id for s in await store.list_subscriptions()}
    records = [record(u.owner, "p1", subs[u.owner]) for u in users]
    await record_matches(store, records, OUTBOX_NOW)
    return [u.id for u in users]


async def test_a_claim_holds_the_write_lock_for_one_statement(store: SqliteStore) -> None:
    """Other processes wait for SQLite's write lock: a claim takes it for its one UPDATE
    (the due rows are found on the reader), never across a turn of the event loop."""
    await _two_readers_alerts(store)
    statements: list[str] = []
    await store._writer.set_trace_callback(statements.append)
    batches = await store.claim_due(OUTBOX_NOW)
    assert len([b for b in batches if b.kind == "alert"]) == 2
    assert [s.split()[0] for s in statements] == ["UPDATE"]


async def test_a_claim_whose_groups_another_process_took_looks_again(
    store: SqliteStore,
) -> None:
    """Between finding its groups and claiming them, another process took them all: the
    claim finds the next ones rather than saying nothing is due."""
    await _two_readers_alerts(store)
    claimed = await store.claim_due(OUTBOX_NOW)  # then only the alerts are left, due
    await store.settle(
        [d.id for b in claimed if b.kind != "alert" for d in b.deliveries], {}, OUTBOX_NOW
    )
    await store.release(
        [d.id for b in claimed if b.kind == "alert" for d in b.deliveries], OUTBOX_NOW
    )
    other = await open_sqlite_store(store.path)
    taken: list[list[int]] = []
    write = store._write_rows

    async def racing(what: str, sql: str, params: Sequence[object]) -> list[Row]:
        if not taken:  # the other process claims between our first look and our claim
            taken.append([d.id for b in await other.claim_due(OUTBOX_NOW, 1) for d in b.deliveries])
        return await write(what, sql, params)

    store._write_rows = racing  # type: ignore[method-assign]
    try:
        mine = await store.claim_due(OUTBOX_NOW, 1)
    finally:
        await other.close()
    assert len(mine) == 1 and len(taken[0]) == 1
    assert [d.id for d in mine[0].deliveries] != taken[0]  # the next reader's, not nothing
    assert await store.claim_due(OUTBOX_NOW) == []


# --- search query building --------------------------------------------------------------------


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('  sparse  "attention"  NEAR( a-b ') == (
        '"sparse" """attention""" "NEAR(" "a-b"'
    )
    with pytest.raises(InvalidQueryError, match="at most 32 words"):
        fts_query("w " * 33)


@pytest.fixture(scope="module")
def fts_db() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    for migration in load_migrations():
        db.executescript(migration.sql)
    db.execute(
        "INSERT INTO papers (key, title, abstract, authors, first_seen, updated_at) "
        "VALUES ('k', 'Attention AND more', 'x', '[\"Ann\"]', '2026', '2026')"
    )
    yield db
    db.close()


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab \"*:()-^+NEAROT{}.,'\\_ü"), max_size=30))
def test_any_text_is_a_valid_fts_query_or_a_user_error(
    fts_db: sqlite3.Connection, text: str
) -> None:
    try:
        query = fts_query(text)
    except InvalidQueryError:
        return
    fts_db.execute("SELECT rowid FROM papers_fts WHERE papers_fts MATCH ?", (query,)).fetchall()


# --- a cancelled write -------------------------------------------------------------------------


async def test_write_cancelled_while_waiting_to_begin_leaves_no_transaction(
    store: SqliteStore, db_path: Path
) -> None:
    """aiosqlite runs a cancelled BEGIN IMMEDIATE anyway, once the lock is free: the store
    must end that transaction, or every later write fails ("database is locked")."""
    with raw(db_path) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        write = asyncio.create_task(store.set_meta("k", "cancelled"))
        await asyncio.sleep(0.2)  # the store's BEGIN IMMEDIATE is waiting for the lock
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        other.execute("COMMIT")
    await store.set_meta("k", "written")  # the next write begins its own transaction
    assert await store.get_meta("k") == "written"
    assert not store._writer.in_transaction


async def test_write_cancelled_mid_transaction_rolls_back(store: SqliteStore) -> None:
    async def slow_write() -> None:
        async with store._write("a write cancelled half-way") as db:
            await db.execute("INSERT INTO meta (key, value) VALUES ('k', 'half')")
            await asyncio.sleep(10)

    write = asyncio.create_task(slow_write())
    await asyncio.sleep(0.1)
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    assert not store._writer.in_transaction
    assert await store.get_meta("k") is None
    await store.set_meta("k", "written")
    assert await store.get_meta("k") == "written"
