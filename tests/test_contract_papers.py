"""What every store must do with papers, their sources' state, search and the match queue.

The ``PaperStore`` role, written against the protocol only; runs over every implementation
(the ``store`` fixture in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.errors import InvalidQueryError, StoreError, UserError
from bot.models import AnnounceType, HttpCacheEntry, Links, Paper, SourceState, UpsertResult
from bot.store.protocols import Store
from tests.support_outbox import add_papers
from tests.support_papers import LATER, NOW, arxiv_paper, feed_paper, hf_paper, ingest, sightings

HOSTILE_WITH_WORDS = ["NEAR(", "a OR", "attention*", "title:attention", '"attention', "-sparse"]
HOSTILE_WITHOUT_WORDS = ['"', "*", "-", ":", "(", ")", "^", "   ", ""]


class TestPapersContract:
    """``PaperStore``: ingest, sources' state, reading and search."""

    # --- ingest and outcomes ----------------------------------------------------------------

    async def test_new_paper_is_stored_with_first_seen(self, store: Store) -> None:
        result = await ingest(store, sightings(arxiv_paper("2603.00001")))
        assert [p.key for p in result.new] == ["2603.00001"]
        assert (result.updated, result.unchanged, result.skipped) == ((), 0, 0)
        stored = await store.get_paper("2603.00001")
        assert stored == replace(arxiv_paper("2603.00001"), first_seen=NOW)

    async def test_round_trip_keeps_every_field(self, store: Store) -> None:
        full = Paper(
            key="hep-th/9901001",
            title="Strings with Σ and $J_1$",
            abstract="Line one.\nLine two & <three>.",
            version=7,
            authors=("Götz Ü", "Przemysław Ł", 'O\'Brien "Bob"'),
            categories=("hep-th", "math.GT"),
            published=datetime(1999, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
            updated=datetime(2001, 5, 6, 7, 8, 9, tzinfo=UTC),
            links=Links(abs="https://a/1", pdf="https://a/1.pdf", hf="https://h/1", code="c"),
            upvotes=0,
            comments=0,
            github_stars=123456,
            sources=("arxiv", "hf", "blog"),
        )
        await ingest(store, sightings(full))
        assert await store.get_paper(full.key) == replace(full, first_seen=NOW)

    async def test_same_sightings_again_change_nothing(self, store: Store) -> None:
        batch = sightings(arxiv_paper("2603.00001"), hf_paper("2603.00001"), hf_paper("2603.2"))
        await ingest(store, batch)
        before = await store.list_papers()
        result = await ingest(store, batch, now=LATER)
        assert result == UpsertResult(unchanged=2)
        assert await store.list_papers() == before

    async def test_same_paper_from_three_sources_is_one_merged_record(self, store: Store) -> None:
        key = "2603.00042"
        await ingest(store, sightings(hf_paper(key)), source="hf")
        result = await ingest(store, sightings(arxiv_paper(key)), source="rss", now=LATER)
        assert [p.key for p in result.updated] == [key]
        await ingest(store, sightings(feed_paper(key, categories=("ml",))), source="blog")
        paper = await store.get_paper(key)
        assert paper is not None
        assert paper.sources == ("hf", "arxiv", "ml-blog")
        assert paper.abstract == f"Abstract of {key}."  # arXiv's text wins
        assert (paper.version, paper.upvotes, paper.comments) == (1, 4, 2)
        assert paper.categories == ("cs.LG", "ml")
        assert paper.links.abs == f"https://arxiv.org/abs/{key}"
        assert paper.links.hf == f"https://huggingface.co/papers/{key}"
        assert paper.published == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # earliest
        assert paper.first_seen == NOW
        assert len(await store.list_papers()) == 1

    async def test_replacement_of_known_paper_bumps_version_not_new(self, store: Store) -> None:
        await ingest(store, sightings(arxiv_paper("2603.00001")))
        v2 = arxiv_paper("2603.00001", version=2, title="Revised")
        result = await ingest(store, sightings(v2, announce=AnnounceType.REPLACE), now=LATER)
        assert result.new == ()
        assert [(p.version, p.title) for p in result.updated] == [(2, "Revised")]
        stored = await store.get_paper("2603.00001")
        assert stored is not None
        assert (stored.version, stored.title, stored.first_seen) == (2, "Revised", NOW)

    async def test_replacement_of_unknown_paper_is_stored_and_skipped(self, store: Store) -> None:
        v3 = arxiv_paper("2512.00009", version=3)
        result = await ingest(store, sightings(v3, announce=AnnounceType.REPLACE_CROSS))
        assert (result.new, result.updated, result.skipped) == ((), (), 1)
        assert await store.get_paper("2512.00009") == replace(v3, first_seen=NOW)

    async def test_upvote_change_is_an_update(self, store: Store) -> None:
        await ingest(store, sightings(hf_paper("2603.00001", upvotes=1)))
        result = await ingest(store, sightings(hf_paper("2603.00001", upvotes=9)), now=LATER)
        assert [p.upvotes for p in result.updated] == [9]
        stored = await store.get_paper("2603.00001")
        assert stored is not None
        assert stored.upvotes == 9

    async def test_batch_listing_a_paper_twice_counts_it_once(self, store: Store) -> None:
        batch = sightings(arxiv_paper("2603.00001"), arxiv_paper("2603.00001"))
        result = await ingest(store, batch)
        assert (len(result.new), result.unchanged) == (1, 0)

    async def test_empty_batch_still_saves_state(self, store: Store) -> None:
        state = SourceState("rss", last_note="no announcement today")
        assert await store.ingest([], state, NOW) == UpsertResult()
        saved = await store.get_source_state("rss")
        assert saved is not None
        assert (saved.last_note, saved.last_success) == ("no announcement today", NOW)

    async def test_failed_batch_stores_nothing(self, store: Store) -> None:
        cache = {"https://x/": HttpCacheEntry(etag='"v1"')}
        await store.ingest(sightings(arxiv_paper("2603.00001")), SourceState("s", cache), NOW)
        bad = arxiv_paper("2603.00003", upvotes=-1)  # no store accepts a negative count
        batch = sightings(arxiv_paper("2603.00002"), hf_paper("2603.00001", upvotes=5), bad)
        with pytest.raises(StoreError, match="storing papers from source 's'"):
            await store.ingest(batch, SourceState("s", {"https://x/": HttpCacheEntry()}), LATER)
        assert [p.key for p in await store.list_papers()] == ["2603.00001"]
        unchanged = await store.get_paper("2603.00001")
        assert unchanged is not None
        assert unchanged.upvotes is None
        state = await store.get_source_state("s")
        assert state is not None
        assert (state.http_cache, state.last_success) == (cache, NOW)

    async def test_naive_datetime_is_refused_as_store_error(self, store: Store) -> None:
        naive = arxiv_paper("2603.00001", published=datetime(2026, 1, 1))
        with pytest.raises(StoreError, match="naive datetime"):
            await ingest(store, sightings(naive))
        assert await store.get_paper("2603.00001") is None

    async def test_concurrent_ingests_both_succeed(self, store: Store) -> None:
        first = sightings(*(arxiv_paper(f"2603.{i:05d}") for i in range(200)))
        second = sightings(*(hf_paper(f"2603.{i:05d}") for i in range(100, 300)))
        a, b = await asyncio.gather(
            ingest(store, first, source="rss"), ingest(store, second, source="hf")
        )
        assert len(a.new) + len(b.new) == 300
        assert len(a.updated) + len(b.updated) == 100
        assert len(await store.list_papers()) == 300
        assert len(await store.list_source_states()) == 2

    # --- source state -----------------------------------------------------------------------

    async def test_state_round_trip_and_error_cleared_by_success(self, store: Store) -> None:
        await store.record_source_error("hf", "HTTP 503", NOW)
        cache = {
            "https://a/": HttpCacheEntry(etag='W/"1"', last_modified="Mon, 02 Mar 2026"),
            "https://b/": HttpCacheEntry(last_modified="Tue, 03 Mar 2026"),
        }
        state = SourceState("hf", http_cache=cache, last_success=LATER, last_note="not modified")
        await store.ingest([], state, LATER)
        assert await store.get_source_state("hf") == state

    async def test_record_error_keeps_cache_and_last_success(self, store: Store) -> None:
        cache = {"https://a/": HttpCacheEntry(etag="e")}
        await store.ingest([], SourceState("rss", cache, last_note="n"), NOW)
        await store.record_source_error("rss", "timed out", LATER)
        state = await store.get_source_state("rss")
        assert state == SourceState(
            "rss",
            cache,
            last_success=NOW,
            last_error="timed out",
            last_error_at=LATER,
            last_note="n",
        )

    async def test_record_error_for_unknown_source_creates_state(self, store: Store) -> None:
        await store.record_source_error("new", "HTTP 400", NOW)
        assert await store.get_source_state("new") == SourceState(
            "new", last_error="HTTP 400", last_error_at=NOW
        )
        assert await store.get_source_state("other") is None

    async def test_list_source_states_sorted_by_id(self, store: Store) -> None:
        for source in ("b", "a", "c"):
            await store.record_source_error(source, "x", NOW)
        assert [s.source_id for s in await store.list_source_states()] == ["a", "b", "c"]

    # --- reading ----------------------------------------------------------------------------

    async def test_unknown_paper_is_none(self, store: Store) -> None:
        assert await store.get_paper("0000.00000") is None

    async def test_list_papers_newest_first_since_and_limit(self, store: Store) -> None:
        dated = [
            arxiv_paper("2603.00001", published=datetime(2026, 3, 1, tzinfo=UTC)),
            arxiv_paper("2603.00002", published=datetime(2026, 3, 3, tzinfo=UTC)),
            feed_paper("feed:abc", published=None),  # undated: its first_seen counts
            arxiv_paper("2602.00001", published=datetime(2026, 2, 1, tzinfo=UTC)),
        ]
        await ingest(store, sightings(*dated), now=datetime(2026, 3, 2, tzinfo=UTC))
        keys = [p.key for p in await store.list_papers()]
        assert keys == ["2603.00002", "feed:abc", "2603.00001", "2602.00001"]
        since = datetime(2026, 3, 1, tzinfo=UTC)
        assert [p.key for p in await store.list_papers(since=since)] == keys[:3]
        assert [p.key for p in await store.list_papers(since=since, limit=2)] == keys[:2]
        # Counted alike, the undated paper by its first_seen; the bound is inclusive.
        assert await store.count_papers_since(since) == 3
        assert await store.count_papers_since(datetime(2026, 3, 2, tzinfo=UTC)) == 2
        assert await store.count_papers_since(datetime(2026, 3, 4, tzinfo=UTC)) == 0

    async def test_list_papers_bad_limit_is_user_error(self, store: Store) -> None:
        with pytest.raises(UserError, match="limit must be at least 1"):
            await store.list_papers(limit=0)

    # --- search -----------------------------------------------------------------------------

    async def _search_corpus(self, store: Store) -> None:
        await ingest(
            store,
            sightings(
                arxiv_paper("1", title="Diffusion models for proteins", abstract="We fold."),
                arxiv_paper("2", title="Graphs", abstract="A diffusion process on graphs."),
                arxiv_paper("3", title="Optics", abstract="Light.", authors=("Jürgen Müller",)),
                arxiv_paper("4", title="Sparse attention", abstract="Attention is sparse."),
            ),
        )

    async def test_search_by_title_abstract_and_author(self, store: Store) -> None:
        await self._search_corpus(store)
        assert [p.key for p in await store.search("proteins")] == ["1"]
        assert [p.key for p in await store.search("process")] == ["2"]
        assert [p.key for p in await store.search("muller")] == ["3"]  # diacritics folded
        assert [p.key for p in await store.search("Jürgen")] == ["3"]

    async def test_search_ranks_title_hits_first(self, store: Store) -> None:
        await self._search_corpus(store)
        assert [p.key for p in await store.search("diffusion")] == ["1", "2"]

    async def test_search_needs_every_word_and_respects_limit(self, store: Store) -> None:
        await self._search_corpus(store)
        assert [p.key for p in await store.search("diffusion graphs")] == ["2"]
        assert [p.key for p in await store.search("diffusion", limit=1)] == ["1"]
        assert await store.search("diffusion optics") == []

    async def test_search_hostile_text_is_plain_words(self, store: Store) -> None:
        await self._search_corpus(store)
        for text in HOSTILE_WITH_WORDS:
            assert isinstance(await store.search(text), list), text
        assert [p.key for p in await store.search("attention*")] == ["4"]
        assert [p.key for p in await store.search('"sparse')] == ["4"]
        assert [p.key for p in await store.search("-sparse")] == ["4"]

    @pytest.mark.parametrize("text", HOSTILE_WITHOUT_WORDS)
    async def test_search_without_words_is_user_error(self, store: Store, text: str) -> None:
        with pytest.raises(InvalidQueryError, match="search needs at least one word"):
            await store.search(text)

    async def test_search_bad_limit_is_user_error(self, store: Store) -> None:
        with pytest.raises(UserError, match="limit must be at least 1"):
            await store.search("x", limit=0)

    # --- reading many ---------------------------------------------------------------------

    @pytest.mark.parametrize("count", [1, 600])
    async def test_get_papers_in_chunks(self, store: Store, count: int) -> None:
        keys = [f"p{i}" for i in range(count)]
        await add_papers(store, *keys)
        found = await store.get_papers([*keys, "missing"])
        assert sorted(found) == sorted(keys)
