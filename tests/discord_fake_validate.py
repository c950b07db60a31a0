"""What Discord rejects, so a bad payload fails in tests the way it would in production.

Messages and command definitions are checked against Discord's documented limits; each
problem carries the dotted path, Discord's error code and its message. The fake turns a
list of problems into ``400 {"code": 50035, "message": "Invalid Form Body", "errors": ...}``,
which discord.py raises as ``HTTPException`` (``CommandSyncFailure`` during a sync).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

JSON = dict[str, Any]

_EMBED_TEXT_LIMITS = (
    (("title",), 256),
    (("description",), 4096),
    (("footer", "text"), 2048),
    (("author", "name"), 256),
)
_EMBED_URLS = (
    ("url",),
    ("author", "url"),
    ("author", "icon_url"),
    ("footer", "icon_url"),
    ("thumbnail", "url"),
    ("image", "url"),
)
_URL_SCHEMES = ("http://", "https://", "attachment://")
_MENTION_KINDS = {"users", "roles", "everyone"}
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # dotted, e.g. "embeds.0.fields.3.value"
    code: str
    message: str


def form_error_body(problems: list[Problem]) -> JSON:
    """Discord's nested ``errors`` document for a 50035 response."""
    errors: JSON = {}
    for problem in problems:
        node = errors
        for part in problem.path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": problem.code, "message": problem.message})
    return {"code": 50035, "message": "Invalid Form Body", "errors": errors}


def _too_long(path: str, limit: int) -> Problem:
    return Problem(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _dig(data: JSON, keys: tuple[str, ...]) -> Any:
    node: Any = data
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def is_empty_message(payload: JSON, *, files: int) -> bool:
    keys = ("content", "embeds", "components", "sticker_ids", "poll", "attachments")
    return files == 0 and not any(payload.get(key) for key in keys)


def message_problems(payload: JSON) -> list[Problem]:
    problems: list[Problem] = []
    content = payload.get("content")
    if content is not None and len(str(content)) > 2000:
        problems.append(_too_long("content", 2000))
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        problems.append(_too_long("embeds", 10))
    for index, embed in enumerate(embeds):
        problems += _embed_problems(f"embeds.{index}", embed)
    if sum(_embed_size(embed) for embed in embeds) > 6000:
        problems.append(
            Problem("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        )
    return problems + _allowed_mentions_problems(payload.get("allowed_mentions"))


def _embed_problems(path: str, embed: JSON) -> list[Problem]:
    problems = [
        _too_long(f"{path}.{'.'.join(keys)}", limit)
        for keys, limit in _EMBED_TEXT_LIMITS
        if len(str(_dig(embed, keys) or "")) > limit
    ]
    for keys in _EMBED_URLS:
        url = _dig(embed, keys)
        if url is not None and not str(url).startswith(_URL_SCHEMES):
            problems.append(
                Problem(
                    f"{path}.{'.'.join(keys)}", "URL_TYPE_INVALID_URL", "Not a well formed URL."
                )
            )
    color = embed.get("color")
    if color is not None and not (isinstance(color, int) and 0 <= color <= 0xFFFFFF):
        problems.append(Problem(f"{path}.color", "NUMBER_TYPE_MAX", "Must be 16777215 or less."))
    problems += _timestamp_problems(path, embed.get("timestamp"))
    return problems + _field_problems(path, embed.get("fields") or [])


def _timestamp_problems(path: str, value: Any) -> list[Problem]:
    try:
        if value is not None:
            datetime.fromisoformat(str(value))
    except ValueError:
        return [Problem(f"{path}.timestamp", "DATE_TYPE_PARSE", "Could not parse timestamp.")]
    return []


def _field_problems(path: str, fields: list[JSON]) -> list[Problem]:
    problems = [_too_long(f"{path}.fields", 25)] if len(fields) > 25 else []
    for index, field in enumerate(fields):
        for key, limit in (("name", 256), ("value", 1024)):
            text = str(field.get(key) or "")
            where = f"{path}.fields.{index}.{key}"
            if not text:
                problems.append(Problem(where, "BASE_TYPE_REQUIRED", "This field is required"))
            elif len(text) > limit:
                problems.append(_too_long(where, limit))
    return problems


def _embed_size(embed: JSON) -> int:
    texts = [_dig(embed, keys) for keys, _ in _EMBED_TEXT_LIMITS]
    for field in embed.get("fields") or []:
        texts += [field.get("name"), field.get("value")]
    return sum(len(str(text)) for text in texts if text)


def _allowed_mentions_problems(allowed: Any) -> list[Problem]:
    if allowed is None:
        return []
    unknown = set(allowed.get("parse") or ()) - _MENTION_KINDS
    if unknown:
        message = f"Value(s) {sorted(unknown)} are not valid; use users, roles or everyone."
        return [Problem("allowed_mentions.parse", "BASE_TYPE_CHOICES", message)]
    return []


def choices_problems(choices: Any) -> list[Problem]:
    """An autocomplete answer: at most 25 choices, each with a 1–100 character name."""
    if not isinstance(choices, list):
        return [Problem("data.choices", "BASE_TYPE_REQUIRED", "This field is required")]
    problems = [_too_long("data.choices", 25)] if len(choices) > 25 else []
    for index, choice in enumerate(choices):
        if not 1 <= len(str(choice.get("name") or "")) <= 100:
            problems.append(_too_long(f"data.choices.{index}.name", 100))
        if "value" not in choice:
            problems.append(
                Problem(
                    f"data.choices.{index}.value", "BASE_TYPE_REQUIRED", "This field is required"
                )
            )
    return problems


def commands_problems(commands: Any) -> list[Problem]:
    """A bulk-overwrite body: at most 100 commands, names unique per type, each well formed."""
    if not isinstance(commands, list):
        return [Problem("_root", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")]
    problems = [_too_long("_root", 100)] if len(commands) > 100 else []
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        key = (int(command.get("type", 1)), str(command.get("name")))
        if key in seen:
            message = f"Application command names must be unique ({key[1]!r} repeats)"
            problems.append(
                Problem(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", message)
            )
        seen.add(key)
        problems += _definition_problems(str(index), command, slash=key[0] == 1)
    return problems


def _definition_problems(path: str, item: JSON, *, slash: bool) -> list[Problem]:
    """One command or option: name and description rules, then its options in order."""
    problems: list[Problem] = []
    name = str(item.get("name") or "")
    if not _COMMAND_NAME.match(name) or (slash and name != name.lower()):
        message = f"Command name {name!r} is invalid: 1-32 lowercase letters, digits, - or _."
        problems.append(Problem(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", message))
    if slash and not 1 <= len(str(item.get("description") or "")) <= 100:
        message = "Must be between 1 and 100 in length."
        problems.append(Problem(f"{path}.description", "BASE_TYPE_BAD_LENGTH", message))
    if len(item.get("choices") or []) > 25:
        problems.append(_too_long(f"{path}.choices", 25))
    return problems + _options_problems(path, item.get("options") or [], slash=slash)


def _options_problems(path: str, options: list[JSON], *, slash: bool) -> list[Problem]:
    problems = [_too_long(f"{path}.options", 25)] if len(options) > 25 else []
    optional_seen = False
    for index, option in enumerate(options):
        where = f"{path}.options.{index}"
        if option.get("required") and optional_seen:
            message = "Required options must be placed before non-required options"
            problems.append(Problem(where, "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", message))
        optional_seen = optional_seen or not option.get("required", False)
        problems += _definition_problems(where, option, slash=slash)
    return problems
