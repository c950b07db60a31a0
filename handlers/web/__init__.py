"""The web endpoint: the front page and sign-up, confirmation, each person's manage page
and Atom feeds, one-click unsubscribe (RFC 8058), health. Pages call ``bot.selfservice``
(or ``bot.service``), never the store; templates in ``templates/``, CSS and the optional
script in ``static/``."""

from handlers.web.app import build_web_app, serve_web

__all__ = ["build_web_app", "serve_web"]
