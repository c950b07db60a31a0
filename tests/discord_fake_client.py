"""discord.py's side of the fake: pointing the library at it, and a client tuned for tests.

discord.py reads its REST base (``Route.BASE``) and its default gateway
(``DiscordWebSocket.DEFAULT_GATEWAY``) from class attributes; ``discord_pointed_at``
swaps both for the fake's loopback URLs and always restores them, so nothing can leak
to discord.com. Being class attributes, they allow one fake per process at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


class Endpoints(Protocol):
    @property
    def api_base(self) -> str: ...

    @property
    def gateway_url(self) -> str: ...


@contextlib.contextmanager
def discord_pointed_at(fake: Endpoints) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at the fake, then restore them."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


class QuickClient(discord.Client):
    """A ``discord.Client`` without discord.py's production pauses.

    ``guild_ready_timeout=0.05`` fires on_ready right after the last GUILD_CREATE instead
    of 2 s later, and ``before_identify_hook`` skips the 5 s wait discord.py takes before
    every IDENTIFY but the first. Own client classes can do the same two things.
    """

    def __init__(self, *, intents: discord.Intents | None = None) -> None:
        # Default intents leave out every privileged one (members, presences, content).
        super().__init__(intents=intents or discord.Intents.default(), guild_ready_timeout=0.05)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None
