"""The pages' Jinja2 templates (autoescaped: every string a visitor or a feed supplied is
escaped) and the one way to answer with one."""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from bot.models import DeliveryMode, Subscription

HTML = "text/html"
_MODE_NAMES = {
    DeliveryMode.EMAIL_DIGEST: "digest",
    DeliveryMode.EMAIL_INSTANT: "instant email",
    DeliveryMode.DISCORD: "Discord",
}


def web_url(url: str | None) -> str | None:
    """Only http(s) links are placed: a feed could carry ``javascript:`` or worse."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


def deliveries(sub: Subscription) -> str:
    return " + ".join(_MODE_NAMES[m] for m in sorted(sub.deliver))


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("handlers.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["deliveries"] = deliveries
    env.filters["web_url"] = web_url
    return env


def render_page(template: str, title: str, *, status: int = 200, **context: Any) -> web.Response:
    context.setdefault("notice", "")
    context.setdefault("error", "")
    text = environment().get_template(template).render(title=title, **context)
    return web.Response(text=text, status=status, content_type=HTML)


def message_page(
    title: str, *lines: str, status: int = 200, link: tuple[str, str] | None = None
) -> web.Response:
    return render_page("message.html.j2", title, status=status, lines=lines, link=link)


def render_text(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
