"""Discord's wire shapes shared by the fake's routes: error responses and message objects.

Errors look like Discord's (``{"code": 50007, "message": ...}``, 50035 with nested
``errors``); messages carry the fields discord.py reads, mentions are resolved the way
``allowed_mentions`` permits, and ``enforce_nonce`` makes a repeated send return the
first message instead of posting a duplicate, as Discord does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from tests.discord_fake_models import JSON, now_iso
from tests.discord_fake_state import DiscordState, PostedMessage
from tests.discord_fake_validate import (
    Problem,
    form_error_body,
    is_empty_message,
    message_problems,
)

STATE = web.AppKey("discord_fake_state", DiscordState)
_USER_MENTION = re.compile(r"<@!?(\d+)>")


class ApiError(Exception):
    """An error response in Discord's shape: ``{"code": ..., "message": ...}``."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: JSON = {"code": code, "message": message, **extra}

    @classmethod
    def form(cls, problems: list[Problem]) -> ApiError:
        body = form_error_body(problems)
        return cls(400, body["code"], body["message"], errors=body["errors"])


def json_response(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", no charset: discord.py compares the header verbatim
    # and treats anything else as text.
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def state_of(request: web.Request) -> DiscordState:
    return request.app[STATE]


def check_message(payload: JSON, files: tuple[str, ...]) -> None:
    if is_empty_message(payload, files=len(files)):
        raise ApiError(400, 50006, "Cannot send an empty message")
    problems = message_problems(payload)
    if problems:
        raise ApiError.form(problems)


def build_message(
    state: DiscordState, channel_id: int, payload: JSON, files: tuple[str, ...], **extra: Any
) -> JSON:
    """A message object as Discord returns it; ``extra`` overrides (type, flags, webhook_id)."""
    mentions, everyone = _mentions(state, payload)
    guild = state.guild_channel(channel_id)
    message: JSON = {
        "id": str(state.next_id()),
        "channel_id": str(channel_id),
        "type": 0,
        "content": str(payload.get("content") or ""),
        "author": state.bot.to_json(),
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": bool(payload.get("tts", False)),
        "mention_everyone": everyone,
        "mentions": mentions,
        "mention_roles": [],
        "attachments": [_attachment(state, name) for name in files],
        "embeds": [{"type": "rich", **embed} for embed in payload.get("embeds") or []],
        "components": list(payload.get("components") or []),
        "pinned": False,
        "flags": int(payload.get("flags") or 0),
        "nonce": payload.get("nonce"),
    }
    if guild is not None:
        message["guild_id"] = str(guild[0].id)
    return {**message, **extra}


def _attachment(state: DiscordState, filename: str) -> JSON:
    attachment_id = state.next_id()
    url = f"https://cdn.discordapp.com/attachments/0/{attachment_id}/{filename}"
    return {"id": str(attachment_id), "filename": filename, "size": 0, "url": url, "proxy_url": url}


def _mentions(state: DiscordState, payload: JSON) -> tuple[list[JSON], bool]:
    """Who the content pings, after ``allowed_mentions`` (absent means everything may ping)."""
    content = str(payload.get("content") or "")
    allowed = payload.get("allowed_mentions")
    parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or ())
    listed = {int(uid) for uid in (allowed or {}).get("users") or ()}
    ids = dict.fromkeys(int(uid) for uid in _USER_MENTION.findall(content))
    users = [
        state.users[uid].to_json()
        for uid in ids
        if uid in state.users and ("users" in parse or uid in listed)
    ]
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    return users, everyone


def repeated_nonce(state: DiscordState, channel_id: int, payload: JSON) -> PostedMessage | None:
    """The earlier message with this nonce when the sender asked Discord to enforce it."""
    nonce = payload.get("nonce")
    if nonce is None or not payload.get("enforce_nonce"):
        return None
    return next((m for m in state.messages[channel_id] if m.payload.get("nonce") == nonce), None)
