"""aiohttp.web routes. Thin: read the token, call the core, render a small page.

RFC 8058: ``POST /unsubscribe/{token}`` with ``List-Unsubscribe=One-Click`` unsubscribes and
answers 200 — no redirect, no cookie. ``GET`` only shows a page with a button, because mail
scanners follow links and must never unsubscribe anyone. The confirm link works the same
way: a scanner that opens it must not confirm an address its owner never asked for, and so
does a 👍 / 👎 link in a mail (``/feedback/{token}``): GET shows what it would record,
POST records it; a link not signed by us is refused.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from bot.accounts.addresses import UNSUBSCRIBED
from bot.daemon.health import Health
from bot.errors import InvalidTokenError, UserError
from bot.models import User
from bot.service import Paperbell
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

log = logging.getLogger(__name__)

SERVICE = web.AppKey("service", Paperbell)
HealthCheck = Callable[[], Awaitable[Health]]
HEALTH: web.AppKey[HealthCheck] = web.AppKey("health")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>paperbell · {title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body_html: str, status: int = 200) -> web.Response:
    text = _PAGE.format(title=html.escape(title), body=body_html)
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


async def unsubscribe_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    form = (
        _p("Press the button to stop this email. Nothing happens until you do.")
        + f'<form method="post" action="/unsubscribe/{html.escape(token, quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button type=submit>Unsubscribe</button></form>"
    )
    return page("Unsubscribe", form)


async def unsubscribe(request: web.Request) -> web.Response:
    try:
        done = await request.app[SERVICE].unsubscribe_link(request.match_info["token"])
    except InvalidTokenError as exc:
        return page("Link not valid", _p(str(exc)), status=400)
    return page("Unsubscribed", _p(done))


async def confirm_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        address = request.app[SERVICE].confirm_link_address(token)
    except UserError as exc:
        return page("Not confirmed", _p(str(exc)), status=400)
    form = (
        _p(f"Press the button to confirm {address} for paperbell mail.")
        + _p("Nothing happens until you do.")
        + f'<form method="post" action="/confirm/{html.escape(token, quote=True)}">'
        "<button type=submit>Confirm</button></form>"
    )
    return page("Confirm your address", form)


async def confirm(request: web.Request) -> web.Response:
    try:
        user = await request.app[SERVICE].confirm_link(request.match_info["token"])
    except UserError as exc:
        return page("Not confirmed", _p(str(exc)), status=400)
    if user.email_suppressed:  # confirming never overrides an unsubscribe or a bounce stop
        return page("Mail stays stopped", _p(confirmed_but_stopped(user)))
    return page("Address confirmed", _p(f"{user.email} will now get your paperbell mail."))


def confirmed_but_stopped(user: User) -> str:
    if user.email_suppressed_reason == UNSUBSCRIBED:
        return (
            f"{user.email} was unsubscribed from all paperbell mail; confirming does not "
            "resume it. Subscribe again to resume."
        )
    why = user.email_suppressed_reason or "mail to it failed"
    return (
        f"{user.email} is confirmed, but paperbell sends it nothing ({why}). "
        "Set or subscribe the address again to resume."
    )


_SAY = {"like": ("👍", "more papers like it"), "dislike": ("👎", "fewer papers like it")}


async def feedback_form(request: web.Request) -> web.Response:
    """What the link would record, and a button; a mail scanner opening it records nothing."""
    token = request.match_info["token"]
    service = request.app[SERVICE]
    try:
        asked = service.feedback_link_paper(token)
    except UserError as exc:
        return page("Link not valid", _p(str(exc)), status=400)
    paper = await service.paper(asked.paper_key)
    title = paper.title if paper is not None else asked.paper_key
    mark, meaning = _SAY[asked.rating]
    form = (
        _p(f"Press the button to rate “{title}” {mark}: you will get {meaning}.")
        + _p("Nothing happens until you do.")
        + f'<form method="post" action="/feedback/{html.escape(token, quote=True)}">'
        f"<button type=submit>{mark} Record it</button></form>"
    )
    return page("Rate this paper", form)


async def feedback(request: web.Request) -> web.Response:
    try:
        asked, paper = await request.app[SERVICE].feedback_link(request.match_info["token"])
    except UserError as exc:
        return page("Not recorded", _p(str(exc)), status=400)
    mark, meaning = _SAY[asked.rating]
    return page(
        "Thank you",
        _p(f"Recorded {mark} for “{paper.title}”: from your next mail on, {meaning}."),
    )


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
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web request %s %s failed", request.method, shown_path(request))
        return page("Something went wrong", _p("Please try again later."), status=500)


async def _always_ok() -> Health:
    return Health(detail="running")


def build_web_app(
    service: Paperbell, health: HealthCheck = _always_ok, limits: WebLimits | None = None
) -> web.Application:
    app = web.Application(middlewares=[guard_requests, _errors], client_max_size=16 * 1024)
    app[SERVICE] = service
    app[HEALTH] = health
    app[GUARD] = Guard(limits or WebLimits())
    app.on_response_prepare.append(private_headers)
    app.router.add_get("/unsubscribe/{token}", unsubscribe_form)
    app.router.add_post("/unsubscribe/{token}", unsubscribe)
    app.router.add_get("/confirm/{token}", confirm_form)
    app.router.add_post("/confirm/{token}", confirm)
    app.router.add_get("/feedback/{token}", feedback_form)
    app.router.add_post("/feedback/{token}", feedback)
    app.router.add_get("/healthz", healthz)
    return app


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
