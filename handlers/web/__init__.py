"""The small web endpoint: one-click unsubscribe (RFC 8058), address confirmation, health."""

from handlers.web.app import build_web_app, serve_web

__all__ = ["build_web_app", "serve_web"]
