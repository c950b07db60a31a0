"""The fake REST API under /api/v10: routing, recording, auth, faults, rate-limit headers.

Every request passes through one middleware that parses the body (JSON, or a multipart
upload's ``payload_json``), answers an injected fault if one matches, checks the bot token
(webhook and interaction-callback routes authenticate by their token instead), calls the
route, adds ``X-RateLimit-*`` headers discord.py accepts, records the exchange and wakes
waiters. Unknown routes answer 404 with a message naming the route, and are recorded.
Bot routes live here; interaction routes are in ``discord_fake_webhooks``, message and
error shapes in ``discord_fake_wire``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from tests.discord_fake_models import JSON, FakeUser
from tests.discord_fake_state import UNKNOWN_ROUTE, DiscordState, PostedMessage, RecordedRequest
from tests.discord_fake_validate import Problem, commands_problems
from tests.discord_fake_wire import (
    ApiError,
    build_message,
    check_message,
    json_response,
    repeated_nonce,
    state_of,
)

API_PREFIX = "/api/v10"
BODY: web.RequestKey[Any] = web.RequestKey("discord_fake_body")
FILES: web.RequestKey[tuple[str, ...]] = web.RequestKey("discord_fake_files")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- middleware ----------------------------------------------------------------------------


async def _read_body(request: web.Request) -> tuple[Any, tuple[str, ...]]:
    if request.content_type == "multipart/form-data":
        payload, files = None, []
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif part.filename:
                await part.read()
                files.append(part.filename)
        return payload, tuple(files)
    text = await request.text() if request.can_read_body else ""
    try:
        return (json.loads(text) if text else None), ()
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def _ratelimit_headers(route: str) -> dict[str, str]:
    # Plenty left in every bucket, so discord.py never pre-emptively sleeps.
    bucket = hashlib.sha1(route.encode()).hexdigest()[:16]
    return {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": bucket,
    }


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None or request.match_info.handler is unknown_route:
        return UNKNOWN_ROUTE
    return resource.canonical.removeprefix(API_PREFIX)


def _authorised(request: web.Request, route: str) -> bool:
    if route.startswith(("/interactions/", "/webhooks/")):
        return True  # these authenticate by the interaction token in the path
    return request.headers.get("Authorization") == f"Bot {state_of(request).token}"


async def _take_body(request: web.Request) -> ApiError | None:
    """Parse the body into BODY/FILES for the route and the record; keep a parse error."""
    request[BODY], request[FILES] = None, ()
    try:
        request[BODY], request[FILES] = await _read_body(request)
    except ApiError as err:
        return err
    return None


async def _answer(request: web.Request, handler: Handler, route: str) -> web.StreamResponse:
    # Discord's order: unknown route, then authentication, then the body.
    body_error = await _take_body(request)
    try:
        if route != UNKNOWN_ROUTE and not _authorised(request, route):
            raise ApiError(401, 0, "401: Unauthorized")
        if body_error is not None and route != UNKNOWN_ROUTE:
            raise body_error
        return await handler(request)
    except ApiError as err:
        return json_response(err.body, status=err.status)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX + "/"):
        return await handler(request)  # the gateway websocket
    state, route = state_of(request), _route_of(request)
    path = request.path.removeprefix(API_PREFIX)
    fault = state.take_fault(request.method, path, route)
    if fault is None:
        response = await _answer(request, handler, route)
    else:
        await _take_body(request)
        response = _fault_response(fault.body, fault.status)
    for name, value in _ratelimit_headers(route).items():
        response.headers.setdefault(name, value)
    if fault is not None:
        response.headers.update(fault.headers)
    state.requests.append(_record(request, route, response.status, injected=fault is not None))
    await state.changed()
    return response


def _fault_response(body: Any, status: int) -> web.Response:
    if isinstance(body, str):  # e.g. Cloudflare's HTML ban page
        return web.Response(text=body, status=status, content_type="text/html")
    return json_response(body, status)


def _record(request: web.Request, route: str, status: int, *, injected: bool) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=request.path.removeprefix(API_PREFIX),
        route=route,
        query=dict(request.query),
        json=request.get(BODY),
        files=request.get(FILES, ()),
        status=status,
        at=datetime.now(UTC),
        injected=injected,
    )


# --- routes --------------------------------------------------------------------------------


def _user(state: DiscordState, user_id: int) -> FakeUser:
    user = state.users.get(user_id)
    if user is None:
        raise ApiError(404, 10013, "Unknown User")
    return user


async def get_gateway(request: web.Request) -> web.StreamResponse:
    url = str(request.url.with_scheme("ws").with_path("/gateway").with_query(None))
    if request.path.endswith("/bot"):
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": url, "shards": 1, "session_start_limit": limit})
    return json_response({"url": url})


async def get_me(request: web.Request) -> web.StreamResponse:
    bot = state_of(request).bot
    return json_response({**bot.to_json(), "verified": True, "mfa_enabled": False})


async def get_user(request: web.Request) -> web.StreamResponse:
    user = _user(state_of(request), int(request.match_info["user_id"]))
    return json_response(user.to_json())


async def get_application(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    owner = next(iter(state.guilds.values()), None)
    return json_response(
        {
            "id": str(state.application_id),
            "name": state.bot.name,
            "icon": None,
            "description": "",
            "summary": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "bot": state.bot.to_json(),
            "owner": _user(state, owner.owner_id if owner else state.bot.id).to_json(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(state.guilds),
        }
    )


async def create_dm(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    recipient = (request[BODY] or {}).get("recipient_id")
    if recipient is None:
        raise ApiError.form(
            [Problem("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")]
        )
    user = _user(state, int(recipient))
    state.opened_dms[user.id] = state.dm_channel_id(user.id)
    return json_response(state.dm_channel_json(user))


async def get_channel(request: web.Request) -> web.StreamResponse:
    state, channel_id = state_of(request), int(request.match_info["channel_id"])
    found = state.guild_channel(channel_id)
    if found is not None:
        return json_response(found[1].to_json(found[0].id))
    recipient = state.dm_recipient(channel_id)
    if recipient is None:
        raise ApiError(404, 10003, "Unknown Channel")
    return json_response(state.dm_channel_json(recipient))


async def post_message(request: web.Request) -> web.StreamResponse:
    state, channel_id = state_of(request), int(request.match_info["channel_id"])
    recipient = state.dm_recipient(channel_id)
    if state.guild_channel(channel_id) is None and recipient is None:
        raise ApiError(404, 10003, "Unknown Channel")
    if recipient is not None and not recipient.dms_open:
        raise ApiError(403, 50007, "Cannot send messages to this user")
    payload: JSON = request[BODY] or {}
    check_message(payload, request[FILES])
    earlier = repeated_nonce(state, channel_id, payload)
    if earlier is not None:
        return json_response(earlier.message)
    message = build_message(state, channel_id, payload, request[FILES])
    state.messages[channel_id].append(PostedMessage(channel_id, payload, message))
    return json_response(message)


async def typing(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


def _command_scope(request: web.Request) -> int | None:
    state = state_of(request)
    if int(request.match_info["app_id"]) != state.application_id:
        raise ApiError(
            403, 20012, "You are not authorized to perform this action on this application"
        )
    guild_id = request.match_info.get("guild_id")
    if guild_id is not None and int(guild_id) not in state.guilds:
        raise ApiError(403, 50001, "Missing Access")
    return None if guild_id is None else int(guild_id)


def _echo_command(state: DiscordState, scope: int | None, command: JSON) -> JSON:
    kind, name = int(command.get("type", 1)), command["name"]
    known = {(c["type"], c["name"]): c["id"] for c in state.commands.get(scope, [])}
    permissions = command.get("default_member_permissions")
    echo: JSON = {
        "description": "",
        "options": [],
        "nsfw": False,
        "contexts": None,
        "integration_types": [0],
        **command,
        "id": known.get((kind, name)) or str(state.next_id()),
        "application_id": str(state.application_id),
        "version": str(state.next_id()),
        "type": kind,
        "default_member_permissions": None if permissions is None else str(permissions),
    }
    if scope is not None:
        echo["guild_id"] = str(scope)
    return echo


async def put_commands(request: web.Request) -> web.StreamResponse:
    state, scope = state_of(request), _command_scope(request)
    payload = request[BODY]
    problems = commands_problems(payload)
    if problems:
        raise ApiError.form(problems)
    state.command_payloads[scope] = payload
    state.commands[scope] = [_echo_command(state, scope, command) for command in payload]
    return json_response(state.commands[scope])


async def get_commands(request: web.Request) -> web.StreamResponse:
    scope = _command_scope(request)
    return json_response(state_of(request).commands.get(scope, []))


async def unknown_route(request: web.Request) -> web.StreamResponse:
    raise ApiError(
        404,
        0,
        f"fake Discord has no route for {request.method} {request.path}; "
        "add it to tests/discord_fake_rest.py or tests/discord_fake_webhooks.py",
    )


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/gateway", get_gateway),
    ("GET", "/gateway/bot", get_gateway),
    ("GET", "/users/@me", get_me),
    ("GET", "/users/{user_id}", get_user),
    ("POST", "/users/@me/channels", create_dm),
    ("GET", "/oauth2/applications/@me", get_application),
    ("GET", "/applications/@me", get_application),
    ("GET", "/channels/{channel_id}", get_channel),
    ("POST", "/channels/{channel_id}/messages", post_message),
    ("POST", "/channels/{channel_id}/typing", typing),
    ("PUT", "/applications/{app_id}/commands", put_commands),
    ("GET", "/applications/{app_id}/commands", get_commands),
    ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", put_commands),
    ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", get_commands),
)


def add_routes(app: web.Application, routes: tuple[tuple[str, str, Handler], ...]) -> None:
    for method, template, handler in routes:
        # Ids are digits, so "/users/@me" and "/messages/@original" never match an id slot.
        path = re.sub(r"\{(\w+_id)\}", r"{\1:\\d+}", template)
        app.router.add_route(method, API_PREFIX + path, handler)


def add_fallback(app: web.Application) -> None:
    app.router.add_route("*", API_PREFIX + "/{tail:.*}", unknown_route)
