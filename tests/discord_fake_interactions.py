"""Building INTERACTION_CREATE payloads as Discord would, and handles to await the answers.

A test says "carol runs /subscribe query:llm in #papers"; this module turns that into the
interaction Discord sends: the synced command's id and scope, typed options (types come
from the synced definition when there is one), ``resolved`` users/channels/roles, the
member with its ``permissions`` string, ``app_permissions``, locale and a fresh token.
Like Discord it refuses what a real user could not do: unknown options, missing required
options, or a synced command the member lacks ``default_member_permissions`` for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.discord_fake_models import (
    ALL_PERMISSIONS,
    JSON,
    MEMBER_PERMISSIONS,
    ChannelType,
    FakeChannel,
    FakeGuild,
    FakeRole,
    FakeUser,
    Perm,
)
from tests.discord_fake_state import DiscordState, InteractionCallback, InteractionRecord

OptionValue = str | int | float | bool | FakeUser | FakeChannel | FakeRole
APPLICATION_COMMAND, AUTOCOMPLETE = 2, 4
SUB_COMMAND, SUB_COMMAND_GROUP, USER, CHANNEL, ROLE = 1, 2, 6, 7, 8


class CommandUnavailableError(AssertionError):
    """Discord would not let this user run this command here (so no interaction is sent)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    name: str
    options: Mapping[str, OptionValue]
    user: FakeUser
    guild: FakeGuild | None
    channel_id: int
    subcommand: str | None = None
    group: str | None = None
    focused: str | None = None  # autocomplete: the option being typed
    locale: str = "en-US"
    permissions: int | None = None  # None: computed from the guild's roles


@dataclass(slots=True)
class _Resolved:
    users: JSON = field(default_factory=dict)
    members: JSON = field(default_factory=dict)
    channels: JSON = field(default_factory=dict)
    roles: JSON = field(default_factory=dict)

    def to_json(self) -> JSON:
        parts = {"users": self.users, "members": self.members}
        parts |= {"channels": self.channels, "roles": self.roles}
        return {name: value for name, value in parts.items() if value}


def member_permissions(inv: Invocation) -> int:
    if inv.permissions is not None:
        return inv.permissions
    return MEMBER_PERMISSIONS if inv.guild is None else inv.guild.permissions_of(inv.user.id)


def find_definition(state: DiscordState, inv: Invocation) -> tuple[JSON | None, int | None]:
    """The synced command and its scope: the guild's own first, then global."""
    scopes: list[int | None] = [inv.guild.id] if inv.guild else []
    for scope in [*scopes, None]:
        for command in state.commands.get(scope, []):
            if command["name"] == inv.name and command["type"] == 1:
                return command, scope
    return None, None


def check_available(definition: JSON, inv: Invocation) -> None:
    contexts = definition.get("contexts")
    where = 0 if inv.guild else 1
    if (contexts is not None and where not in contexts) or (
        inv.guild is None and definition.get("dm_permission") is False
    ):
        place = "in a server" if inv.guild else "in DMs"
        raise CommandUnavailableError(f"/{inv.name} is not available {place}")
    required = definition.get("default_member_permissions")
    if inv.guild is None or required is None:
        return
    held, needed = member_permissions(inv), int(required)
    allowed = held == ALL_PERMISSIONS if needed == 0 else held & needed == needed
    if not allowed:
        missing = Perm(needed & ~held) if needed else Perm.ADMINISTRATOR
        raise CommandUnavailableError(
            f"{inv.user.name} cannot see /{inv.name}: default_member_permissions needs {missing!r}"
        )


def _leaf_specs(definition: JSON | None, inv: Invocation) -> list[JSON] | None:
    if definition is None:
        return None
    specs: list[JSON] = definition.get("options") or []
    for wanted in (inv.group, inv.subcommand):
        if wanted is None:
            continue
        found = next((s for s in specs if s["name"] == wanted), None)
        if found is None:
            raise ValueError(f"/{inv.name} has no subcommand or group {wanted!r}")
        specs = found.get("options") or []
    return specs


def _infer_type(value: OptionValue) -> int:
    kinds: tuple[tuple[type, int], ...] = (
        (bool, 5),
        (int, 4),
        (float, 10),
        (FakeUser, USER),
        (FakeChannel, CHANNEL),
        (FakeRole, ROLE),
    )
    return next((kind for cls, kind in kinds if isinstance(value, cls)), 3)


def _raw(value: OptionValue, kind: int) -> Any:
    if isinstance(value, FakeUser | FakeChannel | FakeRole):
        return str(value.id)
    return str(value) if kind in (USER, CHANNEL, ROLE) else value


def _resolve(state: DiscordState, inv: Invocation, kind: int, raw: Any, into: _Resolved) -> None:
    guild, perms = inv.guild, str(member_permissions(inv))
    if kind == USER and int(raw) in state.users:
        into.users[raw] = state.users[int(raw)].to_json()
        member = guild.member(int(raw)) if guild else None
        if member is not None and guild is not None:
            into.members[raw] = {
                **member.to_json(with_user=False),
                "permissions": str(guild.permissions_of(member.user.id)),
            }
    elif kind == CHANNEL and guild is not None and guild.channel(int(raw)) is not None:
        channel = guild.channel(int(raw))
        assert channel is not None
        into.channels[raw] = {**channel.to_json(guild.id), "permissions": perms}
    elif kind == ROLE and guild is not None and guild.role(int(raw)) is not None:
        role = guild.role(int(raw))
        assert role is not None
        into.roles[raw] = role.to_json()


def build_options(
    state: DiscordState, inv: Invocation, specs: list[JSON] | None
) -> tuple[list[JSON], _Resolved]:
    by_name = {spec["name"]: spec for spec in specs or []}
    if specs is not None:
        unknown = set(inv.options) - set(by_name)
        if unknown:
            raise ValueError(f"/{inv.name} has no option(s) {sorted(unknown)}; has {list(by_name)}")
        missing = [n for n, s in by_name.items() if s.get("required") and n not in inv.options]
        if missing and inv.focused is None:
            raise ValueError(f"/{inv.name} needs option(s) {missing}")
    options, resolved = [], _Resolved()
    for name, value in inv.options.items():
        spec = by_name.get(name)
        kind = int(spec["type"]) if spec else _infer_type(value)
        entry: JSON = {"name": name, "type": kind, "value": _raw(value, kind)}
        if name == inv.focused:
            entry["focused"] = True
        else:
            _resolve(state, inv, kind, entry["value"], resolved)
        options.append(entry)
    return options, resolved


def _nest(options: list[JSON], inv: Invocation) -> list[JSON]:
    if inv.subcommand is not None:
        options = [{"name": inv.subcommand, "type": SUB_COMMAND, "options": options}]
    if inv.group is not None:
        options = [{"name": inv.group, "type": SUB_COMMAND_GROUP, "options": options}]
    return options


def command_data(state: DiscordState, inv: Invocation, *, enforce: bool) -> JSON:
    definition, scope = find_definition(state, inv)
    if definition is not None and enforce:
        check_available(definition, inv)
    options, resolved = build_options(state, inv, _leaf_specs(definition, inv))
    data: JSON = {
        "id": definition["id"] if definition else str(state.next_id()),
        "name": inv.name,
        "type": 1,
        "options": _nest(options, inv),
    }
    if resolved.to_json():
        data["resolved"] = resolved.to_json()
    if scope is not None:
        data["guild_id"] = str(scope)
    return data


def _place(state: DiscordState, inv: Invocation) -> JSON:
    """Where the interaction happened: channel, guild and member, or the DM and user."""
    guild = inv.guild
    if guild is None:
        channel = state.dm_channel_json(inv.user)
        owners = {"0": "0"}  # guild-installed app used in the bot's DM
        return {"channel": channel, "user": inv.user.to_json(), "context": 1, **_owners(owners)}
    member = guild.member(inv.user.id)
    found = guild.channel(inv.channel_id)
    if member is None or found is None:
        raise ValueError(f"{inv.user.name} / channel {inv.channel_id} not in guild {guild.name}")
    perms = str(member_permissions(inv))
    return {
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "channel": {**found.to_json(guild.id), "permissions": perms},
        "member": {**member.to_json(), "permissions": perms},
        "context": 0,
        **_owners({"0": str(guild.id)}),
    }


def _owners(owners: dict[str, str]) -> JSON:
    return {"authorizing_integration_owners": owners}


def build_interaction(
    state: DiscordState, inv: Invocation, *, kind: int, enforce: bool
) -> tuple[InteractionRecord, JSON]:
    data = command_data(state, inv, enforce=enforce)
    record = InteractionRecord(
        id=state.next_id(),
        token=f"aW50ZXJhY3Rpb24.{secrets.token_urlsafe(48)}",
        type=kind,
        name=inv.name,
        guild_id=inv.guild.id if inv.guild else None,
        channel_id=inv.channel_id,
        user_id=inv.user.id,
    )
    bot_perms = inv.guild.permissions_of(state.bot.id) if inv.guild else MEMBER_PERMISSIONS
    payload: JSON = {
        "id": str(record.id),
        "application_id": str(state.application_id),
        "type": kind,
        "token": record.token,
        "version": 1,
        "data": data,
        "channel_id": str(inv.channel_id),
        "locale": inv.locale,
        "app_permissions": str(bot_perms),
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
        **_place(state, inv),
    }
    return record, payload


def default_channel(state: DiscordState, guild: FakeGuild | None, user: FakeUser) -> int:
    if guild is None:
        return state.dm_channel_id(user.id)
    text = [c for c in guild.channels if c.type == ChannelType.GUILD_TEXT]
    if not text:
        raise ValueError(f"guild {guild.name} has no text channel to run a command in")
    return text[0].id


class InteractionHandle:
    """What the bot did with one interaction; every wait is bounded and explains a timeout."""

    def __init__(self, state: DiscordState, record: InteractionRecord, within: float) -> None:
        self._state = state
        self.record = record
        self.within = within  # seconds each wait may take before FakeTimeoutError

    @property
    def original(self) -> JSON | None:
        """The response message as it stands (after any PATCH @original)."""
        return self.record.original

    @property
    def followups(self) -> list[JSON]:
        return list(self.record.followups)

    async def response(self) -> InteractionCallback:
        await self._wait(lambda: self.record.callback is not None, "the callback")
        assert self.record.callback is not None
        return self.record.callback

    async def choices(self) -> list[JSON]:
        callback = await self.response()
        if callback.type != 8:
            raise AssertionError(f"expected autocomplete choices (type 8), got {callback}")
        return callback.choices

    async def followup(self, index: int = 0) -> JSON:
        """The ``index``-th followup message (0 = first), once it exists."""
        await self._wait(lambda: len(self.record.followups) > index, f"followup #{index + 1}")
        return self.record.followups[index]

    async def edited_original(self, edits: int = 1) -> JSON:
        """The response message once it has been edited ``edits`` times (PATCH @original)."""
        await self._wait(lambda: len(self.record.edits) >= edits, f"{edits} edit(s) of @original")
        if self.record.original is None:
            raise AssertionError(f"/{self.record.name}: the original response was deleted")
        return self.record.original

    async def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        await self._state.wait_for(
            predicate,
            within=self.within,
            what=f"{what} of /{self.record.name} (interaction {self.record.id})",
        )


MESSAGE_COMPONENT = 3
_SELECT_TYPES = frozenset({3, 5, 6, 7, 8})


def _component(message: JSON, custom_id: str) -> JSON | None:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("custom_id") == custom_id:
                return dict(component)
    return None


def build_component_interaction(
    state: DiscordState, inv: Invocation, message: JSON, custom_id: str, values: list[str]
) -> tuple[InteractionRecord, JSON]:
    """A click on a button or a choice in a select menu of ``message``, as Discord sends it.
    Like Discord it refuses what the message does not offer: an unknown custom id, a value
    that is no option, more or fewer choices than the menu allows."""
    component = _component(message, custom_id)
    if component is None:
        raise CommandUnavailableError(f"the message has no component {custom_id!r}")
    data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
    if component["type"] in _SELECT_TYPES:
        offered = {o["value"] for o in component.get("options") or []}
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        if not set(values) <= offered or not low <= len(values) <= high:
            raise CommandUnavailableError(f"{values!r} is not a valid choice in {custom_id!r}")
        data["values"] = list(values)
    record = InteractionRecord(
        id=state.next_id(),
        token=f"aW50ZXJhY3Rpb24.{secrets.token_urlsafe(48)}",
        type=MESSAGE_COMPONENT,
        name=custom_id,
        guild_id=inv.guild.id if inv.guild else None,
        channel_id=inv.channel_id,
        user_id=inv.user.id,
    )
    bot_perms = inv.guild.permissions_of(state.bot.id) if inv.guild else MEMBER_PERMISSIONS
    payload: JSON = {
        "id": str(record.id),
        "application_id": str(state.application_id),
        "type": MESSAGE_COMPONENT,
        "token": record.token,
        "version": 1,
        "data": data,
        "message": message,
        "channel_id": str(inv.channel_id),
        "locale": inv.locale,
        "app_permissions": str(bot_perms),
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
        **_place(state, inv),
    }
    return record, payload
