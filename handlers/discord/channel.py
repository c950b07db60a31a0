"""The Discord channel as the daemon opens it: the client runs beside the rest.

Without a token it is off (``build_discord`` says so in one line). Until it has logged in
the channel is *waiting* (``ctx.on_waiting``): Discord alerts stay pending in the outbox,
with the reason, instead of being tried and burnt. A log-in that fails because Discord
cannot be reached is tried again with a growing delay for as long as the daemon runs; a
rejected token (401) stops the channel loudly (``ctx.on_down``), without retries, and its
alerts wait for a fix and a restart. A gateway session that ends with an error is started
again the same way; the rest of the daemon carries on meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

import discord

from bot.daemon.channels import ChannelContext
from bot.delivery.notifier import Channel, Notifier
from bot.errors import ConfigError
from handlers.discord.client import DiscordClient, build_discord

log = logging.getLogger(__name__)

FIRST_RETRY = 5.0  # seconds before the second log-in; doubled each time, up to MAX_RETRY
MAX_RETRY = 300.0
# Gateway close codes that no retry fixes: authentication failed, invalid intents.
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})


class DiscordChannel:
    name = "discord"

    def __init__(self, first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY) -> None:
        self.first_retry, self.max_retry = first_retry, max_retry

    async def open(self, ctx: ChannelContext, stack: AsyncExitStack) -> Notifier | None:
        client = build_discord(ctx.settings, ctx.service)
        if client is None:
            return None
        ctx.on_starting(Channel.DISCORD, "not logged in to Discord yet")
        task = asyncio.create_task(self._serve(client, ctx), name="discord")
        stack.push_async_callback(self._stop, client, task)
        return client.notifier()

    async def _serve(self, client: DiscordClient, ctx: ChannelContext) -> None:
        delay = self.first_retry
        while True:
            try:
                await self._session(client, ctx)
                return  # closed on purpose
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the boundary for the Discord task: loud, not fatal
                if _fatal(exc):
                    ctx.on_down(Channel.DISCORD, str(exc))
                    return
                ctx.on_waiting(Channel.DISCORD, _describe(exc))  # said once per outage
                log.debug("Discord log-in failed; trying again in %.0fs", delay)
            await client.close()  # frees the HTTP session of the failed attempt
            await asyncio.sleep(delay)
            delay = min(self.max_retry, delay * 2)
            client.reopen()

    @staticmethod
    async def _session(client: DiscordClient, ctx: ChannelContext) -> None:
        await client.log_in()
        ctx.on_up(Channel.DISCORD)
        await client.connect(reconnect=True)

    @staticmethod
    async def _stop(client: DiscordClient, task: asyncio.Task[None]) -> None:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _fatal(exc: Exception) -> bool:
    """A rejected token or a gateway refusal no retry can fix."""
    if isinstance(exc, ConfigError | discord.PrivilegedIntentsRequired):
        return True
    return isinstance(exc, discord.ConnectionClosed) and exc.code in FATAL_CLOSE_CODES


def _describe(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"cannot reach Discord ({type(exc).__name__}{': ' + text if text else ''})"


plugin = DiscordChannel()
