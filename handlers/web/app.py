"""aiohttp.web routes: the pages (``pages``, ``manage``, ``feeds``, ``feedback``),
unsubscribe, health.

RFC 8058: ``POST /unsubscribe/{token}`` with ``List-Unsubscribe=One-Click`` unsubscribes and
answers 200 — no redirect, no cookie; mail providers send it from their servers without
``Origin`` or CSRF token (the signed link is the proof), while a browser pressing our
button sends both, and they are checked. ``GET`` only shows a page with a button,
because mail scanners follow links and must never unsubscribe anyone. The confirm link and
a mail's 👍 / 👎 and 📌 follow links (``feedback``) work the same way. No GET anywhere
changes anything.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from bot.daemon.health import Health
from bot.errors import InvalidTokenError
from bot.selfservice import SelfService
from bot.service import Paperbell
from handlers.web import feedback, feeds, manage, pages
from handlers.web._context import (
    HEALTH,
    LIMITER,
    RATES,
    SELF,
    SERVICE,
    HealthCheck,
    PageError,
    checked_form,
    new_csrf,
)
from handlers.web._guard import (
    GUARD,
    Guard,
    GuardedSite,
    WebLimits,
    guard_requests,
    make_runner,
    private_headers,
    shown_path,
)
from handlers.web.render import message_page, render_page
from handlers.web.security import RateLimiter, WebRates, add_security_headers

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
__all__ = ["HEALTH", "SERVICE", "build_web_app", "serve_web"]


async def unsubscribe_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    return render_page(
        "button.html.j2",
        "Unsubscribe",
        lines=["Press the button to stop this email. Nothing happens until you do."],
        action=f"/unsubscribe/{token}",
        csrf=new_csrf(request, token),
        hidden=[("List-Unsubscribe", "One-Click")],
        button="Unsubscribe",
    )


async def unsubscribe(request: web.Request) -> web.Response:
    """A mail provider's RFC 8058 POST comes from its servers, without ``Origin`` or a
    CSRF token (the signed link is the proof); a browser's, from our button, has both."""
    if "Origin" in request.headers:
        await checked_form(request, request.match_info["token"])
    try:
        done = await request.app[SERVICE].unsubscribe_link(request.match_info["token"])
    except InvalidTokenError as exc:
        return message_page("Link not valid", str(exc), status=400)
    return message_page("Unsubscribed", done)


async def healthz(request: web.Request) -> web.Response:
    """200 when healthy; 503 with every reason, one per line in ``detail``, each in ``reasons``."""
    health = await request.app[HEALTH]()
    body = {
        "ok": health.ok,
        "detail": "\n".join(health.reasons) or health.detail,
        "reasons": list(health.reasons),
        "notes": list(health.notes),
    }
    return web.json_response(body, status=200 if health.ok else 503)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The boundary: an unexpected error is logged once; the visitor sees a short page."""
    try:
        return await handler(request)
    except PageError as refused:
        return refused.response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web request %s %s failed", request.method, shown_path(request))
        return message_page("Something went wrong", "Please try again later.", status=500)


async def _always_ok() -> Health:
    return Health(detail="running")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    await private_headers(request, response)
    add_security_headers(response)


def build_web_app(
    service: Paperbell,
    health: HealthCheck = _always_ok,
    limits: WebLimits | None = None,
    rates: WebRates | None = None,
) -> web.Application:
    app = web.Application(middlewares=[guard_requests, _errors], client_max_size=16 * 1024)
    app[SERVICE] = service
    app[SELF] = SelfService(service)
    app[HEALTH] = health
    app[GUARD] = Guard(limits or WebLimits())
    app[RATES] = rates or WebRates()
    app[LIMITER] = RateLimiter()
    app.on_response_prepare.append(_headers)
    _routes(app.router)
    return app


def _routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", pages.front)
    router.add_post("/preview", pages.preview)
    router.add_get("/preview.json", pages.preview_json)
    router.add_post("/subscribe", pages.subscribe)
    router.add_get("/confirm/{token}", pages.confirm_form)
    router.add_post("/confirm/{token}", pages.confirm)
    router.add_get("/manage", pages.manage_request)
    router.add_post("/manage", pages.manage_request_post)
    router.add_get("/manage/{token}", manage.manage)
    router.add_get("/manage/{token}/export.{fmt:json|bib}", manage.export)
    router.add_post("/manage/{token}/{action}", manage.manage_action)
    router.add_get("/feed/{token}.atom", feeds.feed)
    router.add_get("/unsubscribe/{token}", unsubscribe_form)
    router.add_post("/unsubscribe/{token}", unsubscribe)
    router.add_get("/feedback/{token}", feedback.feedback_form)
    router.add_post("/feedback/{token}", feedback.feedback)
    router.add_get("/follow/{token}", feedback.follow_form)
    router.add_post("/follow/{token}", feedback.follow)
    router.add_get("/healthz", healthz)
    router.add_static("/static", STATIC)


@asynccontextmanager
async def serve_web(app: web.Application, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    """Listen until the block ends; yields the bound address (port 0 picks a free one)."""
    guard = app[GUARD]
    runner = make_runner(app, guard.limits)
    await runner.setup()
    try:
        site = GuardedSite(runner, host, port, guard)
        await site.start()
        bound = runner.addresses[0]
        yield str(bound[0]), int(bound[1])
    finally:
        await runner.cleanup()
