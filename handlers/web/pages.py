"""The public pages: the front page with its sign-up form and preview, the sign-up answer,
the confirm link, and asking for a new manage link. Thin: check the form, one call on the
self-service facade, render."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.accounts.addresses import CONFIRMATIONS_PER_DAY
from bot.errors import UserError
from bot.selfservice import FieldError
from bot.service import QueryTest, timezone_names
from handlers.web._context import (
    LIMITER,
    RATES,
    SELF,
    Form,
    checked_form,
    client_ip,
    limit,
    new_csrf,
)
from handlers.web.render import message_page, render_page

FORM_DEFAULTS = {"email": "", "query": "", "deliver": "digest", "timezone": "UTC", "hour": "8"}
FIELDS = tuple(FORM_DEFAULTS)


async def front_page(
    request: web.Request,
    *,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    test: QueryTest | None = None,
    status: int = 200,
) -> web.Response:
    values = {**FORM_DEFAULTS, **{k: v for k, v in (form or {}).items() if k in FIELDS}}
    return render_page(
        "front.html.j2",
        "New papers, by mail, for your query",
        status=status,
        overview=await request.app[SELF].overview(),
        form=values,
        errors=errors or {},
        test=test,
        csrf=new_csrf(request),
        zones=timezone_names(),
        error=next(iter((errors or {}).values()), ""),
    )


async def front(request: web.Request) -> web.Response:
    return await front_page(request)


async def preview(request: web.Request) -> web.Response:
    """The no-JavaScript preview: the form comes back filled in, the preview under it."""
    form = await checked_form(request)
    limit(request, "preview-ip", client_ip(request), request.app[RATES].preview_ip)
    try:
        test = await request.app[SELF].preview(form.get("query", ""))
    except FieldError as exc:
        return await front_page(request, form=form, errors={exc.field: str(exc)}, status=400)
    return await front_page(request, form=form, test=test)


async def preview_json(request: web.Request) -> web.Response:
    """The live preview as you type (GET: it changes nothing)."""
    wait = request.app[LIMITER].check(
        f"preview-ip:{client_ip(request)}", request.app[RATES].preview_ip
    )
    if wait:
        error = {"error": f"too many previews; try again in {wait} seconds"}
        return web.json_response(error, status=429, headers={"Retry-After": str(wait)})
    try:
        test = await request.app[SELF].preview(request.query.get("query", ""))
    except UserError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(test_json(test))


def test_json(test: QueryTest) -> dict[str, Any]:
    return {
        "query": test.query,
        "normalized": test.normalized,
        "days": test.days,
        "count": test.count,
        "total": test.total,
        "share": test.share,
        "per_day": test.per_day,
        "too_many": test.too_many,
        "top": [
            {"title": h.paper.title, "url": h.paper.url, "key": h.paper.key, "words": list(h.words)}
            for h in test.top
        ],
    }


async def subscribe(request: web.Request) -> web.Response:
    form = await checked_form(request)
    rates = request.app[RATES]
    limit(request, "subscribe-ip", client_ip(request), rates.subscribe_ip)
    address = form.get("email", "").strip().lower()
    if address:
        limit(request, "subscribe-address", address, rates.subscribe_address)
    try:
        result = await request.app[SELF].signup(*(form.get(name, "") for name in FIELDS))
    except FieldError as exc:
        return await front_page(request, form=form, errors={exc.field: str(exc)}, status=400)
    return render_page(
        "result.html.j2",
        "Check your inbox",
        address=result.address,
        per_day=CONFIRMATIONS_PER_DAY,
    )


async def confirm_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        address = request.app[SELF].core.confirm_link_address(token)
    except UserError as exc:
        return message_page("Not confirmed", str(exc), status=400, link=("/", "Front page"))
    return render_page(
        "button.html.j2",
        "Confirm your address",
        lines=[
            f"Press the button to confirm {address} for paperbell mail.",
            "Nothing happens until you do.",
        ],
        action=f"/confirm/{token}",
        csrf=new_csrf(request, token),
        hidden=[],
        button="Confirm",
    )


async def confirm(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:  # a bad link is said first: its CSRF token could never be right
        request.app[SELF].core.confirm_link_address(token)
    except UserError as exc:
        return message_page("Not confirmed", str(exc), status=400, link=("/", "Front page"))
    await checked_form(request, token)
    try:
        user, manage = await request.app[SELF].confirm(token)
    except UserError as exc:
        return message_page("Not confirmed", str(exc), status=400, link=("/", "Front page"))
    # Confirming never overrides an unsubscribe or a bounce stop: the page says so.
    done = "stopped" if user.email_suppressed else "confirmed"
    raise web.HTTPSeeOther(f"/manage/{manage}?done={done}")


async def new_link_form(request: web.Request, *lines: str, status: int = 200) -> web.Response:
    return render_page(
        "newlink.html.j2",
        "Get a link to your page",
        status=status,
        lines=lines or ("Type your address and we mail you a link to your page.",),
        csrf=new_csrf(request),
    )


async def manage_request(request: web.Request) -> web.Response:
    return await new_link_form(request)


async def manage_request_post(request: web.Request) -> web.Response:
    form = await checked_form(request)
    rates = request.app[RATES]
    limit(request, "link-ip", client_ip(request), rates.link_ip)
    address = form.get("email", "").strip().lower()
    if address:
        limit(request, "link-address", address, rates.link_address)
    try:
        shown = await request.app[SELF].request_link(address)
    except UserError as exc:
        return await new_link_form(request, str(exc), status=400)
    return message_page(
        "Check your inbox",
        f"If {shown} has a confirmed paperbell subscription, a new link to its page is on its "
        "way, and every older link stops working. Nothing is sent to other addresses.",
        link=("/", "Front page"),
    )
