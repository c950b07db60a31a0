"""What every page shares against cross-site tricks: headers, CSRF tokens, Origin, rates.

No cookies. A form's CSRF token is signed with the secret key over the page it belongs to
(the manage token, or "front" for the public pages) and expires after ``CSRF_HOURS``; a
state-changing POST also needs an ``Origin`` naming this site when the browser sends one
(browsers always do on a cross-site POST, so a missing one is a script, not a victim).

Referrer: every answer says ``Referrer-Policy: no-referrer``; the pages then narrow it to
``same-origin`` in a ``<meta>`` (the document's policy wins), because under no-referrer a
browser sends ``Origin: null`` even on our own forms. ``same-origin`` still never sends a
token-bearing URL to another site.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web

from bot.accounts.tokens import Signer
from bot.errors import InvalidTokenError

CSRF = "csrf"
CSRF_HOURS = 12
FRONT = "front"  # the scope of forms on public pages (sign-up, preview, a new link)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _scope_hash(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:24]


def csrf_token(signer: Signer, scope: str, now: datetime) -> str:
    return signer.sign(CSRF, {"s": _scope_hash(scope)}, now + timedelta(hours=CSRF_HOURS))


def csrf_problem(signer: Signer, scope: str, token: str, now: datetime) -> str | None:
    """Why a form's CSRF token is refused; ``None`` when it is good."""
    if not token:
        return "the form came without its security token; reload the page and send it again"
    try:
        data = signer.verify(CSRF, token, now)
    except InvalidTokenError:
        return "the form's security token is not valid or too old; reload the page and retry"
    if data.get("s") != _scope_hash(scope):
        return "the form's security token belongs to another page; reload this page and retry"
    return None


def origin_problem(request: web.Request, public_url: str) -> str | None:
    """Why a POST's ``Origin`` is refused: it must be this site's when present."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    allowed = {_origin_of(public_url), _origin_of(str(request.url.origin()))}
    if origin.lower().rstrip("/") in allowed:
        return None
    return "this form was sent from another site; open paperbell's own page and send it there"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port and port != default else ""
    return f"{parts.scheme}://{host}{suffix}"


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    seconds: float


@dataclass(frozen=True, slots=True)
class WebRates:
    """How often one IP, and one address, may ask: sign-ups and new links mail people."""

    subscribe_ip: Rate = Rate(10, 600)
    subscribe_address: Rate = Rate(5, 3600)
    link_ip: Rate = Rate(5, 600)
    link_address: Rate = Rate(3, 3600)
    preview_ip: Rate = Rate(120, 60)  # live preview: a query run over a week of papers


@dataclass
class RateLimiter:
    """Sliding windows in memory: the web endpoint is one process (the daemon)."""

    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict)

    def check(self, key: str, rate: Rate) -> int:
        """Count one request; 0 when allowed, else the seconds to wait (Retry-After)."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - rate.seconds:
            hits.popleft()
        if len(hits) >= rate.count:
            return max(1, math.ceil(hits[0] + rate.seconds - now))
        hits.append(now)
        if len(self._hits) > 50_000:  # a flood of keys: forget the idle ones
            self._forget(now, rate.seconds)
        return 0

    def _forget(self, now: float, seconds: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - seconds]:
            del self._hits[key]
