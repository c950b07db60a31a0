"""What is PostgreSQL's own in its store: migrations shared by processes, the tsquery built
from search text (never query syntax), NUL characters, and URLs without passwords."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.errors import (
    InvalidQueryError,
    NoDatabaseError,
    SchemaOutdatedError,
    SchemaTooNewError,
    StoreError,
)
from bot.models import Paper, SourceState, UpsertResult
from bot.store.postgres._base import describe_url
from bot.store.postgres._migrate import load_migrations
from bot.store.postgres.store import PostgresStore
from tests.support_papers import NOW, arxiv_paper, ingest, sightings
from tests.support_postgres import PostgresServer, empty_database

LATEST = len(load_migrations())
# tsquery's own syntax, quotes and escapes: each must read as plain words (or none).
TSQUERY_SYNTAX = ["a & b", "!sparse", "sparse:*", "sparse:A", "'", "\\", "<->", "a <2> b",
                  "(sparse", "sparse | dense", "''sparse''", "sparse\\", "e:*'x"]  # fmt: skip


async def _applied(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [int(r[0]) for r in rows]
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- migrations -------------------------------------------------------------------------------


async def test_processes_opening_a_new_database_together_migrate_it_once(
    postgres_server: PostgresServer,
) -> None:
    url = await empty_database(postgres_server)
    stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(4)))
    for store in stores:
        await store.close()
    assert await _applied(url) == list(range(1, LATEST + 1))
    again = await PostgresStore.open(url)  # nothing left to apply
    await again.close()
    assert await _applied(url) == list(range(1, LATEST + 1))


async def test_a_reader_never_migrates(postgres_server: PostgresServer) -> None:
    url = await empty_database(postgres_server)
    with pytest.raises(NoDatabaseError, match="no paperbell tables yet"):
        await PostgresStore.open(url, read_only=True)
    await (await PostgresStore.open(url)).close()  # migrated now
    await _execute(url, f"DELETE FROM schema_migrations WHERE version = {LATEST}")
    with pytest.raises(SchemaOutdatedError, match="paperbell migrate"):
        await PostgresStore.open(url, read_only=True)


async def test_a_schema_newer_than_this_paperbell_is_refused(postgres_url: str) -> None:
    await _execute(postgres_url, "INSERT INTO schema_migrations (version, name) VALUES (999, 'x')")
    for read_only in (False, True):
        with pytest.raises(SchemaTooNewError, match="upgrade paperbell"):
            await PostgresStore.open(postgres_url, read_only=read_only)


# --- search -----------------------------------------------------------------------------------


async def _corpus(store: PostgresStore) -> None:
    await ingest(
        store,
        sightings(
            arxiv_paper("1", title="Sparse attention", abstract="Attention is sparse."),
            arxiv_paper("2", title="Dense layers", abstract="In-context learning, densely."),
            arxiv_paper("3", title="Optics", abstract="Light.", authors=("Jürgen Müller",)),
        ),
    )


@pytest.mark.parametrize("text", TSQUERY_SYNTAX)
async def test_tsquery_syntax_in_search_text_is_plain_words(
    postgres_store: PostgresStore, text: str
) -> None:
    await _corpus(postgres_store)
    try:
        found = await postgres_store.search(text)
    except InvalidQueryError as exc:  # only punctuation: no word to search for
        assert "search needs at least one word" in str(exc)
        return
    assert isinstance(found, list)


async def test_search_words_keep_their_meaning(postgres_store: PostgresStore) -> None:
    await _corpus(postgres_store)
    assert [p.key for p in await postgres_store.search("sparse:*")] == ["1"]
    assert [p.key for p in await postgres_store.search("!sparse")] == ["1"]
    assert [p.key for p in await postgres_store.search("MÜLLER")] == ["3"]
    assert [p.key for p in await postgres_store.search("in-context")] == ["2"]
    assert await postgres_store.search("sparse\x00 dense") == []
    assert [p.key for p in await postgres_store.search("spa\x00rse")] == ["1"]


async def test_candidate_expressions_from_the_query_language(
    postgres_store: PostgresStore,
) -> None:
    await _corpus(postgres_store)

    async def keys(expression: str) -> list[str]:
        return [p.key for p in await postgres_store.search_candidates(expression, 10, 0)]

    assert await keys('"spars" *') == ["1"]
    assert sorted(await keys('("dens" * OR "optics")')) == ["2", "3"]
    assert await keys('("attention" AND "sparse")') == ["1"]
    assert await keys('"in-context learning"') == ["2"]
    assert await keys('"it\'\'s ""quoted\\""" *') == []  # quotes, a backslash: words
    assert len(await keys('"attention" OR "light" OR "layers"')) == 3
    assert await postgres_store.search_candidates('"light"', 10, 1) == []
    for broken in ['"open', "(", '"a" )', "NEAR(a b)"]:
        with pytest.raises(InvalidQueryError):
            await postgres_store.search_candidates(broken, 10, 0)


# --- NUL characters ---------------------------------------------------------------------------


async def test_nul_characters_are_dropped_once_and_for_all(
    postgres_store: PostgresStore,
) -> None:
    dirty = Paper(
        key="2603.00001",
        title="Nul\x00 title",
        abstract="a\x00b",
        authors=("A\x00da",),
        sources=("arxiv",),
        published=datetime(2026, 3, 1, tzinfo=UTC),
    )
    state = SourceState("s\x00rc", last_note="n\x00")
    result = await postgres_store.ingest(sightings(dirty), state, NOW)
    assert [p.title for p in result.new] == ["Nul title"]
    stored = await postgres_store.get_paper("2603.00001")
    assert stored is not None
    assert (stored.title, stored.abstract, stored.authors) == ("Nul title", "ab", ("Ada",))
    again = await postgres_store.ingest(sightings(dirty), state, NOW)
    assert again == UpsertResult(unchanged=1)
    await postgres_store.set_meta("k\x00", "v\x00")
    assert await postgres_store.get_meta("k") == "v"


# --- where, without secrets -------------------------------------------------------------------


def test_describe_url_never_shows_a_password() -> None:
    assert describe_url("postgresql://u:pw@db.example:5433/pb") == "postgresql://db.example:5433/pb"
    assert describe_url("postgresql://db/pb?password=pw") == "postgresql://db/pb"
    assert "pw" not in describe_url("postgresql://u:pw@[::1/pb")


async def test_a_closed_store_names_the_database_without_the_password(
    postgres_url: str,
) -> None:
    with_password = postgres_url.replace("paperbell@", "paperbell:hunter2@")
    store = await PostgresStore.open(with_password)
    await store.close()
    with pytest.raises(StoreError, match="closed") as caught:
        await store.get_paper("x")
    assert "hunter2" not in str(caught.value)
