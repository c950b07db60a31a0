"""The web endpoint as the daemon opens it: it serves pages, it delivers nothing."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from bot.channels import ChannelContext
from bot.notify import Notifier
from handlers.web.app import build_web_app, serve_web

log = logging.getLogger(__name__)


class WebChannel:
    name = "web"

    async def open(self, ctx: ChannelContext, stack: AsyncExitStack) -> Notifier | None:
        web = ctx.settings.web
        if not web.enabled:
            log.info("web endpoint off (PAPERBELL_WEB__ENABLED=false)")
            return None
        app = build_web_app(ctx.service, ctx.health) if ctx.health else build_web_app(ctx.service)
        host, port = await stack.enter_async_context(serve_web(app, web.host, web.port))
        log.info("web endpoint on http://%s:%s (links use %s)", host, port, ctx.settings.public_url)
        return None


plugin = WebChannel()
