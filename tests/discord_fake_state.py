"""The fake Discord's memory: what was asked of it, what it holds, and how tests wait on it.

Every REST call and gateway event changes ``DiscordState`` and then wakes ``wait_for``,
so tests wait on conditions ("a followup arrived") rather than sleeping.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.discord_fake_models import (
    JSON,
    ChannelType,
    FakeChannel,
    FakeGuild,
    FakeUser,
    SnowflakeFactory,
)

UNKNOWN_ROUTE = "<unknown>"


class FakeTimeoutError(AssertionError):
    """A test waited for something the bot never did; the message lists recent requests."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str  # concrete, after /api/v10: "/channels/130.../messages"
    route: str  # template: "/channels/{channel_id}/messages", or UNKNOWN_ROUTE
    query: Mapping[str, str]
    json: Any  # the JSON body (payload_json for multipart), None when there was none
    files: tuple[str, ...]  # file names of a multipart upload
    status: int
    at: datetime
    injected: bool = False  # answered by fail_next, not by the route

    def __str__(self) -> str:
        mark = " (injected)" if self.injected else ""
        return f"{self.method} {self.path} -> {self.status}{mark}"


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A message the bot created with POST /channels/{id}/messages."""

    channel_id: int
    payload: JSON  # exactly what the bot sent (allowed_mentions, embeds, ...)
    message: JSON  # what the fake answered, as Discord would

    @property
    def content(self) -> str:
        return str(self.message["content"])

    @property
    def embeds(self) -> list[JSON]:
        return list(self.message["embeds"])


@dataclass(frozen=True, slots=True)
class InteractionCallback:
    """The bot's answer to an interaction: POST /interactions/{id}/{token}/callback."""

    type: int  # 4 message, 5 deferred message, 6/7 component, 8 autocomplete choices, 9 modal
    data: JSON

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    @property
    def content(self) -> str:
        return str(self.data.get("content") or "")

    @property
    def embeds(self) -> list[JSON]:
        return list(self.data.get("embeds") or [])

    @property
    def choices(self) -> list[JSON]:
        return list(self.data.get("choices") or [])


@dataclass(slots=True)
class InteractionRecord:
    """One interaction the fake sent and everything the bot did with it (mutable)."""

    id: int
    token: str
    type: int  # 2 application command, 4 autocomplete
    name: str
    guild_id: int | None
    channel_id: int
    user_id: int
    callback: InteractionCallback | None = None
    original: JSON | None = None  # the response message as it stands now
    followups: list[JSON] = field(default_factory=list)
    edits: list[JSON] = field(default_factory=list)  # PATCH @original bodies, in order


@dataclass(slots=True)
class Fault:
    method: str | None
    path: str  # a route template or a concrete path, which may use * wildcards
    status: int
    body: Any
    headers: Mapping[str, str]
    remaining: int

    def matches(self, method: str, path: str, route: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path == route or fnmatch.fnmatchcase(path, self.path)


def parse_route_pattern(pattern: str) -> tuple[str | None, str]:
    """``"POST /channels/{channel_id}/messages"`` → ("POST", "/channels/{channel_id}/messages")."""
    method, _, path = pattern.strip().rpartition(" ")
    if not path.startswith("/"):
        raise ValueError(f"route pattern must be '[METHOD] /path', got {pattern!r}")
    return (method.upper() or None), path


class DiscordState:
    def __init__(
        self,
        *,
        bot: FakeUser,
        application_id: int,
        guilds: tuple[FakeGuild, ...],
        users: tuple[FakeUser, ...],
        token: str,
    ) -> None:
        self.bot = bot
        self.application_id = application_id
        self.guilds = {guild.id: guild for guild in guilds}
        members = (m.user for g in guilds for m in g.members)
        self.users = {user.id: user for user in (bot, *members, *users)}
        self.token = token
        self.next_id = SnowflakeFactory()
        self.requests: list[RecordedRequest] = []
        self.messages: defaultdict[int, list[PostedMessage]] = defaultdict(list)
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id, stable
        self.opened_dms: dict[int, int] = {}  # the ones the bot opened (POST /users/@me/channels)
        self.commands: dict[int | None, list[JSON]] = {}  # scope (None = global) -> echo
        self.command_payloads: dict[int | None, list[JSON]] = {}  # scope -> body as PUT
        self.interactions: dict[int, InteractionRecord] = {}
        self.faults: list[Fault] = []
        self._changed = asyncio.Condition()

    # --- lookups -------------------------------------------------------------------------

    def guild_channel(self, channel_id: int) -> tuple[FakeGuild, FakeChannel] | None:
        for guild in self.guilds.values():
            channel = guild.channel(channel_id)
            if channel is not None:
                return guild, channel
        return None

    def dm_recipient(self, channel_id: int) -> FakeUser | None:
        owner = next((u for u, c in self.dm_channels.items() if c == channel_id), None)
        return None if owner is None else self.users[owner]

    def dm_channel_id(self, user_id: int) -> int:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.next_id()
        return self.dm_channels[user_id]

    def dm_channel_json(self, user: FakeUser) -> JSON:
        return {
            "id": str(self.dm_channel_id(user.id)),
            "type": int(ChannelType.DM),
            "last_message_id": None,
            "flags": 0,
            "recipients": [user.to_json()],
        }

    def interaction_by_token(self, token: str) -> InteractionRecord | None:
        return next((i for i in self.interactions.values() if i.token == token), None)

    # --- faults --------------------------------------------------------------------------

    def take_fault(self, method: str, path: str, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.matches(method, path, route):
                fault.remaining -= 1
                return fault
        return None

    # --- waiting -------------------------------------------------------------------------

    async def changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], *, within: float, what: str) -> None:
        # Bounded here rather than by the caller so a timeout names what was awaited and
        # shows the last requests, which is what one needs to see why the bot stalled.
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            recent = "\n  ".join(str(r) for r in self.requests[-12:]) or "(none)"
            raise FakeTimeoutError(
                f"fake Discord: gave up after {within}s waiting for {what}; "
                f"last requests:\n  {recent}"
            ) from None
