"""How the core finds its channels without importing them.

Each channel package (``handlers/email``, ``handlers/discord``, ``handlers/web``) exposes a
``ChannelPlugin`` named in ``pyproject.toml`` under the ``paperbell.channels`` entry-point
group. The core opens the ones it needs, registering their cleanup on the caller's
``AsyncExitStack``, and receives a ``Notifier`` from those that deliver messages.
"""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from typing import Protocol

from bot.daemon.health import Health
from bot.delivery.channel_status import ChannelStatus
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.notifier import Channel, Notifier
from bot.service import Paperbell
from bot.settings import Settings

log = logging.getLogger(__name__)

GROUP = "paperbell.channels"
# Used when paperbell runs from a source tree that was never installed.
BUILTIN = {
    "email": "handlers.email.channel:plugin",
    "discord": "handlers.discord.channel:plugin",
    "web": "handlers.web.channel:plugin",
}

HealthCheck = Callable[[], Awaitable[Health]]


@dataclass(frozen=True)
class ChannelContext:
    settings: Settings
    service: Paperbell
    clock: Callable[[], datetime]
    health: HealthCheck | None = None
    # The daemon's loud stop for a channel whose credentials stopped working (Discord 401).
    on_down: Callable[[Channel, str], None] = field(default=lambda channel, why: None)
    # A channel that cannot be reached for now (Discord not logged in yet, or down): its
    # messages wait, pending; ``on_up`` when it works again. See ``bot.delivery.channel_status``.
    on_waiting: Callable[[Channel, str], None] = field(default=lambda channel, why: None)
    # Not usable yet and nothing wrong (Discord logging in): waits without a warning.
    on_starting: Callable[[Channel, str], None] = field(default=lambda channel, why: None)
    on_up: Callable[[Channel], None] = field(default=lambda channel: None)


class ChannelPlugin(Protocol):
    name: str

    async def open(self, ctx: ChannelContext, stack: AsyncExitStack) -> Notifier | None:
        """Start the channel, push its cleanup on ``stack``; a notifier if it delivers.

        ``None`` also when the channel is not configured (no Discord token): it says so in
        one log line itself.
        """
        ...


def _load(target: str) -> ChannelPlugin:
    module, _, attr = target.partition(":")
    plugin: ChannelPlugin = getattr(importlib.import_module(module), attr)
    return plugin


def plugins(names: Collection[str] | None = None) -> list[ChannelPlugin]:
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)} or BUILTIN
    chosen = [n for n in found if names is None or n in names]
    return [_load(found[name]) for name in chosen]


async def open_channels(
    ctx: ChannelContext, stack: AsyncExitStack, names: Collection[str] | None = None
) -> dict[Channel, Notifier]:
    """Open the named channels (all by default); the notifiers by channel."""
    notifiers: dict[Channel, Notifier] = {}
    for plugin in plugins(names):
        notifier = await plugin.open(ctx, stack)
        if notifier is not None:
            notifiers[notifier.channel] = notifier
    return notifiers


async def open_dispatcher(
    settings: Settings,
    service: Paperbell,
    clock: Callable[[], datetime],
    stack: AsyncExitStack,
    *,
    names: Collection[str] | None = None,
    health: HealthCheck | None = None,
) -> Dispatcher:
    """Open the named channels and a dispatcher over them, with their health in its
    ``status``: the daemon's (every channel) and an email helper's (email alone)."""
    # A channel that could not be reached is tried again at the next tick, then less often.
    status = ChannelStatus(clock, first_probe=timedelta(seconds=settings.dispatch_seconds))
    ctx = ChannelContext(
        settings,
        service,
        clock,
        health,
        on_down=status.stopped,
        on_waiting=status.waiting,
        on_starting=status.starting,
        on_up=status.up,
    )
    notifiers = await open_channels(ctx, stack, names)
    for channel in notifiers:
        status.opened(channel)
    return Dispatcher(
        service.store, notifiers, service.links, clock, random.Random(),
        digests=service.digests, status=status, lease=timedelta(seconds=settings.delivery_lease),
    )  # fmt: skip
