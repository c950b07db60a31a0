"""The one HTTP client every source shares.

It owns (or borrows) one ``aiohttp.ClientSession`` and adds what paper services need:
conditional GETs, retries with backoff that honour ``Retry-After`` and Hugging Face's
``RateLimit`` header, a per-key throttle (arXiv asks for one connection at a time and three
seconds between requests across its API and RSS), and ``file:`` URLs for offline use.

Statuses: 2xx and 304 come back as ``HttpResponse``; 429 and 5xx are retried; other 4xx
come back too, because arXiv and Hugging Face explain the problem in the body and only the
source's parser can read it.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bot import __version__
from bot.errors import FetchError, RateLimitedError
from bot.models import HttpCacheEntry
from bot.settings import HttpSettings
from bot.text import redact_url

Sleep = Callable[[float], Awaitable[None]]
Params = Mapping[str, str | int]

_RATELIMIT_RESET_RE = re.compile(r"(?:^|;)\s*t\s*=\s*(\d+(?:\.\d+)?)")
_CLOCK_SLACK = 0.001
_JITTER = 0.1  # up to 10% added to a backoff delay so parallel clients do not retry in step
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpResponse:
    url: str  # as requested, query included, credentials redacted: the key for validators
    status: int
    body: bytes
    validators: HttpCacheEntry = field(default_factory=HttpCacheEntry)
    not_modified: bool = False
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class _Retry:
    """Why an attempt failed in a way worth retrying, and how long the server asks to wait."""

    problem: str
    status: int | None = None
    server_wait: float | None = None


@dataclass(slots=True)
class _Throttle:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_done: float | None = None


def user_agent(contact: str = "") -> str:
    return f"paperbell/{__version__}" + (f" (+{contact})" if contact else "")


def request_url(url: str, params: Params | None = None) -> str:
    """The URL with ``params`` added, encoded exactly as it is sent: the conditional-GET
    key, so callers look validators up with this, not with the URL as configured."""
    if is_file_url(url):
        return url  # yarl would turn file:relative/path into file:///relative/path
    parsed = URL(url)
    if params:
        parsed = parsed.update_query({k: str(v) for k, v in params.items()})
    return str(parsed)


def is_file_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() == "file"


class HttpClient:
    """Async context manager around one session; ``close()`` closes it if we created it."""

    def __init__(
        self,
        settings: HttpSettings,
        session: aiohttp.ClientSession | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._session = session
        self._owns_session = session is None
        self._sleep = sleep  # waits between retries; tests inject a recorder
        self._jitter = jitter
        self._throttles: dict[str, _Throttle] = {}
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self.user_agent = user_agent(settings.contact)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        url: str,
        *,
        params: Params | None = None,
        cache: HttpCacheEntry | None = None,
        throttle_key: str | None = None,
        min_interval: float = 0.0,
    ) -> HttpResponse:
        """GET ``url``; raise ``FetchError`` (or ``RateLimitedError``) when it cannot."""
        if is_file_url(url):
            return await read_file_url(url, self._settings.max_bytes)
        full = request_url(url, params)
        headers = self._headers(cache)
        attempt = 0
        while True:
            outcome = await self._attempt(full, headers, throttle_key, min_interval)
            if isinstance(outcome, HttpResponse):
                return outcome
            await self._sleep(self._retry_delay(full, outcome, attempt))
            attempt += 1

    def _headers(self, cache: HttpCacheEntry | None) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent}
        if cache is not None and cache.etag:
            headers["If-None-Match"] = cache.etag
        if cache is not None and cache.last_modified:
            headers["If-Modified-Since"] = cache.last_modified
        return headers

    async def _attempt(
        self, url: str, headers: dict[str, str], key: str | None, interval: float
    ) -> HttpResponse | _Retry:
        try:
            async with self._turn(key, interval):
                return await self._request(url, headers)
        except TimeoutError:  # aiohttp's timeout errors are TimeoutErrors too
            return _Retry(f"timed out after {self._settings.timeout:g} s")
        except aiohttp.InvalidURL:
            raise FetchError(f"GET {redact_url(url)}: not a valid URL") from None
        except aiohttp.ClientPayloadError as exc:
            return _Retry(f"response body cut short ({_describe(exc)})")
        except aiohttp.ClientError as exc:
            return _Retry(f"connection failed ({_describe(exc)})")

    async def _request(self, url: str, headers: dict[str, str]) -> HttpResponse | _Retry:
        session = self._ensure_session()
        target = URL(url, encoded=True)
        async with session.get(target, headers=headers, timeout=self._timeout) as resp:
            body = await self._read_body(url, resp)
            status, reason = resp.status, resp.reason or ""
            if status == 429 or status >= 500:
                return _Retry(f"HTTP {status} {reason}".rstrip(), status, server_wait(resp.headers))
            if status == 304:
                kept = _validators(resp.headers, fallback=_from_headers(headers))
                shown = redact_url(url)
                return HttpResponse(shown, status, b"", kept, not_modified=True, reason=reason)
            validators = _validators(resp.headers) if resp.ok else HttpCacheEntry()
            return HttpResponse(redact_url(url), status, body, validators, reason=reason)

    async def _read_body(self, url: str, resp: aiohttp.ClientResponse) -> bytes:
        """The (decompressed) body, refused as soon as it passes ``max_bytes``: a hostile
        or broken server must not fill the memory of the daemon."""
        limit = self._settings.max_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise too_large(url, limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(url, limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise FetchError("the HTTP session given to HttpClient is closed")
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    @asynccontextmanager
    async def _turn(self, key: str | None, interval: float) -> AsyncIterator[None]:
        """Serialise requests sharing ``key`` and space them ``interval`` s apart."""
        if key is None:
            yield
            return
        throttle = self._throttles.setdefault(key, _Throttle())
        async with throttle.lock:
            if throttle.last_done is not None:
                await _sleep_until(throttle.last_done + interval)
            try:
                yield
            finally:
                throttle.last_done = time.monotonic()

    def _retry_delay(self, url: str, retry: _Retry, attempt: int) -> float:
        """Seconds to wait before the next attempt, or raise if we should stop."""
        settings = self._settings
        wait = retry.server_wait
        if wait is not None and wait > settings.max_wait:
            raise RateLimitedError(
                f"GET {redact_url(url)}: {retry.problem}; the server asks to wait {wait:g} s, "
                f"more than max_wait ({settings.max_wait:g} s)",
                retry_after=wait,
            )
        if attempt >= settings.retries:
            tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
            message = f"GET {redact_url(url)}: {retry.problem} (gave up after {tries})"
            if retry.status == 429:
                raise RateLimitedError(message, retry_after=wait)
            raise FetchError(message)
        if wait is not None:
            return wait
        delay: float = settings.backoff * 2.0**attempt
        return delay * (1 + _JITTER * self._jitter())


async def _sleep_until(deadline: float) -> None:
    """A real sleep (not the injectable one): this spacing is a promise to the server.
    The slack covers the event loop waking up to one clock tick early."""
    wait = deadline - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait + _CLOCK_SLACK)


def server_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: ``Retry-After`` or HF's ``RateLimit: ...;t=N``."""
    retry_after = headers.get("Retry-After", "").strip()
    if retry_after:
        wait = _parse_retry_after(retry_after)
        if wait is not None:
            return wait
    match = _RATELIMIT_RESET_RE.search(headers.get("RateLimit", ""))
    return float(match.group(1)) if match else None


def _parse_retry_after(value: str) -> float | None:
    """``Retry-After`` is delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _validators(
    headers: CIMultiDictProxy[str], fallback: HttpCacheEntry | None = None
) -> HttpCacheEntry:
    base = fallback or HttpCacheEntry()
    return HttpCacheEntry(
        etag=headers.get("ETag", base.etag),
        last_modified=headers.get("Last-Modified", base.last_modified),
    )


def _from_headers(sent: Mapping[str, str]) -> HttpCacheEntry:
    """The validators we sent: what a 304 without new ones confirms."""
    return HttpCacheEntry(sent.get("If-None-Match"), sent.get("If-Modified-Since"))


def _describe(exc: BaseException) -> str:
    """A one-line reason; aiohttp wraps the useful message of a short body in its cause."""
    message = getattr(exc.__cause__, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(exc) or type(exc).__name__


def file_url_path(url: str) -> Path:
    """The local path of ``file:rel/path``, ``file:/abs`` or ``file:///abs``."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(
            f"{url}: names the host {parts.netloc!r}; write file:relative/path "
            "or file:///absolute/path"
        )
    return Path(unquote(parts.path))


def too_large(url: str, limit: int) -> FetchError:
    return FetchError(
        f"response larger than {limit / 1e6:g} MB from {url}; "
        "raise PAPERBELL_HTTP__MAX_BYTES if this is expected"
    )


def _read_capped(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it holds more than ``limit``."""
    with path.open("rb") as handle:
        body = handle.read(limit + 1)
    return None if len(body) > limit else body


async def read_file_url(url: str, max_bytes: int) -> HttpResponse:
    path = file_url_path(url)
    try:
        body = await asyncio.to_thread(_read_capped, path, max_bytes)
    except FileNotFoundError:
        raise FetchError(f"{url}: no such file {path.absolute()}") from None
    except OSError as exc:
        raise FetchError(f"{url}: cannot read {path.absolute()}: {exc.strerror}") from None
    if body is None:
        raise too_large(url, max_bytes)
    return HttpResponse(url=url, status=200, body=body, reason="OK")
