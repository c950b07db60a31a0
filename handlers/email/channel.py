"""The email channel as the daemon and CLI open it."""

from __future__ import annotations

from contextlib import AsyncExitStack

from bot.daemon.channels import ChannelContext
from bot.delivery.notifier import Notifier
from handlers.email.notifier import build_email_notifier


class EmailChannel:
    name = "email"

    async def open(self, ctx: ChannelContext, stack: AsyncExitStack) -> Notifier | None:
        notifier = build_email_notifier(ctx.settings)
        stack.push_async_callback(notifier.close)
        return notifier


plugin = EmailChannel()
