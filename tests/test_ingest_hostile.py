"""Ingest against old, broken and hostile input, over real loopback HTTP into a real store.

A new feed's backlog is stored without alerts; an item with an impossible date or number
is skipped and counted while its neighbours are stored; a body past the cap is refused;
huge fields are cut; invisible controls are removed; nothing makes a source fail whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Self
from xml.sax.saxutils import escape

import pytest
from aiohttp import web

from bot.cli.main import main
from bot.daemon.report import cycle_line
from bot.delivery.dispatcher import DispatchReport
from bot.delivery.planning import record_matches
from bot.matching.step import MatchSummary
from bot.models import FetchResult, IngestReport, Paper, Sighting, SourceKind, SourceState
from bot.settings import HttpSettings, SourceConfig
from bot.sources import build_source
from bot.sources import feed as feed_module
from bot.sources.base import Source
from bot.sources.feed import parse_feed
from bot.sources.hf import HfDailySource
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.protocols import Store
from tests.support_http import Reply, ScriptedServer, fixture

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
MAX_AGE = 3
DOOMSDAY = "Fri, 31 Dec 9999 23:59:59 -1400"  # reads, but cannot be held in UTC


@dataclass(frozen=True)
class Post:
    title: str
    published: datetime | str | None = None  # a str goes into <pubDate> as is
    author: str = "Ada Example"
    abstract: str = "A post."


def rss(posts: Sequence[Post]) -> bytes:
    """A plain RSS 2.0 feed; each post links to its own page (named after its title)."""
    items = []
    for post in posts:
        page = hashlib.sha1(post.title.encode()).hexdigest()[:12]
        when = post.published
        date = format_datetime(when) if isinstance(when, datetime) else when
        items.append(
            f"<item><title>{escape(post.title)}</title>"
            f"<link>https://blog.example.org/{page}</link>"
            f"<description>{escape(post.abstract)}</description>"
            f"<author>{escape(post.author)}</author>"
            + (f"<pubDate>{escape(date)}</pubDate>" if date else "")
            + "</item>"
        )
    head = '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>b</title>'
    return (head + "".join(items) + "</channel></rss>").encode()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with HttpClient(HttpSettings(timeout=5, retries=0)) as client:
        yield client


def blog(server: ScriptedServer, http: HttpClient) -> Source:
    config = SourceConfig(kind=SourceKind.FEED, url=server.url("/blog"), name="blog")
    return build_source(config, http)


async def cycle(source: Source, store: Store, now: datetime = NOW) -> IngestReport:
    return await run_cycle([source], store, lambda: now, alert_max_age_days=MAX_AGE)


def line(report: IngestReport) -> str:
    return cycle_line(report.summaries, MatchSummary(0, 0, 0), DispatchReport())


async def queued_titles(store: Store) -> set[str]:
    queued = await store.queued_for_matching()
    return {p.title for p in (*queued.new, *queued.updated)}


# --- a new source or a late paper never floods ---------------------------------------------


async def test_backlog_on_first_fetch_is_stored_without_alerts(
    store: Store, http: HttpClient
) -> None:
    old = [Post(f"Post {n} of 2024", datetime(2024, 3, n + 1, tzinfo=UTC)) for n in range(7)]
    fresh = Post("Yesterday's post", NOW - timedelta(days=1))
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss([*old, fresh, Post("Undated")])))
        report = await cycle(blog(server, http), store)
    (summary,) = report.summaries
    assert summary.ok and (summary.fetched, summary.new, summary.quiet) == (9, 9, 8)
    assert len(await store.list_papers()) == 9  # everything is stored
    assert await queued_titles(store) == {"Yesterday's post"}  # only news is matched
    assert "8 stored without alert (older than 3 days or undated, on a first fetch)" in line(report)


async def test_backlog_of_seven_2024_posts_queues_no_alert(store: Store, http: HttpClient) -> None:
    old = [Post(f"Post {n}", datetime(2024, 5, n + 1, tzinfo=UTC)) for n in range(7)]
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss(old)))
        report = await cycle(blog(server, http), store)
    assert len(await store.list_papers()) == 7
    assert await queued_titles(store) == set()
    assert "blog: fetched 7, new 7, updated 0, 7 stored without alert" in line(report)


async def test_paper_first_seen_late_is_never_alerted(store: Store, http: HttpClient) -> None:
    async with ScriptedServer() as server:
        server.script(
            "/blog",
            Reply(200, rss([Post("First", NOW - timedelta(hours=2))])),
            Reply(200, rss([Post("Late", NOW - timedelta(days=10)), Post("Undated too")])),
        )
        source = blog(server, http)
        await cycle(source, store)
        await record_matches(store, [], NOW, matched=(await store.queued_for_matching()).versions)
        second = await cycle(source, store, NOW + timedelta(hours=1))
    assert second.summaries[0].quiet == 1
    assert "1 stored without alert (older than 3 days)" in line(second)
    # Not a first fetch: an undated item is news; one published 10 days ago is not.
    assert await queued_titles(store) == {"Undated too"}


async def test_late_paper_is_not_alerted_when_its_upvotes_grow(
    store: Store, http: HttpClient
) -> None:
    items = json.loads(fixture("hf_2026.json"))  # papers of 2026-05-27 and 2026-05-29
    grown = json.loads(fixture("hf_2026.json"))
    for item in grown:
        item["paper"]["upvotes"] = 500
    later = NOW + timedelta(days=7)
    async with ScriptedServer() as server:
        server.script(
            "/hf", Reply(200, json.dumps(items).encode()), Reply(200, json.dumps(grown).encode())
        )
        config = SourceConfig(kind=SourceKind.HF_DAILY, url=server.url("/hf"), days=1)
        source = HfDailySource(config, http, now=lambda: later)
        first = await cycle(source, store, later)
        assert first.summaries[0].quiet == len(items)
        second = await cycle(source, store, later + timedelta(hours=1))
    assert second.summaries[0].updated == len(items)
    assert await queued_titles(store) == set()


async def test_without_an_age_rule_everything_is_alerted(store: Store, http: HttpClient) -> None:
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss([Post("Old", datetime(2024, 1, 1, tzinfo=UTC))])))
        await run_cycle([blog(server, http)], store, lambda: NOW)
    assert await queued_titles(store) == {"Old"}


# --- a bad item is skipped, its source stays ok --------------------------------------------


async def test_rss_item_with_year_9999_is_skipped_and_the_rest_stored(
    store: Store, http: HttpClient
) -> None:
    day = fixture("arxiv_rss_day.xml").replace(
        b"<item>", f"<item><pubDate>{DOOMSDAY}</pubDate>".encode(), 1
    )
    async with ScriptedServer() as server:
        server.script("/rss", Reply(200, day))
        config = SourceConfig(kind=SourceKind.ARXIV_RSS, url=server.url("/rss"))
        report = await cycle(build_source(config, http), store)
    (summary,) = report.summaries
    assert summary.ok and (summary.new, summary.skipped) == (1, 2)  # 2 replacements
    assert [b.reason for b in summary.bad_items] == ["bad date"]
    assert await store.get_paper("2606.00101") is None  # the item with the impossible date
    assert await store.get_paper("2606.00202") is not None
    state = await store.get_source_state(summary.source_id)
    assert state is not None and state.last_error is None and state.last_success == NOW
    assert "1 skipped (bad date ×1)" in line(report)


async def test_api_entry_with_year_9999_is_skipped(store: Store, http: HttpClient) -> None:
    page = fixture("arxiv_api_current.xml").replace(
        b"<published>2026-06-01T17:59:58Z</published>",
        b"<published>9999-12-31T23:59:59-14:00</published>",
    )
    async with ScriptedServer() as server:
        server.script("/api", Reply(200, page))
        config = SourceConfig(
            kind=SourceKind.ARXIV_API,
            url=server.url("/api"),
            query="cat:cs.LG",
            max_results=3,
            min_request_interval=0,
        )
        report = await cycle(build_source(config, http), store)
    (summary,) = report.summaries
    assert summary.ok and summary.new == 2
    assert [b.reason for b in summary.bad_items] == ["bad date"]


async def test_hf_huge_upvotes_and_impossible_dates_are_skipped_and_counted(
    store: Store, http: HttpClient
) -> None:
    items = json.loads(fixture("hf_2026.json"))
    base = items[0]
    broken = []
    for n, (field, value) in enumerate(
        [
            ("upvotes", 2**70),
            ("publishedAt", "9999-12-31T23:59:59-14:00"),
            ("publishedAt", "1400-01-01T00:00:00Z"),
            ("publishedAt", "2500-01-01T00:00:00Z"),
            ("upvotes", -3),
        ]
    ):
        item = json.loads(json.dumps(base))
        item["paper"]["id"] = f"2606.9000{n}"
        item["paper"][field] = value
        broken.append(item)
    async with ScriptedServer() as server:
        server.script("/hf", Reply(200, json.dumps([*items, *broken]).encode()))
        config = SourceConfig(kind=SourceKind.HF_DAILY, url=server.url("/hf"), days=1)
        report = await cycle(HfDailySource(config, http, now=lambda: NOW), store)
    (summary,) = report.summaries
    assert summary.ok, summary.error
    assert summary.new == len(items)
    assert sorted(b.reason for b in summary.bad_items) == [
        "bad date",
        "bad date",
        "bad date",
        "bad upvotes",
        "bad upvotes",
    ]
    assert "5 skipped (bad date ×3, bad upvotes ×2)" in line(report)
    assert {p.key for p in await store.list_papers()} == {i["paper"]["id"] for i in items}


async def test_feed_absurd_years_are_skipped_never_sorted_first(
    store: Store, http: HttpClient
) -> None:
    posts = [
        Post("From the future", datetime(2500, 1, 1, tzinfo=UTC)),
        Post("From the past", "Sat, 01 Jan 1400 00:00:00 +0000"),
        Post("Next week", NOW + timedelta(days=7)),
        Post("Today", NOW - timedelta(hours=1)),
    ]
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss(posts)))
        report = await cycle(blog(server, http), store)
    (summary,) = report.summaries
    assert summary.ok and [b.reason for b in summary.bad_items] == ["bad date"] * 3
    assert [p.title for p in await store.list_papers()] == ["Today"]
    assert "3 skipped (bad date ×3)" in line(report)


class Broken:
    """A source that hands ingest a value no store accepts (a naive datetime)."""

    def __init__(self) -> None:
        self.config = SourceConfig(kind=SourceKind.FEED, url="file:broken.xml", name="broken")

    async def fetch(self, state: SourceState) -> FetchResult:
        paper = Paper("feed:x", "x", published=datetime(2026, 6, 1))
        return FetchResult((Sighting(paper),))


async def test_unexpected_failure_past_the_fetch_is_that_sources_error(
    store: Store, http: HttpClient
) -> None:
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss([Post("Fine", NOW)])))
        report = await cycle_all([Broken(), blog(server, http)], store)
    broken, fine = report.summaries
    assert broken.error is not None and "internal error" in broken.error
    assert fine.ok and fine.new == 1
    state = await store.get_source_state(broken.source_id)
    assert state is not None and state.last_error == broken.error


async def cycle_all(sources: Sequence[Source], store: Store) -> IngestReport:
    return await run_cycle(sources, store, lambda: NOW, alert_max_age_days=MAX_AGE)


# --- size limits and invisible characters --------------------------------------------------


async def test_huge_title_authors_and_abstract_are_cut_and_recorded(
    store: Store, http: HttpClient
) -> None:
    post = Post(
        "T" * 5_000_000,
        NOW,
        author=", ".join(f"Author {n}" for n in range(2000)),
        abstract="word " * 10_000,
    )
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss([post])))
        report = await cycle(blog(server, http), store)
    (summary,) = report.summaries
    assert summary.ok and summary.new == 1
    (paper,) = await store.list_papers()
    assert len(paper.title) == 1000 and paper.title.endswith("…")
    assert len(paper.abstract) <= 20_000 and paper.abstract.endswith("…")
    assert len(paper.authors) == 500
    assert sorted(summary.truncated) == ["abstract", "authors", "title"]
    assert "3 field(s) cut to size (title ×1, abstract ×1, authors ×1)" in line(report)


async def test_invisible_and_bidi_controls_are_stripped(store: Store, http: HttpClient) -> None:
    post = Post(
        "Safe\u202e txt.exe\u200b title\ufeff\u2066",
        NOW,
        author="Ev\u200de\u202d Example",
        abstract="An\u200b abstract\u2069 with\u00ad soft\u2028 breaks",
    )
    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, rss([post])))
        await cycle(blog(server, http), store)
    (paper,) = await store.list_papers()
    assert paper.title == "Safe txt.exe title"
    assert paper.authors == ("Eve Example",)
    assert paper.abstract == "An abstract with soft breaks"


class EndlessServer:
    """Streams a feed that never ends (chunked, no Content-Length), like a hostile host."""

    def __init__(self) -> None:
        self.sent = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/feed", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/feed"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'<rss version="2.0"><channel><title>')
        chunk = b"A" * 65536
        while self.sent < 2_000_000_000:  # stops only if the client never does
            await response.write(chunk)
            self.sent += len(chunk)
        return response


async def test_endless_body_is_refused_past_the_cap_and_nothing_stored(
    store: Store,
) -> None:
    settings = HttpSettings(timeout=30, retries=0, max_bytes=1_000_000)
    async with EndlessServer() as server, HttpClient(settings) as client:
        config = SourceConfig(kind=SourceKind.FEED, url=server.url, name="endless")
        report = await cycle(build_source(config, client), store)
    (summary,) = report.summaries
    assert summary.error == (
        f"feed {server.url}: response larger than 1 MB from {server.url}; "
        "raise PAPERBELL_HTTP__MAX_BYTES if this is expected"
    )
    assert server.sent < 50_000_000  # the client hung up early, it did not read it all
    assert await store.list_papers() == []


async def test_declared_large_body_is_refused_before_reading(
    store: Store,
) -> None:
    body = rss([Post(f"Post {n}", NOW, abstract="x" * 1000) for n in range(30)])
    settings = HttpSettings(timeout=5, retries=0, max_bytes=10_000)
    async with ScriptedServer() as server, HttpClient(settings) as client:
        server.script("/blog", Reply(200, body))
        report = await cycle(blog(server, client), store)
    (summary,) = report.summaries
    assert summary.error is not None
    assert "response larger than 0.01 MB from http://127.0.0.1:" in summary.error
    assert await store.list_papers() == []


async def test_file_url_past_the_cap_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(rss([Post(f"Post {n}", NOW, abstract="x" * 1000) for n in range(30)]))
    url = f"file://{path}"
    async with HttpClient(HttpSettings(max_bytes=10_000)) as client:
        config = SourceConfig(kind=SourceKind.FEED, url=url, name="big")
        report = await cycle(build_source(config, client), store)
    assert report.summaries[0].error == (
        f"feed {url}: response larger than 0.01 MB from {url}; "
        "raise PAPERBELL_HTTP__MAX_BYTES if this is expected"
    )


# --- parsing never stalls the event loop ------------------------------------------------------


async def test_a_big_feed_parses_off_the_event_loop(
    store: Store, http: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = rss([Post(f"Post {n}", NOW, abstract="words " * 100) for n in range(600)])
    loop_thread = threading.get_ident()
    parsed_on: list[int] = []

    def recording_parse(config: SourceConfig, raw: bytes) -> Any:
        parsed_on.append(threading.get_ident())
        return parse_feed(config, raw)

    # Which thread parses, not how long the loop stalls: a timing would flake on a busy box.
    monkeypatch.setattr(feed_module, "parse_feed", recording_parse)
    beats: list[float] = []

    async def health() -> None:  # what /healthz needs: the loop answering meanwhile
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.005)

    async with ScriptedServer() as server:
        server.script("/blog", Reply(200, body))
        beating = asyncio.create_task(health())
        report = await cycle(blog(server, http), store)
        beating.cancel()
    assert report.summaries[0].new == 600
    assert parsed_on and loop_thread not in parsed_on
    assert len(beats) > 1


# --- the setting, end to end through the command line ---------------------------------------


@pytest.mark.parametrize(("max_age", "quiet"), [(None, 7), ("3650", 0)])
def test_cli_ingest_honours_alert_max_age_days(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    max_age: str | None,
    quiet: int,
) -> None:
    feed = tmp_path / "backlog.xml"
    feed.write_bytes(
        rss([Post(f"Post {n}", datetime(2024, 5, n + 1, tzinfo=UTC)) for n in range(7)])
    )
    if max_age is not None:
        monkeypatch.setenv("PAPERBELL_ALERT_MAX_AGE_DAYS", max_age)
    assert main(["ingest", "--source", f"feed:file:{feed}"]) == 0
    out = capsys.readouterr().out
    assert ("7 stored without alert (older than 3 days" in out) == bool(quiet)
    assert "7 new paper(s)" in out
