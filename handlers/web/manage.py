"""A person's own page, reached by the signed link in every mail: their subscriptions,
digest settings, recent papers, what their ranking learned from their 👍 / 👎, feeds and
exports, and the forms that change them.

Every change is a POST with the page's CSRF token, answered by a redirect back to the page
(so a reload never repeats it) with a fixed notice; a refused one re-renders the page
with the reason. A stale link (expired, or replaced by a newer one) offers a new one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.delivery.why_model import Why, why_lines
from bot.errors import InvalidTokenError, StaleLinkError, UserError
from bot.models import INT_MAX
from bot.selfservice import FieldError, SelfService
from bot.service import QueryTest, timezone_names
from handlers.web._context import SELF, Form, PageError, checked_form, new_csrf
from handlers.web.pages import new_link_form
from handlers.web.render import message_page, render_page

NOTICES = {
    "confirmed": "Your address is confirmed: your mail starts with the next match.",
    "stopped": (
        "Your address is confirmed, but confirming does not resume mail that was stopped "
        "(see below). Subscribe again on the front page to resume."
    ),
    "added": "Subscription added.",
    "edited": "Query saved.",
    "paused": "Subscription paused: it matches nothing until you resume it.",
    "resumed": "Subscription resumed.",
    "deleted": "Subscription deleted.",
    "settings": "Digest settings saved.",
    "paused-all": "All mail is paused.",
    "resumed-all": "Mail resumed.",
    "unsubscribed": "You are unsubscribed from everything: no more mail goes to this address.",
    "relevance": "Relevance floor saved.",
    "forgotten": "Your 👍 / 👎 are forgotten: your mail is ordered by your queries alone again.",
}


async def open_page(request: web.Request, token: str) -> None:
    """Raise the stale-link or invalid-link page unless ``token`` opens a page."""
    try:
        await request.app[SELF].open(token)
    except StaleLinkError as exc:
        raise PageError(await new_link_form(request, str(exc), status=410)) from None
    except InvalidTokenError as exc:
        raise PageError(await new_link_form(request, str(exc), status=403)) from None


async def manage_page(
    request: web.Request,
    token: str,
    *,
    test: QueryTest | None = None,
    why: Why | None = None,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    try:
        page = await request.app[SELF].manage(token)
    except StaleLinkError as exc:
        return await new_link_form(request, str(exc), status=410)
    except InvalidTokenError as exc:
        return await new_link_form(request, str(exc), status=403)
    notice = NOTICES.get(request.query.get("done", ""), "")
    return render_page(
        "manage.html.j2",
        "Your paperbell page",
        status=status,
        page=page,
        test=test,
        why=why,
        why_lines=why_lines(why) if why else [],
        form={"query": "", "deliver": "digest", "paper": "", **(form or {})},
        errors=errors or {},
        error=next(iter((errors or {}).values()), ""),
        notice=notice,
        csrf=new_csrf(request, page.token),
        zones=timezone_names(),
    )


async def manage(request: web.Request) -> web.Response:
    return await manage_page(request, request.match_info["token"])


Action = Callable[[SelfService, str, Form], Awaitable[str]]


def _sub(form: Form) -> int:
    try:
        number = int(form.get("sub", ""))
    except ValueError:
        number = 0
    if not 1 <= number <= INT_MAX:  # a number no store holds: the form was not ours
        raise FieldError("sub", "which subscription? The form lost its number; reload")
    return number


async def _add(s: SelfService, t: str, f: Form) -> str:
    await s.add(t, f.get("query", ""), f.get("deliver", "digest"))
    return "added"


async def _edit(s: SelfService, t: str, f: Form) -> str:
    await s.edit(t, _sub(f), f.get("query", ""))
    return "edited"


async def _pause(s: SelfService, t: str, f: Form) -> str:
    await s.pause(t, _sub(f), True)
    return "paused"


async def _resume(s: SelfService, t: str, f: Form) -> str:
    await s.pause(t, _sub(f), False)
    return "resumed"


async def _delete(s: SelfService, t: str, f: Form) -> str:
    await s.delete(t, _sub(f))
    return "deleted"


async def _settings(s: SelfService, t: str, f: Form) -> str:
    fields = ("timezone", "hour", "frequency", "weekday")
    await s.digest_settings(t, *(f.get(name, "") for name in fields))
    return "settings"


async def _pause_all(s: SelfService, t: str, f: Form) -> str:
    await s.pause_all(t, True)
    return "paused-all"


async def _resume_all(s: SelfService, t: str, f: Form) -> str:
    await s.pause_all(t, False)
    return "resumed-all"


async def _unsubscribe_all(s: SelfService, t: str, f: Form) -> str:
    await s.unsubscribe_all(t)
    return "unsubscribed"


async def _min_relevance(s: SelfService, t: str, f: Form) -> str:
    await s.min_relevance(t, _sub(f), f.get("min_relevance", ""))
    return "relevance"


async def _reset_learned(s: SelfService, t: str, f: Form) -> str:
    await s.reset_learned(t)
    return "forgotten"


ACTIONS: dict[str, Action] = {
    "add": _add,
    "edit": _edit,
    "pause": _pause,
    "resume": _resume,
    "delete": _delete,
    "settings": _settings,
    "pause-all": _pause_all,
    "resume-all": _resume_all,
    "unsubscribe-all": _unsubscribe_all,
    "min-relevance": _min_relevance,
    "reset-learned": _reset_learned,
}


async def manage_action(request: web.Request) -> web.Response:
    token, name = request.match_info["token"], request.match_info["action"]
    action = ACTIONS.get(name)
    if action is None and name not in ("preview", "why", "new-link"):
        raise web.HTTPNotFound()
    await open_page(request, token)
    form = await checked_form(request, token)
    if name == "preview":
        return await _preview(request, token, form)
    if name == "why":
        return await _why(request, token, form)
    if name == "new-link":
        return await _new_link(request, token)
    assert action is not None
    try:
        done = await action(request.app[SELF], token, form)
    except FieldError as exc:
        errors = {exc.field: str(exc)}
        return await manage_page(request, token, form=form, errors=errors, status=400)
    except UserError as exc:
        return await manage_page(request, token, form=form, errors={"": str(exc)}, status=400)
    raise web.HTTPSeeOther(f"/manage/{token}?done={done}#main")


async def _preview(request: web.Request, token: str, form: Form) -> web.Response:
    try:
        test = await request.app[SELF].preview(form.get("query", ""))
    except FieldError as exc:
        errors = {exc.field: str(exc)}
        return await manage_page(request, token, form=form, errors=errors, status=400)
    return await manage_page(request, token, test=test, form=form)


async def _why(request: web.Request, token: str, form: Form) -> web.Response:
    """Answered on the page itself (nothing changes, so no redirect): the paper's path."""
    try:
        why = await request.app[SELF].why(token, form.get("paper", ""))
    except FieldError as exc:
        errors = {exc.field: str(exc)}
        return await manage_page(request, token, form=form, errors=errors, status=400)
    return await manage_page(request, token, why=why, form=form)


async def _new_link(request: web.Request, token: str) -> web.Response:
    result = await request.app[SELF].new_link(token)
    if not result.resent:
        return message_page("No new link sent", result.reason, status=429)
    return message_page(
        "A new link is on its way",
        f"A new link to your page was mailed to {result.address}.",
        "This page's link, and every older one, no longer works.",
        link=("/", "Front page"),
    )


async def export(request: web.Request) -> web.Response:
    token, fmt = request.match_info["token"], request.match_info["fmt"]
    await open_page(request, token)
    body = await request.app[SELF].export(token, fmt)
    kind: dict[str, Any] = (
        {"content_type": "application/x-bibtex"}
        if fmt == "bib"
        else {"content_type": "application/json"}
    )
    response = web.Response(text=body, charset="utf-8", **kind)
    response.headers["Content-Disposition"] = f'attachment; filename="paperbell.{fmt}"'
    return response
