"""A loopback Discord REST sink for the Discord bench: answers what the notifier calls, counts.

``DiscordNotifier`` needs a logged-in ``discord.Client`` and no gateway, so four endpoints
suffice: the two ``Client.login`` calls (``GET /users/@me``, ``GET
/oauth2/applications/@me``), opening a DM channel and posting a message. Every request is
recorded by route template, which is what the bench counts.

Why not the tests' fake Discord (tests/discord_fake*.py): bench/ may not import tests/,
and that fake is test machinery (gateway, interactions, faults, payload validation) far
beyond what a request count needs. Checking payloads against Discord's rules stays the
tests' job; the sink only refuses a message over Discord's 10 embeds or 6,000 embed
characters, the two limits the bench's requests-per-alert figure rests on.

discord.py reads its REST base from the class attribute ``Route.BASE``, so
``logged_in_client`` points it here for the block and always restores it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import discord
from aiohttp import web
from discord.http import Route

API = "/api/v10"
BOT_ID = 1_300_000_000_000_000_001
MAX_EMBEDS = 10
MAX_EMBED_CHARS = 6000
JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Request:
    method: str
    route: str  # the template after /api/v10, e.g. "/channels/{channel_id}/messages"


class DiscordSink:
    """``async with DiscordSink() as sink``: serving on 127.0.0.1 at ``sink.api_base``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._ids = itertools.count(BOT_ID + 1)
        self._runner: web.AppRunner | None = None
        self.api_base = ""

    async def __aenter__(self) -> DiscordSink:
        app = web.Application(middlewares=[self._record])
        app.router.add_get(API + "/users/@me", self._me)
        app.router.add_get(API + "/oauth2/applications/@me", self._application)
        app.router.add_post(API + "/users/@me/channels", self._open_dm)
        app.router.add_post(API + "/channels/{channel_id}/messages", self._post_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.api_base = f"http://{host}:{port}{API}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical.removeprefix(API) if resource else request.path
        self.requests.append(Request(request.method, route))
        response = await handler(request)
        # Plenty left in every bucket: discord.py keeps its rate-limit books as it would
        # against Discord, but never waits.
        response.headers.update(
            {
                "X-RateLimit-Limit": "50",
                "X-RateLimit-Remaining": "49",
                "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Reset-After": "1.000",
                "X-RateLimit-Bucket": route,
            }
        )
        return response

    async def _me(self, request: web.Request) -> web.StreamResponse:
        return _json(_user(BOT_ID, "paperbell", bot=True))

    async def _application(self, request: web.Request) -> web.StreamResponse:
        bot = _user(BOT_ID, "paperbell", bot=True)
        return _json(
            {"id": str(BOT_ID), "name": "paperbell", "icon": None, "description": "",
             "summary": "", "bot_public": False, "bot_require_code_grant": False,
             "bot": bot, "owner": bot, "team": None, "verify_key": "0" * 64, "flags": 0,
             "tags": [], "redirect_uris": [], "interactions_endpoint_url": None}
        )  # fmt: skip

    async def _open_dm(self, request: web.Request) -> web.StreamResponse:
        user_id = int((await request.json())["recipient_id"])
        user = _user(user_id, f"reader{user_id}")
        # One DM channel per user, as Discord keeps: derived from the user id, so stable.
        return _json({"id": str(user_id + 1), "type": 1, "recipients": [user]})

    async def _post_message(self, request: web.Request) -> web.StreamResponse:
        payload: JSON = await request.json()
        embeds: list[JSON] = payload.get("embeds") or []
        chars = sum(len(part) for embed in embeds for part in _texts(embed))
        if len(embeds) > MAX_EMBEDS or chars > MAX_EMBED_CHARS:
            error = {"code": 50035, "message": f"{len(embeds)} embeds, {chars} characters"}
            return _json(error, status=400)
        return _json(self._message(request.match_info["channel_id"], payload))

    def _message(self, channel_id: str, payload: JSON) -> JSON:
        embeds: list[JSON] = payload.get("embeds") or []
        return {
            "id": str(next(self._ids)), "channel_id": channel_id, "type": 0,
            "content": str(payload.get("content") or ""),
            "author": _user(BOT_ID, "paperbell", bot=True),
            "timestamp": datetime.now(UTC).isoformat(), "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [{"type": "rich", **e} for e in embeds],
            "components": list(payload.get("components") or []), "pinned": False,
            "flags": int(payload.get("flags") or 0), "nonce": payload.get("nonce"),
        }  # fmt: skip


def _json(data: JSON, status: int = 200) -> web.Response:
    # Exactly "application/json", no charset: discord.py compares the header verbatim and
    # reads anything else as text.
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def _user(user_id: int, name: str, *, bot: bool = False) -> JSON:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": None,
            "avatar": None, "bot": bot, "public_flags": 0}  # fmt: skip


def _texts(embed: JSON) -> list[str]:
    """The parts of an embed Discord counts towards its 6,000 characters."""
    fields = embed.get("fields") or []
    parts = [embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text")]
    parts.append((embed.get("author") or {}).get("name"))
    parts += [part for field in fields for part in (field.get("name"), field.get("value"))]
    return [str(part) for part in parts if part]


@contextlib.asynccontextmanager
async def logged_in_client(sink: DiscordSink) -> AsyncIterator[discord.Client]:
    """A ``discord.Client`` logged in against the sink (REST only, no gateway session)."""
    old_base, Route.BASE = Route.BASE, sink.api_base
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login("bench-token")
        yield client
    finally:
        await client.close()
        Route.BASE = old_base
