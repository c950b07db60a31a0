"""What every page handler reaches through the app: the core, its self-service facade,
the rate limiter; and the checks a state-changing form POST must pass."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.daemon.health import Health
from bot.selfservice import SelfService
from bot.service import Paperbell
from handlers.web.render import message_page
from handlers.web.security import (
    FRONT,
    Rate,
    RateLimiter,
    WebRates,
    csrf_problem,
    csrf_token,
    origin_problem,
)

log = logging.getLogger(__name__)

SERVICE = web.AppKey("service", Paperbell)
SELF = web.AppKey("self_service", SelfService)
LIMITER = web.AppKey("limiter", RateLimiter)
RATES = web.AppKey("rates", WebRates)
HealthCheck = Callable[[], Awaitable[Health]]
HEALTH: web.AppKey[HealthCheck] = web.AppKey("health")

Form = dict[str, str]


class PageError(Exception):
    """A request refused with a page: raised by a check, answered by the middleware."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def new_csrf(request: web.Request, scope: str = FRONT) -> str:
    service = request.app[SERVICE]
    return csrf_token(service.signer, scope, service.clock())


async def checked_form(request: web.Request, scope: str = FRONT) -> Form:
    """The POSTed form after its Origin and CSRF token passed; ``PageError`` (403) if not."""
    service = request.app[SERVICE]
    problem = origin_problem(request, service.settings.public_url)
    posted = await request.post()
    form = {name: value for name, value in posted.items() if isinstance(value, str)}
    if problem is None:
        problem = csrf_problem(service.signer, scope, form.get("csrf", ""), service.clock())
    if problem is not None:
        log.info("web form %s refused: %s", request.method, problem)
        raise PageError(message_page("Not sent", problem, status=403, link=("/", "Front page")))
    return form


def limit(request: web.Request, what: str, key: str, rate: Rate) -> None:
    """Count one request against ``key``; ``PageError`` (429, Retry-After) past the rate."""
    wait = request.app[LIMITER].check(f"{what}:{key}", rate)
    if not wait:
        return
    minutes = max(1, round(wait / 60))
    response = message_page(
        "Too many requests",
        f"Too many requests from here or for this address; try again in about {minutes} "
        "minute(s). Nothing was sent this time.",
        status=429,
        link=("/", "Front page"),
    )
    response.headers["Retry-After"] = str(wait)
    raise PageError(response)


def client_ip(request: web.Request) -> str:
    """Who asks, for rate limits: the peer, or behind a trusted reverse proxy the address
    it appended last to X-Forwarded-For (earlier entries are the client's to forge)."""
    if request.app[SERVICE].settings.web.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rpartition(",")[2].strip()
        if last:
            return last
    return request.remote or "unknown"
