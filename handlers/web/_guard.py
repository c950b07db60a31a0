"""What keeps the web endpoint up against slow or hostile clients, and quiet about tokens.

aiohttp has no separate header-read timeout, but its keep-alive timer starts when a
connection opens and is only cleared once a request's headers are complete: set short, it
closes a client that trickles its headers (and an idle keep-alive one) after that many
seconds. The handler, and any body it reads, runs under ``request_timeout``. Past
``max_connections`` a new connection first closes the oldest one with no request in a
handler, so a flood of slow clients cannot lock out ``/healthz``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

log = logging.getLogger(__name__)

SERVER_NAME = "paperbell"  # no versions: they only help an attacker pick an exploit
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class WebLimits:
    header_timeout: float = 10.0  # from connect (or the last response) to complete headers
    request_timeout: float = 30.0  # one handler, reading the (16 KB at most) body included
    max_connections: int = 256
    max_line_size: int = 4096  # request line and each header; a token URL is ~150 bytes


@dataclass(frozen=True, slots=True)
class Guard:
    limits: WebLimits
    busy: set[object] = field(default_factory=set)  # protocols with a request in a handler

    def make_room(self, server: Server) -> None:
        """Before accepting a connection at the cap, close the oldest idle ones."""
        # A closed connection stays listed until its task ends: count only the live ones.
        open_now = [handler for handler in server.connections if handler.transport is not None]
        excess = len(open_now) + 1 - self.limits.max_connections
        if excess <= 0:
            return
        idle = [handler for handler in open_now if handler not in self.busy]
        for handler in idle[:excess]:
            handler.force_close()
        log.warning(  # one constant line, so the log's repeat filter collapses a flood
            "web endpoint at its %d-connection cap: closing the oldest idle connections",
            self.limits.max_connections,
        )


GUARD = web.AppKey("guard", Guard)


def shown_path(request: web.Request) -> str:
    """The path for logs: a token is a credential, so only a short hash of it is kept."""
    token = request.match_info.get("token")
    if not token:
        return request.path
    digest = hashlib.sha256(token.encode()).hexdigest()[:10]
    return request.path.replace(token, f"<token {digest}>")


@web.middleware
async def guard_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    guard = request.app[GUARD]
    protocol = request.protocol
    guard.busy.add(protocol)
    try:
        async with asyncio.timeout(guard.limits.request_timeout):
            return await handler(request)
    except TimeoutError:
        log.warning("web request %s %s timed out", request.method, shown_path(request))
        raise web.HTTPServiceUnavailable(text="Timed out; please try again.") from None
    finally:
        guard.busy.discard(protocol)


def _private(response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME
    response.headers["Cache-Control"] = "no-store"


async def private_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer is personal or live: never cache it (parse errors: ``_Handler``)."""
    _private(response)


class _Handler(web.RequestHandler):
    """aiohttp's connection handler, with its answer to an unparsable request made private
    and logged as one line: the default logs a traceback quoting the request, token and all.
    """

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        _private(response)
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            log.warning("unparsable HTTP request (%s) refused", type(exc).__name__)
        else:
            super().log_exception(*args, **kw)


def _handler_options(limits: WebLimits) -> dict[str, Any]:
    return {
        "keepalive_timeout": limits.header_timeout,
        "max_line_size": limits.max_line_size,
        "max_field_size": limits.max_line_size,
        "max_headers": 64,
        "lingering_time": 2.0,  # reading an unread body after the answer, at most
        "access_log": None,
    }


def make_runner(app: web.Application, limits: WebLimits) -> web.AppRunner:
    """An ``AppRunner`` with aiohttp's server settings for these limits, no access log."""
    # handler_cancellation: a client that hangs up frees its handler at once.
    return web.AppRunner(app, handler_cancellation=True, **_handler_options(limits))


class GuardedSite(web.TCPSite):
    """``TCPSite`` whose protocol factory makes room under the connection cap."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: Guard) -> None:
        super().__init__(runner, host, port)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would bind directly
        server = self._runner.server
        assert server is not None
        guard, loop = self.guard, asyncio.get_running_loop()
        options = _handler_options(guard.limits)

        def protocol() -> asyncio.Protocol:
            guard.make_room(server)
            return _Handler(server, loop=loop, **options)  # what server() makes, but _Handler

        self._server = await loop.create_server(
            protocol, self._host, self._port, backlog=self._backlog
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]
