"""The web endpoint as the daemon opens it: it serves pages, it delivers nothing."""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack

from bot.daemon.channels import ChannelContext
from bot.delivery.notifier import Notifier
from bot.errors import ConfigError
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
        try:
            host, port = await stack.enter_async_context(serve_web(app, web.host, web.port))
        except OSError as exc:  # a port in use is the operator's to fix, not a crash
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConfigError(
                f"PAPERBELL_WEB__PORT: cannot listen on {web.host}:{web.port} ({why}); choose "
                "another port (or PAPERBELL_WEB__HOST), or set PAPERBELL_WEB__ENABLED=false"
            ) from exc
        log.info("web endpoint on http://%s:%s (links use %s)", host, port, ctx.settings.public_url)
        return None


plugin = WebChannel()
