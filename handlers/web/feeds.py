"""Atom feeds of a person's matches (RFC 4287), all of them or one subscription's, for
people who read papers in a feed reader. Each entry lists the words that matched."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import web

from bot.errors import InvalidTokenError, StaleLinkError, UserError
from bot.selfservice import FeedData
from handlers.web._context import SELF, SERVICE
from handlers.web.render import render_text, web_url

ATOM = "application/atom+xml"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entries(data: FeedData, tag: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    for item in data.entries:
        paper, record = item.paper, item.record
        queries = [
            data.subscriptions[i].normalized for i in record.sub_ids if i in data.subscriptions
        ]
        url = web_url(paper.url)
        entries.append(
            {
                "id": f"{tag}:paper:{paper.key}",
                "title": paper.title,
                "updated": _stamp(record.matched_at),
                "published": _stamp(paper.published) if paper.published else None,
                "url": url,
                "authors": paper.authors[:20],
                "words": record.words,
                "queries": queries,
                "abstract": paper.abstract,
            }
        )
    return entries


async def feed(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        data = await request.app[SELF].feed(token)
    except StaleLinkError as exc:  # revoked with the manage links: gone, not forbidden
        return web.Response(text=f"{exc}\n", status=410, content_type="text/plain")
    except InvalidTokenError as exc:
        return web.Response(text=f"{exc}\n", status=403, content_type="text/plain")
    except UserError as exc:
        return web.Response(text=f"{exc}\n", status=410, content_type="text/plain")
    public = request.app[SERVICE].settings.public_url.rstrip("/")
    tag = f"tag:{urlsplit(public).hostname or 'localhost'},2026"
    what = f"subscription {data.subscription.normalized}" if data.subscription else "all matches"
    updated = data.entries[0].record.matched_at if data.entries else data.user.created_at
    body = render_text(
        "feed.atom.j2",
        feed_id=f"{tag}:user:{data.user.id}:"
        + (str(data.subscription.id) if data.subscription else "all"),
        title=f"paperbell · {what}",
        updated=_stamp(updated),
        self_url=f"{public}/feed/{token}.atom",
        home=public + "/",
        entries=_entries(data, tag),
    )
    return web.Response(text=body, content_type=ATOM, charset="utf-8")
