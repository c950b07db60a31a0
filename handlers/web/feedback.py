"""A mail's 👍 / 👎 and 📌 follow links: ``GET /feedback/{token}`` (``/follow/{token}``)
shows what the link would do and a button; ``POST`` (with the page's CSRF token and our
Origin) does it. A mail scanner opening the link changes nothing; a link not signed by us
is refused."""

from __future__ import annotations

from aiohttp import web

from bot.errors import UserError
from handlers.web._context import SERVICE, checked_form, new_csrf
from handlers.web.render import message_page, render_page

_SAY = {"like": ("👍", "more papers like it"), "dislike": ("👎", "fewer papers like it")}
_FRONT = ("/", "Front page")


async def feedback_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    service = request.app[SERVICE]
    try:
        asked = service.feedback_link_paper(token)
    except UserError as exc:
        return message_page("Link not valid", str(exc), status=400, link=_FRONT)
    paper = await service.paper(asked.paper_key)
    title = paper.title if paper is not None else asked.paper_key
    mark, meaning = _SAY[asked.rating]
    return render_page(
        "button.html.j2",
        "Rate this paper",
        lines=[
            f"Press the button to rate “{title}” {mark}: you will get {meaning}.",
            "Nothing happens until you do.",
        ],
        action=f"/feedback/{token}",
        csrf=new_csrf(request, token),
        hidden=[],
        button=f"{mark} Record it",
    )


async def feedback(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    service = request.app[SERVICE]
    try:  # a forged link is said first: its CSRF token could never be right
        service.feedback_link_paper(token)
    except UserError as exc:
        return message_page("Not recorded", str(exc), status=400, link=_FRONT)
    await checked_form(request, token)
    try:
        asked, paper = await service.feedback_link(token)
    except UserError as exc:
        return message_page("Not recorded", str(exc), status=400, link=_FRONT)
    mark, meaning = _SAY[asked.rating]
    return message_page(
        "Thank you", f"Recorded {mark} for “{paper.title}”: from your next mail on, {meaning}."
    )


async def follow_form(request: web.Request) -> web.Response:
    """``GET /follow/{token}``: what the link would do and a button; nothing changes."""
    token = request.match_info["token"]
    service = request.app[SERVICE]
    try:
        asked = service.follow_link_paper(token)
    except UserError as exc:
        return message_page("Link not valid", str(exc), status=400, link=_FRONT)
    paper = await service.paper(asked.paper_key)
    title = paper.title if paper is not None else asked.paper_key
    return render_page(
        "button.html.j2",
        "Follow this paper",
        lines=[
            f"Press the button to follow “{title}”: one short email when a new version, "
            "its code or many upvotes come.",
            "Nothing happens until you do.",
        ],
        action=f"/follow/{token}",
        csrf=new_csrf(request, token),
        hidden=[],
        button="📌 Follow it",
    )


async def follow(request: web.Request) -> web.Response:
    """``POST /follow/{token}`` (the page's CSRF token and our Origin): follows."""
    token = request.match_info["token"]
    service = request.app[SERVICE]
    try:  # a forged link is said first: its CSRF token could never be right
        service.follow_link_paper(token)
    except UserError as exc:
        return message_page("Not followed", str(exc), status=400, link=_FRONT)
    await checked_form(request, token)
    try:
        paper = await service.follow_link(token)
    except UserError as exc:
        return message_page("Not followed", str(exc), status=400, link=_FRONT)
    return message_page(
        "Following", f"You follow “{paper.title}”: one short email each time it changes."
    )
