"""Interaction routes: the callback, followups, and the original response message.

Rules the fake enforces as Discord does: one callback per interaction (a second answers
40060), an autocomplete interaction accepts only type 8, followups and @original need an
acknowledged interaction (else 10015 Unknown Webhook), and message bodies pass the same
checks as channel messages. discord.py sends the callback with ``?with_response=1`` and
reads back ``{"interaction": ..., "resource": {"type", "message"}}``.
"""

from __future__ import annotations

from aiohttp import web

from tests.discord_fake_models import JSON, now_iso
from tests.discord_fake_rest import BODY, FILES, Handler
from tests.discord_fake_state import InteractionCallback, InteractionRecord
from tests.discord_fake_validate import Problem, choices_problems, message_problems
from tests.discord_fake_wire import ApiError, build_message, check_message, json_response, state_of

AUTOCOMPLETE = 4
MESSAGE_COMPONENT = 3
CHAT_INPUT_COMMAND_MESSAGE = 20
LOADING = 128  # message flag while a deferred response "thinks"
_EDITABLE = ("content", "embeds", "components", "attachments")


def _callback_problems(record: InteractionRecord, kind: int, data: JSON) -> list[Problem]:
    allowed = {8} if record.type == AUTOCOMPLETE else {4, 5, 9}
    if record.type == MESSAGE_COMPONENT:
        allowed = {4, 5, 6, 7, 9}  # a click may also update the message it is on
    if kind not in allowed:
        message = f"Response type {kind} is not valid for interaction type {record.type}."
        return [Problem("type", "INTERACTION_RESPONSE_TYPE_INVALID", message)]
    if kind == 8:
        return choices_problems(data.get("choices"))
    return message_problems(data) if kind == 4 else []


def _original_message(
    record: InteractionRecord, request: web.Request, data: JSON, kind: int
) -> JSON:
    state = state_of(request)
    flags = int(data.get("flags") or 0) | (LOADING if kind == 5 else 0)
    payload = data if kind == 4 else {"flags": flags}
    return build_message(
        state,
        record.channel_id,
        payload,
        request[FILES],
        type=CHAT_INPUT_COMMAND_MESSAGE,
        flags=flags,
        webhook_id=str(state.application_id),
        application_id=str(state.application_id),
    )


async def interaction_callback(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    record = state.interactions.get(int(request.match_info["interaction_id"]))
    if record is None or record.token != request.match_info["token"]:
        raise ApiError(404, 10062, "Unknown interaction")
    if record.callback is not None:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    body: JSON = request[BODY] or {}
    kind, data = int(body.get("type", 0)), body.get("data") or {}
    problems = _callback_problems(record, kind, data)
    if problems:
        raise ApiError.form(problems)
    if kind == 4:
        check_message(data, request[FILES])
    record.callback = InteractionCallback(kind, data)
    if kind in (4, 5):
        record.original = _original_message(record, request, data, kind)
    if request.query.get("with_response") not in ("1", "true", "True"):
        return web.Response(status=204)
    return json_response(_callback_response(record, kind))


def _callback_response(record: InteractionRecord, kind: int) -> JSON:
    original = record.original or {}
    resource: JSON = {"type": kind}
    if original:
        resource["message"] = original
    interaction: JSON = {
        "id": str(record.id),
        "type": record.type,
        "response_message_loading": kind == 5,
        "response_message_ephemeral": bool(int(original.get("flags") or 0) & 64),
    }
    if original:
        interaction["response_message_id"] = original["id"]
    return {"interaction": interaction, "resource": resource}


def _acknowledged(request: web.Request) -> InteractionRecord:
    state = state_of(request)
    record = state.interaction_by_token(request.match_info["token"])
    app_ok = int(request.match_info["app_id"]) == state.application_id
    if record is None or record.callback is None or not app_ok:
        raise ApiError(404, 10015, "Unknown Webhook")
    return record


async def create_followup(request: web.Request) -> web.StreamResponse:
    record = _acknowledged(request)
    state, payload = state_of(request), request[BODY] or {}
    check_message(payload, request[FILES])
    app_id = str(state.application_id)
    message = build_message(
        state, record.channel_id, payload, request[FILES], webhook_id=app_id, application_id=app_id
    )
    record.followups.append(message)
    if request.query.get("wait") in ("1", "true", "True"):
        return json_response(message)
    return web.Response(status=204)


def _original_or_404(record: InteractionRecord) -> JSON:
    if record.original is None:
        raise ApiError(404, 10008, "Unknown Message")
    return record.original


async def get_original(request: web.Request) -> web.StreamResponse:
    return json_response(_original_or_404(_acknowledged(request)))


async def edit_original(request: web.Request) -> web.StreamResponse:
    record = _acknowledged(request)
    original, payload = _original_or_404(record), request[BODY] or {}
    problems = message_problems(payload)
    if problems:
        raise ApiError.form(problems)
    record.edits.append(payload)
    record.original = _edited(original, payload)
    return json_response(record.original)


def _edited(message: JSON, payload: JSON) -> JSON:
    changes = {key: payload[key] for key in _EDITABLE if key in payload}
    if "embeds" in changes:
        changes["embeds"] = [{"type": "rich", **embed} for embed in changes["embeds"] or []]
    flags = int(message.get("flags") or 0) & ~LOADING
    return {**message, **changes, "flags": flags, "edited_timestamp": now_iso()}


async def delete_original(request: web.Request) -> web.StreamResponse:
    record = _acknowledged(request)
    _original_or_404(record)
    record.original = None
    return web.Response(status=204)


async def edit_followup(request: web.Request) -> web.StreamResponse:
    record = _acknowledged(request)
    message_id, payload = request.match_info["message_id"], request[BODY] or {}
    index = next((i for i, m in enumerate(record.followups) if m["id"] == message_id), None)
    if index is None:
        raise ApiError(404, 10008, "Unknown Message")
    problems = message_problems(payload)
    if problems:
        raise ApiError.form(problems)
    record.followups[index] = _edited(record.followups[index], payload)
    return json_response(record.followups[index])


ORIGINAL = "/webhooks/{app_id}/{token}/messages/@original"
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/interactions/{interaction_id}/{token}/callback", interaction_callback),
    ("POST", "/webhooks/{app_id}/{token}", create_followup),
    ("GET", ORIGINAL, get_original),
    ("PATCH", ORIGINAL, edit_original),
    ("DELETE", ORIGINAL, delete_original),
    ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", edit_followup),
)
