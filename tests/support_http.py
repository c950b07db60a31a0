"""A loopback HTTP server for source tests: scripted replies per path, every request recorded.

    async with ScriptedServer() as server:
        server.script("/papers", Reply(429, headers={"Retry-After": "1"}), Reply(200, b"[]"))
        ... server.url("/papers") ...
        server.requests[0].headers["User-Agent"]

A path's replies are used in order and the last one repeats. A reply that carries an ETag
or Last-Modified answers 304 when the request sends the same validator back, so
conditional GETs round-trip for real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts, concurrency)
    truncate_to: int | None = None  # send this many bytes, declare them all, then hang up


@dataclass(frozen=True)
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    started: float  # time.monotonic() on arrival
    finished: float  # time.monotonic() when the answer was written


class ScriptedServer:
    def __init__(self) -> None:
        self._scripts: dict[str, list[Reply]] = {}
        self.requests: list[Recorded] = []
        self.max_active = 0
        self._active = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, path: str, *replies: Reply) -> None:
        """Replies for ``path`` (or ``path?query`` for one exact query), in order."""
        self._scripts[path] = list(replies)

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        # Cancel a handler when its client gives up, so timeout tests end quickly.
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _next_reply(self, request: web.Request) -> Reply:
        replies = self._scripts.get(request.path_qs) or self._scripts.get(request.path)
        if not replies:
            return Reply(404, b"no script for this path")
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        self._active += 1
        self.max_active = max(self.max_active, self._active)
        try:
            reply = self._next_reply(request)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            return await self._answer(request, reply)
        finally:
            self._active -= 1
            self.requests.append(
                Recorded(
                    path=request.path,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    started=started,
                    finished=time.monotonic(),
                )
            )

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if _unchanged(request, reply):
            return web.Response(status=304, headers=reply.headers)
        if reply.truncate_to is None:
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_length = len(reply.body)
        await response.prepare(request)
        await response.write(reply.body[: reply.truncate_to])
        assert request.transport is not None
        request.transport.close()  # the client sees fewer bytes than Content-Length promised
        return response


def _unchanged(request: web.Request, reply: Reply) -> bool:
    etag = reply.headers.get("ETag")
    modified = reply.headers.get("Last-Modified")
    if etag and request.headers.get("If-None-Match") == etag:
        return True
    return bool(modified and request.headers.get("If-Modified-Since") == modified)


class SleepRecorder:
    """Stands in for asyncio.sleep between retries: records the wait, does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()
