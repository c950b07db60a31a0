"""HttpClient against a loopback server: retries, waits, conditional GETs, throttle, file: URLs."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest

from bot import __version__
from bot.errors import FetchError, RateLimitedError
from bot.models import HttpCacheEntry
from bot.settings import HttpSettings
from bot.sources.http import HttpClient, HttpResponse, request_url, server_wait, user_agent
from tests.support_http import Reply, ScriptedServer, SleepRecorder

FAST = HttpSettings(timeout=2.0, retries=2, backoff=0.01, max_wait=60.0, contact="ops@example.org")


@pytest.fixture
async def client(sleeps: SleepRecorder) -> AsyncIterator[HttpClient]:
    async with HttpClient(FAST, sleep=sleeps, jitter=lambda: 0.0) as http:
        yield http


async def test_200_returns_body_status_validators_and_sends_user_agent(
    server: ScriptedServer, client: HttpClient
) -> None:
    headers = {"ETag": '"v1"', "Last-Modified": "Tue, 02 Jun 2026 04:31:22 GMT"}
    server.script("/feed", Reply(200, b"<rss/>", headers))
    response = await client.get(server.url("/feed"), params={"a": "b c", "n": 2})
    assert response == HttpResponse(
        url=server.url("/feed?a=b+c&n=2"),
        status=200,
        body=b"<rss/>",
        validators=HttpCacheEntry('"v1"', "Tue, 02 Jun 2026 04:31:22 GMT"),
        reason="OK",
    )
    (request,) = server.requests
    assert request.query == {"a": "b c", "n": "2"}
    assert request.headers["User-Agent"] == f"paperbell/{__version__} (+ops@example.org)"
    assert "If-None-Match" not in request.headers


def test_user_agent_without_contact() -> None:
    assert user_agent() == f"paperbell/{__version__}"


async def test_conditional_get_round_trip(server: ScriptedServer, client: HttpClient) -> None:
    headers = {"ETag": '"abc"', "Last-Modified": "Mon, 01 Jun 2026 00:00:00 GMT"}
    server.script("/feed", Reply(200, b"body", headers))
    first = await client.get(server.url("/feed"))
    second = await client.get(server.url("/feed"), cache=first.validators)
    assert second.not_modified
    assert second.status == 304
    assert second.body == b""
    assert second.validators == first.validators
    sent = server.requests[1].headers
    assert sent["If-None-Match"] == '"abc"'
    assert sent["If-Modified-Since"] == "Mon, 01 Jun 2026 00:00:00 GMT"


async def test_429_with_retry_after_seconds_is_waited_out(
    server: ScriptedServer, client: HttpClient, sleeps: SleepRecorder
) -> None:
    server.script("/q", Reply(429, headers={"Retry-After": "7"}), Reply(200, b"ok"))
    response = await client.get(server.url("/q"))
    assert response.body == b"ok"
    assert sleeps.waits == [7.0]
    assert len(server.requests) == 2


async def test_hf_ratelimit_header_is_honoured(
    server: ScriptedServer, client: HttpClient, sleeps: SleepRecorder
) -> None:
    limited = Reply(
        429,
        headers={
            "RateLimit": '"api";r=0;t=42',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        },
    )
    server.script("/api/daily_papers", limited, Reply(200, b"[]"))
    response = await client.get(server.url("/api/daily_papers"))
    assert response.body == b"[]"
    assert sleeps.waits == [42.0]


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "3600"},
        {"RateLimit": '"api";r=0;t=3600'},
        {"Retry-After": format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)},
    ],
)
async def test_wait_longer_than_max_wait_raises_at_once(
    server: ScriptedServer, client: HttpClient, sleeps: SleepRecorder, headers: dict[str, str]
) -> None:
    server.script("/q", Reply(429, headers=headers), Reply(200, b"never reached"))
    with pytest.raises(RateLimitedError) as info:
        await client.get(server.url("/q"))
    assert info.value.retry_after is not None
    assert info.value.retry_after > 3000
    assert "HTTP 429" in str(info.value)
    assert "more than max_wait (60 s)" in str(info.value)
    assert len(server.requests) == 1
    assert sleeps.waits == []


async def test_503_then_200_backs_off(
    server: ScriptedServer, client: HttpClient, sleeps: SleepRecorder
) -> None:
    server.script("/q", Reply(503), Reply(200, b"ok"))
    assert (await client.get(server.url("/q"))).body == b"ok"
    assert sleeps.waits == [0.01]


async def test_503_forever_gives_up_with_a_clear_message(
    server: ScriptedServer, client: HttpClient, sleeps: SleepRecorder
) -> None:
    server.script("/q", Reply(503, b"down"))
    with pytest.raises(FetchError) as info:
        await client.get(server.url("/q"))
    assert not isinstance(info.value, RateLimitedError)
    assert str(info.value) == (
        f"GET {server.url('/q')}: HTTP 503 Service Unavailable (gave up after 3 attempts)"
    )
    assert sleeps.waits == [0.01, 0.02]  # backoff doubles
    assert len(server.requests) == 3


async def test_backoff_jitter_is_small(server: ScriptedServer) -> None:
    sleeps = SleepRecorder()
    async with HttpClient(FAST, sleep=sleeps, jitter=lambda: 1.0) as http:
        server.script("/q", Reply(500), Reply(200))
        await http.get(server.url("/q"))
    assert sleeps.waits == [pytest.approx(0.011)]


async def test_429_forever_is_rate_limited(server: ScriptedServer, client: HttpClient) -> None:
    server.script("/q", Reply(429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitedError, match=r"HTTP 429 Too Many Requests \(gave up after 3"):
        await client.get(server.url("/q"))


async def test_timeout_is_a_fetch_error(server: ScriptedServer) -> None:
    settings = HttpSettings(timeout=0.1, retries=1, backoff=0.0)
    server.script("/slow", Reply(200, b"late", delay=1.0))
    async with HttpClient(settings) as http:
        with pytest.raises(FetchError, match=r"timed out after 0.1 s \(gave up after 2 attempts\)"):
            await http.get(server.url("/slow"))


async def test_truncated_body_is_a_fetch_error(server: ScriptedServer, client: HttpClient) -> None:
    server.script("/cut", Reply(200, b"<rss>" + b"x" * 5000, truncate_to=100))
    with pytest.raises(FetchError) as info:
        await client.get(server.url("/cut"))
    assert "response body cut short" in str(info.value)
    assert "received 100 of 5005 bytes" in str(info.value)
    assert len(server.requests) == 3  # retried like any transfer failure


async def test_connection_refused_is_a_fetch_error(client: HttpClient) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed"):
        await client.get(f"http://127.0.0.1:{port}/feed")


async def test_other_4xx_comes_back_for_the_parser(
    server: ScriptedServer, client: HttpClient, sleeps: SleepRecorder
) -> None:
    server.script("/q", Reply(400, b"<feed>error</feed>", {"ETag": '"e"'}))
    response = await client.get(server.url("/q"))
    assert (response.status, response.body, response.ok) == (400, b"<feed>error</feed>", False)
    assert response.validators == HttpCacheEntry()  # never cache an error
    assert sleeps.waits == []


async def test_throttle_serialises_and_spaces_requests_sharing_a_key(
    server: ScriptedServer, client: HttpClient
) -> None:
    server.script("/a", Reply(200, b"a", delay=0.05))
    server.script("/b", Reply(200, b"b", delay=0.05))
    await asyncio.gather(
        client.get(server.url("/a"), throttle_key="arxiv", min_interval=0.2),
        client.get(server.url("/b"), throttle_key="arxiv", min_interval=0.2),
        client.get(server.url("/a"), throttle_key="arxiv", min_interval=0.2),
    )
    assert server.max_active == 1
    ordered = sorted(server.requests, key=lambda r: r.started)
    for before, after in itertools.pairwise(ordered):
        assert after.started - before.finished >= 0.2


async def test_without_a_key_requests_run_concurrently(
    server: ScriptedServer, client: HttpClient
) -> None:
    server.script("/a", Reply(200, b"a", delay=0.2))
    await asyncio.gather(client.get(server.url("/a")), client.get(server.url("/a")))
    assert server.max_active == 2  # so the throttle is what serialises the test above


async def test_file_url_relative_and_absolute(tmp_path: Path, client: HttpClient) -> None:
    (Path.cwd() / "examples").mkdir()
    (Path.cwd() / "examples" / "papers.xml").write_bytes(b"<rss/>")
    relative = await client.get("file:examples/papers.xml", params={"ignored": 1})
    assert (relative.status, relative.body) == (200, b"<rss/>")
    absolute = tmp_path / "abs feed.xml"
    absolute.write_bytes(b"<feed/>")
    for url in (absolute.as_uri(), f"file:{absolute}", f"file://localhost{absolute}"):
        assert (await client.get(url)).body == b"<feed/>"


async def test_file_url_errors(tmp_path: Path, client: HttpClient) -> None:
    with pytest.raises(FetchError) as info:
        await client.get("file:missing/papers.xml")
    assert str(info.value) == (
        f"file:missing/papers.xml: no such file {Path.cwd() / 'missing' / 'papers.xml'}"
    )
    with pytest.raises(FetchError, match="names the host 'examples'"):
        await client.get("file://examples/papers.xml")
    with pytest.raises(FetchError, match="cannot read"):
        await client.get(tmp_path.as_uri())


async def test_session_ownership(server: ScriptedServer) -> None:
    server.script("/a", Reply(200, b"a"))
    async with aiohttp.ClientSession() as session:
        http = HttpClient(FAST, session)
        assert (await http.get(server.url("/a"))).body == b"a"
        await http.close()
        assert not session.closed  # borrowed, not ours to close
    owned = HttpClient(FAST)
    await owned.get(server.url("/a"))
    await owned.close()
    await owned.close()  # closing twice is harmless


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
        ({"RateLimit": '"api";r=0;t=55'}, 55.0),
        ({"RateLimit": '"api";r=12;t=3'}, 3.0),
        ({"Retry-After": "soon", "RateLimit": '"api";r=0;t=9'}, 9.0),
        ({"RateLimit": "garbage"}, None),
        ({}, None),
    ],
)
def test_server_wait(headers: dict[str, str], expected: float | None) -> None:
    assert server_wait(headers) == expected


def test_request_url_encodes_params_once() -> None:
    url = request_url("https://export.arxiv.org/api/query", {"search_query": "cat:cs.LG AND ti:x"})
    assert url == "https://export.arxiv.org/api/query?search_query=cat:cs.LG+AND+ti:x"
    assert request_url("https://rss.arxiv.org/rss/cs.LG+cs.CL") == (
        "https://rss.arxiv.org/rss/cs.LG+cs.CL"
    )
    assert request_url("https://example.org/für feed") == "https://example.org/f%C3%BCr%20feed"
    assert request_url("file:examples/papers.xml", {"x": 1}) == "file:examples/papers.xml"
