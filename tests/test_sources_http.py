"""Every source over real HTTP against a loopback server, and over file: URLs."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import FetchError, RateLimitedError, SourceParseError
from bot.models import AnnounceType, SourceKind, SourceState
from bot.settings import HttpSettings, SourceConfig
from bot.sources import (
    ArxivApiSource,
    ArxivRssSource,
    FeedSource,
    HfDailySource,
    build_source,
)
from bot.sources.arxiv_api import EMPTY_NOTE as API_EMPTY_NOTE
from bot.sources.arxiv_rss import EMPTY_NOTE as RSS_EMPTY_NOTE
from bot.sources.http import HttpClient
from tests.support_http import (
    FIXTURES,
    Reply,
    ScriptedServer,
    SleepRecorder,
    fixture,
)

SETTINGS = HttpSettings(timeout=2.0, retries=2, backoff=0.01, max_wait=60.0)
NOW = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)
HF_PATH = "/api/daily_papers"


@pytest.fixture
async def http(sleeps: SleepRecorder) -> AsyncIterator[HttpClient]:
    async with HttpClient(SETTINGS, sleep=sleeps) as client:
        yield client


def config(kind: SourceKind, url: str, **extra: Any) -> SourceConfig:
    if kind in (SourceKind.ARXIV_API, SourceKind.ARXIV_RSS):
        extra.setdefault("min_request_interval", 0.0)  # tests that time it set their own
    return SourceConfig(kind=kind, url=url, **extra)


def hf_source(server: ScriptedServer, http: HttpClient, days: int = 2) -> HfDailySource:
    cfg = config(SourceKind.HF_DAILY, server.url(HF_PATH), days=days)
    return HfDailySource(cfg, http, now=lambda: NOW)


def hf_page(count: int, first: int = 20000) -> bytes:
    """A full Daily Papers page built from a recorded item, one id per copy."""
    template = json.loads(fixture("hf_2026.json"))[1]
    items = []
    for number in range(first, first + count):
        item = json.loads(json.dumps(template))
        item["paper"]["id"] = f"2605.{number:05d}"
        items.append(item)
    return json.dumps(items).encode()


# --- Hugging Face ------------------------------------------------------------------------


async def test_hf_polls_each_day_dedupes_and_round_trips_validators(
    server: ScriptedServer, http: HttpClient
) -> None:
    today = Reply(200, fixture("hf_2026.json"), {"ETag": '"d2"'})
    yesterday = Reply(200, fixture("hf_2026.json"), {"Last-Modified": "Mon, 01 Jun 2026 GMT"})
    server.script(f"{HF_PATH}?date=2026-06-02&limit=100", today)
    server.script(f"{HF_PATH}?date=2026-06-01&limit=100", yesterday)
    source = hf_source(server, http)
    first = await source.fetch(SourceState(source.config.source_id))
    assert [s.paper.key for s in first.sightings] == ["2606.00467", "2605.21834"]
    assert [r.query for r in server.requests] == [
        {"date": "2026-06-02", "limit": "100"},
        {"date": "2026-06-01", "limit": "100"},
    ]
    assert set(first.http_cache) == {
        server.url(f"{HF_PATH}?date=2026-06-02&limit=100"),
        server.url(f"{HF_PATH}?date=2026-06-01&limit=100"),
    }
    state = SourceState(source.config.source_id, http_cache=first.http_cache)
    second = await source.fetch(state)
    assert second.sightings == ()
    assert second.note == "not modified"
    assert server.requests[2].headers["If-None-Match"] == '"d2"'
    assert server.requests[3].headers["If-Modified-Since"] == "Mon, 01 Jun 2026 GMT"
    assert "paperbell/" in server.requests[0].headers["User-Agent"]


async def test_hf_pages_while_full_and_resumes_paging_after_304(
    server: ScriptedServer, http: HttpClient
) -> None:
    server.script(f"{HF_PATH}?date=2026-06-02&limit=100", Reply(200, hf_page(100), {"ETag": '"0"'}))
    server.script(
        f"{HF_PATH}?date=2026-06-02&limit=100&p=1", Reply(200, hf_page(1, 30000), {"ETag": '"1"'})
    )
    source = hf_source(server, http, days=1)
    first = await source.fetch(SourceState(source.config.source_id))
    assert len(first.sightings) == 101
    assert [r.query.get("p") for r in server.requests] == [None, "1"]
    state = SourceState(source.config.source_id, http_cache=first.http_cache)
    second = await source.fetch(state)
    assert second.sightings == ()
    # page 0 answered 304; page 1 was known from last time, so it was asked again.
    assert [r.query.get("p") for r in server.requests[2:]] == [None, "1"]


async def test_hf_empty_days_are_fine(server: ScriptedServer, http: HttpClient) -> None:
    server.script(HF_PATH, Reply(200, fixture("hf_empty.json")))
    result = await hf_source(server, http, days=3).fetch(SourceState("hf"))
    assert result.sightings == ()
    assert result.note is None
    assert len(server.requests) == 3


async def test_hf_400_carries_hf_message(server: ScriptedServer, http: HttpClient) -> None:
    server.script(HF_PATH, Reply(400, fixture("hf_error_400.json")))
    with pytest.raises(SourceParseError) as info:
        await hf_source(server, http).fetch(SourceState("hf"))
    assert str(info.value).startswith(
        f"hf_daily {server.url(HF_PATH)}: HTTP 400 Bad Request: Invalid date: expected YYYY-MM-DD"
    )


async def test_hf_malformed_json_fails_whole_fetch(
    server: ScriptedServer, http: HttpClient
) -> None:
    server.script(f"{HF_PATH}?date=2026-06-02&limit=100", Reply(200, fixture("hf_2026.json")))
    server.script(f"{HF_PATH}?date=2026-06-01&limit=100", Reply(200, fixture("hf_truncated.json")))
    with pytest.raises(SourceParseError, match="not valid JSON"):
        await hf_source(server, http).fetch(SourceState("hf"))


async def test_hf_429_with_ratelimit_header_then_200(
    server: ScriptedServer, http: HttpClient, sleeps: SleepRecorder
) -> None:
    limited = Reply(429, headers={"RateLimit": '"api";r=0;t=5'})
    server.script(HF_PATH, limited, Reply(200, fixture("hf_2024.json")))
    result = await hf_source(server, http, days=1).fetch(SourceState("hf"))
    assert len(result.sightings) == 2
    assert sleeps.waits == [5.0]


async def test_hf_429_longer_than_max_wait(server: ScriptedServer, http: HttpClient) -> None:
    server.script(HF_PATH, Reply(429, headers={"RateLimit": '"api";r=0;t=300'}))
    with pytest.raises(RateLimitedError) as info:
        await hf_source(server, http).fetch(SourceState("hf"))
    assert info.value.retry_after == 300.0
    assert info.value.source == "hf"
    assert str(info.value).startswith(f"hf_daily {server.url(HF_PATH)}: GET ")
    assert "asks to wait 300 s, more than max_wait (60 s)" in str(info.value)


# --- arXiv RSS ---------------------------------------------------------------------------


def rss_source(
    server: ScriptedServer, http: HttpClient, path: str = "/rss/cs.LG"
) -> ArxivRssSource:
    return ArxivRssSource(config(SourceKind.ARXIV_RSS, server.url(path)), http)


async def test_rss_day_then_not_modified(server: ScriptedServer, http: HttpClient) -> None:
    modified = {"Last-Modified": "Tue, 02 Jun 2026 04:31:22 GMT"}
    server.script("/rss/cs.LG", Reply(200, fixture("arxiv_rss_day.xml"), modified))
    source = rss_source(server, http)
    first = await source.fetch(SourceState(source.config.source_id))
    assert [s.announce for s in first.sightings] == [
        AnnounceType.NEW,
        AnnounceType.CROSS,
        AnnounceType.REPLACE,
        AnnounceType.REPLACE_CROSS,
    ]
    assert first.note is None
    second = await source.fetch(SourceState(source.config.source_id, http_cache=first.http_cache))
    assert second.sightings == ()
    assert second.note == "not modified"
    assert server.requests[1].headers["If-Modified-Since"] == modified["Last-Modified"]


async def test_rss_weekend_is_a_note(server: ScriptedServer, http: HttpClient) -> None:
    server.script("/rss/cs.LG", Reply(200, fixture("arxiv_rss_weekend.xml")))
    result = await rss_source(server, http).fetch(SourceState("x"))
    assert result.sightings == ()
    assert result.note == RSS_EMPTY_NOTE


async def test_rss_error_feed(server: ScriptedServer, http: HttpClient) -> None:
    server.script("/rss/cs.XX", Reply(400, fixture("arxiv_rss_error.xml")))
    with pytest.raises(SourceParseError) as info:
        await rss_source(server, http, "/rss/cs.XX").fetch(SourceState("x"))
    assert str(info.value) == (
        f"arxiv_rss {server.url('/rss/cs.XX')}: feed error: Invalid category 'cs.XX'"
    )


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Reply(200, fixture("arxiv_rss_truncated.xml")), SourceParseError, "malformed XML"),
        (
            Reply(200, fixture("arxiv_rss_day.xml"), truncate_to=1200),
            FetchError,
            "response body cut short",
        ),
        (Reply(404, b"<html>Not Found</html>"), SourceParseError, "HTTP 404 Not Found"),
        (Reply(503), FetchError, "HTTP 503 Service Unavailable (gave up after 3 attempts)"),
    ],
)
async def test_rss_failures(
    server: ScriptedServer,
    http: HttpClient,
    reply: Reply,
    error: type[Exception],
    message: str,
) -> None:
    server.script("/rss/cs.LG", reply)
    with pytest.raises(error) as info:
        await rss_source(server, http).fetch(SourceState("x"))
    assert str(info.value).startswith(f"arxiv_rss {server.url('/rss/cs.LG')}: ")
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


# --- arXiv API ---------------------------------------------------------------------------


def api_source(server: ScriptedServer, http: HttpClient, **extra: Any) -> ArxivApiSource:
    cfg = config(SourceKind.ARXIV_API, server.url("/api/query"), query="cat:cs.LG", **extra)
    return ArxivApiSource(cfg, http)


async def test_api_pages_through_results_spaced_and_one_at_a_time(
    server: ScriptedServer, http: HttpClient
) -> None:
    pages = (
        Reply(200, fixture("arxiv_api_current.xml")),
        Reply(200, fixture("arxiv_api_current_p2.xml")),
    )
    server.script("/api/query", *pages)
    source = api_source(server, http, page_size=3, max_results=10, min_request_interval=0.2)
    result = await source.fetch(SourceState("x"))
    assert len(result.sightings) == 5
    assert all(s.announce is AnnounceType.NEW for s in result.sightings)
    assert [r.query for r in server.requests] == [
        {
            "search_query": "cat:cs.LG",
            "start": str(start),
            "max_results": "3",
            "sortBy": "submittedDate",
            "sortOrder": "descending",
        }
        for start in (0, 3)
    ]
    first, second = server.requests
    assert second.started - first.finished >= 0.2
    assert server.max_active == 1


async def test_api_stops_at_max_results(server: ScriptedServer, http: HttpClient) -> None:
    server.script("/api/query", Reply(200, fixture("arxiv_api_current.xml")))
    result = await api_source(server, http, page_size=3, max_results=3).fetch(SourceState("x"))
    assert len(result.sightings) == 3
    assert len(server.requests) == 1


async def test_api_error_entry_with_400(server: ScriptedServer, http: HttpClient) -> None:
    server.script("/api/query", Reply(400, fixture("arxiv_api_error.xml")))
    with pytest.raises(SourceParseError) as info:
        await api_source(server, http).fetch(SourceState("x"))
    assert str(info.value) == (
        f"arxiv_api {server.url('/api/query')}: "
        "arXiv API error: unbalanced parentheses in query: ti:("
    )


async def test_api_zero_results(server: ScriptedServer, http: HttpClient) -> None:
    server.script("/api/query", Reply(200, fixture("arxiv_api_empty.xml")))
    result = await api_source(server, http).fetch(SourceState("x"))
    assert result.sightings == ()
    assert result.note == API_EMPTY_NOTE
    assert len(server.requests) == 1


async def test_api_429_retry_after_then_200(
    server: ScriptedServer, http: HttpClient, sleeps: SleepRecorder
) -> None:
    limited = Reply(429, headers={"Retry-After": "3"})
    server.script("/api/query", limited, Reply(200, fixture("arxiv_api_legacy.xml")))
    result = await api_source(server, http).fetch(SourceState("x"))
    assert [s.paper.key for s in result.sightings] == ["2403.16981", "2403.15002"]
    assert sleeps.waits == [3.0]


async def test_api_and_rss_share_the_arxiv_throttle(
    server: ScriptedServer, http: HttpClient
) -> None:
    server.script("/api/query", Reply(200, fixture("arxiv_api_legacy.xml"), delay=0.05))
    server.script("/rss/cs.LG", Reply(200, fixture("arxiv_rss_day.xml"), delay=0.05))
    api = api_source(server, http, min_request_interval=0.2)
    rss = ArxivRssSource(
        config(SourceKind.ARXIV_RSS, server.url("/rss/cs.LG"), min_request_interval=0.2), http
    )
    await asyncio.gather(api.fetch(SourceState("a")), rss.fetch(SourceState("r")))
    assert server.max_active == 1
    first, second = sorted(server.requests, key=lambda r: r.started)
    assert second.started - first.finished >= 0.2


# --- generic feeds -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/blog.xml", "/für blog.xml"])  # sent encoded, keyed alike
async def test_feed_200_then_304(server: ScriptedServer, http: HttpClient, path: str) -> None:
    server.script(path, Reply(200, fixture("feed_blog_rss.xml"), {"ETag": 'W/"b1"'}))
    source = FeedSource(config(SourceKind.FEED, server.url(path)), http)
    first = await source.fetch(SourceState(source.config.source_id))
    assert len(first.sightings) == 6
    assert first.sightings[0].paper.sources == ("127.0.0.1",)
    second = await source.fetch(SourceState(source.config.source_id, http_cache=first.http_cache))
    assert second.sightings == ()
    assert second.note == "not modified"
    assert server.requests[1].headers["If-None-Match"] == 'W/"b1"'


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Reply(200, fixture("feed_html_page.html")), SourceParseError, "not an RSS or Atom feed"),
        (Reply(200, fixture("feed_truncated.xml")), SourceParseError, "malformed XML"),
        (Reply(410, b"Gone"), SourceParseError, "HTTP 410 Gone"),
        (Reply(200, b"<rss/>", delay=1.0), FetchError, "timed out after 0.2 s"),
    ],
)
async def test_feed_failures(
    server: ScriptedServer, reply: Reply, error: type[Exception], message: str
) -> None:
    server.script("/blog.xml", reply)
    settings = HttpSettings(timeout=0.2, retries=0)
    async with HttpClient(settings) as client:
        source = FeedSource(config(SourceKind.FEED, server.url("/blog.xml")), client)
        with pytest.raises(error) as info:
            await source.fetch(SourceState("x"))
    assert str(info.value).startswith(f"feed {server.url('/blog.xml')}: ")
    assert message in str(info.value)


# --- every kind from a file: URL ---------------------------------------------------------


def install_example(name: str) -> None:
    """Copy a fixture to ./examples; every test runs in a fresh temporary cwd."""
    Path("examples").mkdir()
    shutil.copy(FIXTURES / name, Path("examples") / name)


@pytest.mark.parametrize(
    ("kind", "name", "keys"),
    [
        (SourceKind.HF_DAILY, "hf_2026.json", ["2606.00467", "2605.21834"]),
        (
            SourceKind.ARXIV_RSS,
            "arxiv_rss_day.xml",
            ["2606.00101", "2606.00202", "2605.30001", "2410.01234"],
        ),
        (
            SourceKind.ARXIV_API,
            "arxiv_api_current.xml",
            ["2606.01234", "2605.30001", "2605.29999"],
        ),
        (SourceKind.FEED, "feed_oneline.xml", ["2310.15154"]),
    ],
)
async def test_file_urls_for_every_kind(
    http: HttpClient, tmp_path: Path, kind: SourceKind, name: str, keys: list[str]
) -> None:
    install_example(name)
    extra = {"query": "cat:cs.LG"} if kind is SourceKind.ARXIV_API else {}
    for url in (f"file:examples/{name}", (Path.cwd() / "examples" / name).as_uri()):
        source = build_source(config(kind, url, **extra), http)
        result = await source.fetch(SourceState(source.config.source_id))
        assert [s.paper.key for s in result.sightings][: len(keys)] == keys


async def test_missing_file_names_the_source(http: HttpClient) -> None:
    source = build_source(config(SourceKind.FEED, "file:examples/papers.xml"), http)
    with pytest.raises(FetchError) as info:
        await source.fetch(SourceState("x"))
    assert str(info.value) == (
        f"feed file:examples/papers.xml: no such file {Path.cwd() / 'examples' / 'papers.xml'}"
    )


async def test_build_source_picks_the_class_per_kind(http: HttpClient) -> None:
    expected = {
        SourceKind.HF_DAILY: HfDailySource,
        SourceKind.ARXIV_RSS: ArxivRssSource,
        SourceKind.ARXIV_API: ArxivApiSource,
        SourceKind.FEED: FeedSource,
    }
    for kind, cls in expected.items():
        query = "all:x" if kind is SourceKind.ARXIV_API else ""
        url = "https://example.org/x" if kind in (SourceKind.ARXIV_RSS, SourceKind.FEED) else ""
        source = build_source(SourceConfig(kind=kind, url=url, query=query), http)
        assert isinstance(source, cls)
        assert source.config.kind is kind
