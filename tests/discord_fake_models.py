"""The scripted world a fake Discord serves: users, guilds, roles, channels, and their JSON.

Everything here is a frozen value; the fake's mutable state (messages, DM channels, synced
commands) lives in ``discord_fake_state``. The JSON shapes follow what Discord sends, with
the fields discord.py reads when it builds its cache (ids as strings, permissions as
strings, ``discriminator`` "0" for migrated usernames).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, IntFlag
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
JOINED_AT = datetime(2025, 1, 6, 12, 0, tzinfo=UTC).isoformat()


class Perm(IntFlag):
    """Permission bits paperbell cares about (Discord numbers them; we name a few)."""

    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    EMBED_LINKS = 1 << 14
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_APPLICATION_COMMANDS = 1 << 31


# Discord reports every bit set for owners and administrators.
ALL_PERMISSIONS = (1 << 51) - 1
MEMBER_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_APPLICATION_COMMANDS
)


class Intent(IntFlag):
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT


class ChannelType(IntEnum):
    GUILD_TEXT = 0
    DM = 1
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5


class SnowflakeFactory:
    """Fresh, increasing snowflakes: milliseconds since the Discord epoch, then a counter."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        millis = time.time_ns() // 1_000_000 - DISCORD_EPOCH_MS
        return (millis << 22) | (next(self._counter) & 0x3FFFFF)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class FakeUser:
    id: int
    name: str
    global_name: str | None = None
    bot: bool = False
    # False models a user who blocks DMs: sending into their DM channel fails with 50007.
    dms_open: bool = True

    def to_json(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(frozen=True, slots=True)
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0

    def to_json(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(int(self.permissions)),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(frozen=True, slots=True)
class FakeChannel:
    id: int
    name: str
    type: ChannelType = ChannelType.GUILD_TEXT
    position: int = 0
    topic: str | None = None

    def to_json(self, guild_id: int) -> JSON:
        return {
            "id": str(self.id),
            "type": int(self.type),
            "guild_id": str(guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": self.topic,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }


@dataclass(frozen=True, slots=True)
class FakeMember:
    user: FakeUser
    roles: tuple[int, ...] = ()  # role ids besides @everyone
    nick: str | None = None

    def to_json(self, *, with_user: bool = True) -> JSON:
        data: JSON = {
            "roles": [str(role) for role in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": JOINED_AT,
            "premium_since": None,
            "communication_disabled_until": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            data["user"] = self.user.to_json()
        return data


@dataclass(frozen=True, slots=True)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: tuple[FakeRole, ...] = ()  # @everyone (id == guild id) is added when missing
    channels: tuple[FakeChannel, ...] = ()
    members: tuple[FakeMember, ...] = ()

    @property
    def all_roles(self) -> tuple[FakeRole, ...]:
        if any(role.id == self.id for role in self.roles):
            return self.roles
        return (FakeRole(self.id, "@everyone", MEMBER_PERMISSIONS), *self.roles)

    def member(self, user_id: int) -> FakeMember | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def channel(self, channel_id: int) -> FakeChannel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def role(self, role_id: int) -> FakeRole | None:
        return next((r for r in self.all_roles if r.id == role_id), None)

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions (no channel overwrites: the fake has none)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.member(user_id)
        held = {self.id, *(member.roles if member else ())}
        value = 0
        for role in self.all_roles:
            if role.id in held:
                value |= int(role.permissions)
        return ALL_PERMISSIONS if value & Perm.ADMINISTRATOR else value

    def create_event(self, bot: FakeUser, *, with_members: bool) -> JSON:
        """The GUILD_CREATE payload. Without GUILD_MEMBERS only the bot itself is listed."""
        members = self.members if with_members else ()
        if not any(m.user.id == bot.id for m in members):
            members = (*members, FakeMember(bot))
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": str(self.owner_id),
            "icon": None,
            "unavailable": False,
            "member_count": len(self.members),
            "large": False,
            "joined_at": JOINED_AT,
            "preferred_locale": "en-US",
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "system_channel_id": str(self.channels[0].id) if self.channels else None,
            "roles": [role.to_json() for role in self.all_roles],
            "channels": [channel.to_json(self.id) for channel in self.channels],
            "members": [member.to_json() for member in members],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


# --- a ready-made world: one guild with an owner, a moderator, a member, and a DM refuser ---

BOT_USER = FakeUser(1_300_000_000_000_000_900, "paperbell", bot=True)
ALICE = FakeUser(1_300_000_000_000_000_101, "alice", global_name="Alice")  # owns the guild
BOB = FakeUser(1_300_000_000_000_000_102, "bob", global_name="Bob")  # Moderators: MANAGE_GUILD
CAROL = FakeUser(1_300_000_000_000_000_103, "carol", global_name="Carol")  # plain member
DAVE = FakeUser(1_300_000_000_000_000_104, "dave", dms_open=False)  # member, blocks DMs

SAMPLE_GUILD_ID = 1_300_000_000_000_000_001
MODERATORS_ROLE = FakeRole(1_300_000_000_000_000_201, "Moderators", Perm.MANAGE_GUILD, 1)
GENERAL_CHANNEL = FakeChannel(1_300_000_000_000_000_301, "general", topic="chat")
PAPERS_CHANNEL = FakeChannel(1_300_000_000_000_000_302, "papers", position=1, topic="alerts")

SAMPLE_GUILD = FakeGuild(
    id=SAMPLE_GUILD_ID,
    name="Paper Club",
    owner_id=ALICE.id,
    roles=(MODERATORS_ROLE,),
    channels=(GENERAL_CHANNEL, PAPERS_CHANNEL),
    members=(
        FakeMember(ALICE),
        FakeMember(BOB, roles=(MODERATORS_ROLE.id,)),
        FakeMember(CAROL),
        FakeMember(DAVE),
        FakeMember(BOT_USER),
    ),
)
