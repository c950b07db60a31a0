"""One ingest cycle over real HTTP: three sources, one record per paper, failures isolated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.models import SourceKind
from bot.settings import HttpSettings, SourceConfig
from bot.sources import build_source
from bot.sources.base import Source
from bot.sources.hf import HfDailySource
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.protocols import Store
from tests.support_http import Reply, ScriptedServer, fixture

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
SHARED = "2606.00101"  # in the arXiv RSS day and linked from the blog feed


def hf_body_with_shared_paper() -> bytes:
    """The 2026 HF layout, with its first paper swapped for the one arXiv announced."""
    items = json.loads(fixture("hf_2026.json"))
    items[0]["paper"]["id"] = SHARED
    items[0]["paper"]["upvotes"] = 42
    return json.dumps(items).encode()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with HttpClient(HttpSettings(timeout=2, retries=1, backoff=0.01)) as client:
        yield client


def sources(server: ScriptedServer, http: HttpClient) -> list[Source]:
    configs = [
        SourceConfig(kind=SourceKind.HF_DAILY, url=server.url("/hf"), days=1),
        SourceConfig(kind=SourceKind.ARXIV_RSS, url=server.url("/rss"), min_request_interval=0),
        SourceConfig(kind=SourceKind.FEED, url=server.url("/blog"), name="blog"),
    ]
    hf_source = HfDailySource(configs[0], http, now=lambda: NOW)
    return [hf_source, *(build_source(c, http) for c in configs[1:])]


def script_all(server: ScriptedServer) -> None:
    etag = {"ETag": '"v1"'}
    server.script("/hf", Reply(200, hf_body_with_shared_paper(), headers=etag))
    server.script("/rss", Reply(200, fixture("arxiv_rss_day.xml"), headers=etag))
    server.script("/blog", Reply(200, fixture("feed_blog_rss.xml"), headers=etag))


async def test_one_paper_from_three_sources_is_one_record(store: Store, http: HttpClient) -> None:
    async with ScriptedServer() as server:
        script_all(server)
        report = await run_cycle(sources(server, http), store, clock=lambda: NOW)
    assert report.ok, [s.error for s in report.summaries]
    paper = await store.get_paper(SHARED)
    assert paper is not None
    assert set(paper.sources) == {"hf", "arxiv", "blog"}
    assert paper.upvotes == 42  # from Hugging Face
    assert paper.categories[0] == "cs.LG"  # arXiv's primary category
    assert paper.version == 1
    assert [p.key for p in report.new_papers].count(SHARED) == 1


async def test_rerun_on_same_responses_changes_nothing(store: Store, http: HttpClient) -> None:
    async with ScriptedServer() as server:
        script_all(server)
        await run_cycle(sources(server, http), store, clock=lambda: NOW)
        before = await store.list_papers()
        again = await run_cycle(sources(server, http), store, clock=lambda: NOW)
        conditional = [r for r in server.requests if "If-None-Match" in r.headers]
    assert again.new_papers == () and again.updated_papers == ()
    assert all(s.new == 0 and s.updated == 0 for s in again.summaries)
    assert len(conditional) == 3  # every source asked with its ETag and got 304
    assert await store.list_papers() == before


async def test_failing_source_stores_nothing_and_others_carry_on(
    store: Store, http: HttpClient
) -> None:
    async with ScriptedServer() as server:
        script_all(server)
        server.script("/rss", Reply(200, fixture("arxiv_rss_truncated.xml")))
        report = await run_cycle(sources(server, http), store, clock=lambda: NOW)
    by_name = {s.name: s for s in report.summaries}
    assert by_name["arxiv"].error and "arxiv_rss" in by_name["arxiv"].error
    assert by_name["hf"].ok and by_name["blog"].ok and not report.ok
    assert await store.get_paper("2606.00202") is None  # only in the broken feed
    state = await store.get_source_state(by_name["arxiv"].source_id)
    assert state is not None and state.last_error == by_name["arxiv"].error
    assert state.http_cache == {}  # no validators kept from a failed fetch


async def test_replacement_bumps_version_and_is_not_new(store: Store, http: HttpClient) -> None:
    day = fixture("arxiv_rss_day.xml")
    replaced = day.replace(
        b"2606.00101v1 Announce Type: new", b"2606.00101v2 Announce Type: replace"
    )
    replaced = replaced.replace(b"oai:arXiv.org:2606.00101v1", b"oai:arXiv.org:2606.00101v2")
    replaced = replaced.replace(
        b"<arxiv:announce_type>new</arxiv:announce_type>",
        b"<arxiv:announce_type>replace</arxiv:announce_type>",
    )
    async with ScriptedServer() as server:
        server.script("/rss", Reply(200, day), Reply(200, replaced))
        rss = [s for s in sources(server, http) if s.config.kind is SourceKind.ARXIV_RSS]
        await run_cycle(rss, store, clock=lambda: NOW)
        second = await run_cycle(rss, store, clock=lambda: NOW)
    assert SHARED not in {p.key for p in second.new_papers}
    assert SHARED in {p.key for p in second.updated_papers}
    paper = await store.get_paper(SHARED)
    assert paper is not None and paper.version == 2


async def test_empty_weekend_feed_is_a_note_not_an_error(store: Store, http: HttpClient) -> None:
    async with ScriptedServer() as server:
        server.script("/rss", Reply(200, fixture("arxiv_rss_weekend.xml")))
        rss = [s for s in sources(server, http) if s.config.kind is SourceKind.ARXIV_RSS]
        report = await run_cycle(rss, store, clock=lambda: NOW)
    (summary,) = report.summaries
    assert summary.ok and summary.fetched == 0 and summary.note
    assert "announcement" in summary.note
