"""The Discord channel as the daemon opens it: the client runs beside the rest.

Without a token it is off (``build_discord`` says so in one line). A client that cannot
log in (bad token, 401) or dies later stops loudly; the rest of the daemon carries on and
Discord alerts wait in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from bot.channels import ChannelContext
from bot.notify import Channel, Notifier
from handlers.discord.client import DiscordClient, build_discord

log = logging.getLogger(__name__)


class DiscordChannel:
    name = "discord"

    async def open(self, ctx: ChannelContext, stack: AsyncExitStack) -> Notifier | None:
        client = build_discord(ctx.settings, ctx.service)
        if client is None:
            return None
        task = asyncio.create_task(self._serve(client, ctx), name="discord")
        stack.push_async_callback(self._stop, client, task)
        return client.notifier()

    @staticmethod
    async def _serve(client: DiscordClient, ctx: ChannelContext) -> None:
        try:
            await client.serve()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the boundary for the Discord task: loud, not fatal
            log.error("Discord channel stopped: %s; the rest of paperbell carries on", exc)
            ctx.on_down(Channel.DISCORD, str(exc))

    @staticmethod
    async def _stop(client: DiscordClient, task: asyncio.Task[None]) -> None:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


plugin = DiscordChannel()
