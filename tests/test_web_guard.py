"""The web endpoint against slow and hostile clients; what it says about itself and logs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.accounts.addresses import LinkBuilder
from bot.daemon.resources import build_service
from bot.logs import RepeatFilter, configure_logging
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import Store
from handlers.web import build_web_app, serve_web
from handlers.web._guard import WebLimits

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SLOW_CLIENTS = 150


@pytest.fixture
async def service(store: Store, tmp_path: Path) -> Paperbell:
    return await build_service(load_settings(data_dir=tmp_path), store, clock=lambda: NOW)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The daemon's own log configuration, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    real, sys.stderr = sys.stderr, buffer
    try:
        configure_logging("INFO")
    finally:
        sys.stderr = real
    yield buffer
    root.handlers[:], root.level = saved


async def trickle_headers(host: str, port: int) -> bool:
    """A client sending one header byte at a time; True once the server hangs up on it."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    try:
        async with asyncio.timeout(30):  # generous: the server's header timeout is 1 s
            while not reader.at_eof():
                writer.write(b"a")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await reader.read(4096)
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    finally:
        writer.close()


async def test_slow_clients_neither_take_health_down_nor_flood_the_log(
    service: Paperbell, log_output: io.StringIO
) -> None:
    limits = WebLimits(header_timeout=1.0, max_connections=40)
    async with serve_web(build_web_app(service, limits=limits), "127.0.0.1", 0) as (host, port):
        slow = [asyncio.create_task(trickle_headers(host, port)) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(0.5)  # all of them connected and trickling
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(10),
            http.get(f"http://{host}:{port}/healthz") as response,
        ):
            assert response.status == 200
        hung_up = await asyncio.gather(*slow)
    assert all(hung_up), f"{hung_up.count(False)} slow clients were never cut off"
    text = log_output.getvalue()
    assert text.count("connection cap") <= 2, text
    assert len(text) < 2000


async def test_past_the_cap_the_oldest_idle_connections_are_closed(service: Paperbell) -> None:
    limits = WebLimits(header_timeout=60, max_connections=5)
    async with serve_web(build_web_app(service, limits=limits), "127.0.0.1", 0) as (host, port):
        idle = [await asyncio.open_connection(host, port) for _ in range(20)]
        async with aiohttp.ClientSession() as http, asyncio.timeout(10):
            async with http.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200
            closed = [await _closed_soon(reader) for reader, _ in idle[:15]]
        for _, writer in idle:
            writer.close()
    assert all(closed)  # the oldest went first; the newest few may stay


async def _closed_soon(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(5):
            return await reader.read() == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_a_handler_that_hangs_answers_503_in_time(service: Paperbell) -> None:
    async def stuck() -> tuple[bool, str]:
        await asyncio.sleep(60)
        return True, "never"

    app = build_web_app(service, stuck, WebLimits(request_timeout=0.5))
    async with (
        serve_web(app, "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as http,
        asyncio.timeout(10),
        http.get(f"http://{host}:{port}/healthz") as response,
    ):
        assert response.status == 503


async def test_answers_are_never_cached_and_name_no_versions(service: Paperbell) -> None:
    async with (
        serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as http,
    ):
        for path in ("/healthz", "/no-such-page", "/unsubscribe/bad"):
            async with http.get(f"http://{host}:{port}{path}") as response:
                assert response.headers["Cache-Control"] == "no-store", path
                assert response.headers["Server"] == "paperbell", path
        async with http.put(f"http://{host}:{port}/healthz") as response:
            assert response.status == 405
            assert response.headers["Server"] == "paperbell"


async def test_unparsable_requests_get_a_private_answer_and_one_quiet_log_line(
    service: Paperbell, caplog: pytest.LogCaptureFixture
) -> None:
    token = "eyJzZWNyZXQiOiJ0b2tlbiJ9.c2lnbmF0dXJl"
    too_long = f"POST /unsubscribe/{token}{'a' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n"
    async with serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port):
        for request in (b"GARBAGE\r\n\r\n", too_long.encode()):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            head = (await reader.read()).split(b"\r\n\r\n")[0].decode()
            writer.close()
            assert head.startswith("HTTP/1.0 400"), head
            assert "Server: paperbell" in head and "Cache-Control: no-store" in head
    assert token not in caplog.text and "Traceback" not in caplog.text
    assert "unparsable HTTP request (LineTooLong) refused" in caplog.text


async def test_a_failed_request_logs_a_hash_of_the_token_not_the_token(
    service: Paperbell, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    links = LinkBuilder(service.signer, "https://bell.example.org")
    url = links.message_links("ada@example.org").unsubscribe_all or ""
    path = "/" + url.split("/", 3)[3]
    token = path.rsplit("/", 1)[1]
    await store.close()  # the database is gone: the handler fails unexpectedly
    async with (
        serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as http,
        http.post(f"http://{host}:{port}{path}", data={"List-Unsubscribe": "One-Click"}) as r,
    ):
        assert r.status == 500
    assert "web request POST /unsubscribe/<token " in caplog.text
    assert token not in caplog.text


def test_repeat_filter_collapses_a_flood_and_says_so() -> None:
    now = [0.0]
    flood = RepeatFilter(window=60, burst=3, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("web", logging.WARNING, __file__, 1, msg, args, None)

    assert flood.filter(record("client %s hung up", "a"))
    assert sum(flood.filter(record("client %s hung up", "a")) for _ in range(1000)) == 0
    records = [record("client %s hung up", n) for n in range(100)]
    assert [flood.filter(r) for r in records].count(True) == 2  # the call site's burst is 3
    assert records[0].getMessage() == "client 0 hung up [1000 more like this were dropped]"
    now[0] = 61.0
    later = record("client %s hung up", "a")
    assert flood.filter(later)
    assert later.getMessage() == "client a hung up [98 more like this were dropped]"
    assert flood.filter(record("something else"))
