"""Helpers for the Discord channel's tests: recipients, and reading what arrived.

Messages are read back the way a person sees them: markdown escapes undone and bold
markers dropped, so a title can be looked for as plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.daemon.resources import build_service
from bot.delivery.notifier import Channel, Recipient, RecipientKind
from bot.models import Sighting, SourceState, User
from bot.service import Paperbell
from bot.settings import DiscordSettings, load_settings
from bot.store.sqlite.store import SqliteStore, open_sqlite_store
from handlers.discord.client import DiscordClient
from tests.discord_fake import FakeDiscord
from tests.discord_fake_models import FakeChannel, FakeUser
from tests.support_email import corpus

_ESCAPE = re.compile(r"\\(.)")
LIMIT = 10.0  # seconds: no test comes near it; a hang fails instead of stalling the suite


def dm_recipient(
    user: FakeUser, *, owner_id: int = 1, dm_channel_id: str | None = None
) -> Recipient:
    return Recipient(
        kind=RecipientKind.USER,
        owner_id=owner_id,
        channel=Channel.DISCORD,
        address=str(user.id),
        dm_channel_id=dm_channel_id,
    )


def channel_recipient(channel: FakeChannel) -> Recipient:
    return Recipient(
        kind=RecipientKind.CHANNEL,
        owner_id=channel.id,
        channel=Channel.DISCORD,
        address=str(channel.id),
    )


def unmark(text: str) -> str:
    """Discord markdown as displayed: escapes undone, bold markers gone."""
    return _ESCAPE.sub(r"\1", text.replace("**", ""))


def embed_text(embed: Mapping[str, Any]) -> str:
    parts = [embed.get("title"), embed.get("description")]
    for field in embed.get("fields") or []:
        parts += [field.get("name"), field.get("value")]
    parts.append((embed.get("footer") or {}).get("text"))
    return "\n".join(unmark(str(p)) for p in parts if p)


def message_text(content: str, embeds: Iterable[Mapping[str, Any]]) -> str:
    return "\n".join([unmark(content), *(embed_text(e) for e in embeds)])


def embed_titles(embeds: Iterable[Mapping[str, Any]]) -> list[str]:
    return [unmark(str(e.get("title") or "")) for e in embeds]


# --- a paperbell with a Discord client, over a real store, against the fake ---------------

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
PAPER_COUNT = 60


@dataclass
class World:
    fake: FakeDiscord
    client: DiscordClient
    service: Paperbell
    store: SqliteStore

    async def user(self, who: FakeUser) -> User:
        return await self.service.user_for_discord(str(who.id))


async def open_service(data_dir: Path) -> tuple[Paperbell, SqliteStore]:
    """A real Paperbell over a real SQLite store holding the first papers of the corpus."""
    settings = load_settings(data_dir=data_dir, secret_key="discord-tests-secret-key-of-32-bytes")
    store = await open_sqlite_store(settings.database_path)
    papers = corpus()[:PAPER_COUNT]
    await store.ingest([Sighting(p) for p in papers], SourceState("test"), NOW - timedelta(days=1))
    return await build_service(settings, store, lambda: NOW), store


@contextlib.asynccontextmanager
async def discord_world(data_dir: Path, *, guild_id: str | None = None) -> AsyncIterator[World]:
    """The fake Discord and a connected ``DiscordClient`` over a real service and store."""
    service, store = await open_service(data_dir)
    try:
        async with FakeDiscord() as fake:
            settings = DiscordSettings(guild_id=guild_id)
            client = DiscordClient(service, settings, guild_ready_timeout=0.05)
            async with asyncio.timeout(LIMIT), fake.connected(client):
                yield World(fake, client, service, store)
    finally:
        await store.close()
