"""What the paper sources share: error messages that name the source, XML and date parsing,
and reading a document item by item so one bad item never costs its neighbours."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from bot.errors import BadItemError, FetchError, RateLimitedError, SourceParseError
from bot.models import BadItem, FetchResult, HttpCacheEntry, SourceState
from bot.settings import SourceConfig
from bot.sources.http import HttpClient, HttpResponse, Params, request_url
from bot.store.merge import to_utc
from bot.text import redact_url

log = logging.getLogger(__name__)
Raw = TypeVar("Raw")
Item = TypeVar("Item")
_DETAIL_CHARS = 300  # an item's own text in a message: enough to find it, never a flood

ARXIV_THROTTLE = "arxiv"  # API and RSS together: arXiv counts them as one client
NOT_MODIFIED = "not modified"


def label(config: SourceConfig) -> str:
    """How errors name a source: ``arxiv_rss https://rss.arxiv.org/rss/cs.LG``."""
    return f"{config.kind} {redact_url(config.url)}"


def parse_error(config: SourceConfig, detail: str) -> SourceParseError:
    return SourceParseError(f"{label(config)}: {detail}", source=config.name)


async def fetch(
    config: SourceConfig,
    http: HttpClient,
    url: str,
    *,
    params: Params | None = None,
    cache: HttpCacheEntry | None = None,
    throttle_key: str | None = None,
) -> HttpResponse:
    """``http.get`` with the source named in any error it raises."""
    try:
        return await http.get(
            url,
            params=params,
            cache=cache,
            throttle_key=throttle_key,
            min_interval=config.request_interval,
        )
    except RateLimitedError as exc:
        message = _named(config, url, exc)
        raise RateLimitedError(message, source=config.name, retry_after=exc.retry_after) from exc
    except FetchError as exc:
        raise FetchError(_named(config, url, exc), source=config.name) from exc


def _named(config: SourceConfig, url: str, exc: Exception) -> str:
    """The label, then the client's message without repeating a URL the label names."""
    return f"{label(config)}: {str(exc).removeprefix(f'{redact_url(url)}: ')}"


def http_error(config: SourceConfig, response: HttpResponse, message: str = "") -> SourceParseError:
    """A non-2xx answer, with the server's own explanation when the body had one."""
    status = f"HTTP {response.status} {response.reason}".rstrip()
    detail = f"{status}: {message}" if message else status
    return parse_error(config, f"{detail} (GET {response.url})")


async def conditional_get(
    config: SourceConfig, http: HttpClient, state: SourceState, *, throttle_key: str
) -> HttpResponse:
    """GET the source's one URL, sending back the validators kept from the last 200."""
    url = config.url
    cache = state.http_cache.get(redact_url(request_url(url)))
    return await fetch(config, http, url, cache=cache, throttle_key=throttle_key)


def not_modified_result(response: HttpResponse) -> FetchResult:
    """The answer to a 304: nothing new, validators kept."""
    return FetchResult((), {response.url: response.validators}, note=NOT_MODIFIED)


def cache_update(response: HttpResponse) -> dict[str, HttpCacheEntry]:
    validators = response.validators
    if validators.etag is None and validators.last_modified is None:
        return {}
    return {response.url: validators}


@dataclass(frozen=True, slots=True)
class Parsed(Generic[Item]):
    """The usable items of one document, and the ones skipped."""

    items: tuple[Item, ...]
    bad: tuple[BadItem, ...] = ()


def parse_items(
    config: SourceConfig, raws: Iterable[Raw], convert: Callable[[int, Raw], Item | None]
) -> Parsed[Item]:
    """``convert`` each raw item; one that raises is skipped and reported, not fatal.

    A ``BadItemError`` says what is wrong with the item, without its index (added here).

    ``convert`` returns None for an item that is no paper at all (dropped silently). When
    every item is bad the format has probably changed: that fails the whole document.
    """
    items: list[Item] = []
    bad: list[BadItem] = []
    for index, raw in enumerate(raws):
        try:
            item = convert(index, raw)
        except Exception as exc:  # a hostile item must not take its neighbours down
            bad.append(_bad_item(index, exc))
            continue
        if item is not None:
            items.append(item)
    if bad and not items:
        raise parse_error(config, f"no usable item; the first: {bad[0].detail}")
    return Parsed(tuple(items), tuple(bad))


def _bad_item(index: int, exc: Exception) -> BadItem:
    if isinstance(exc, BadItemError):
        return BadItem(exc.reason, shorten(f"item {index}: {exc}"))
    # Not expected: keep the traceback for whoever fixes the parser.
    log.debug("item %d could not be read", index, exc_info=exc)
    return BadItem("unreadable item", shorten(f"item {index}: {type(exc).__name__}: {exc}"))


def shorten(text: str, limit: int = _DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_xml(config: SourceConfig, body: bytes) -> ET.Element:
    """The document root; truncated or malformed XML is a ``SourceParseError``."""
    if not body.strip():
        raise parse_error(config, "empty response body")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise parse_error(config, f"malformed XML ({exc})") from None


def text_of(element: ET.Element | None, path: str = "") -> str:
    """Text of ``element`` (or of its child at ``path``), '' when absent."""
    if element is None:
        return ""
    node = element.find(path) if path else element
    return (node.text or "") if node is not None else ""


def parse_iso(value: str) -> datetime | None:
    """ISO 8601 (``2024-04-10T17:48:37.000Z``) as aware UTC; None when empty or invalid.

    Raises ``BadItemError`` for a date that reads but cannot be held in UTC
    (``9999-12-31T23:59:59-14:00``).
    """
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return source_time(parsed)


def parse_rfc822(value: str) -> datetime | None:
    """RSS dates (``Mon, 01 Apr 2024 00:00:00 -0400``) as aware UTC; None when unreadable.

    Raises ``BadItemError`` as ``parse_iso`` does.
    """
    value = value.strip()
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return source_time(parsed)


def source_time(value: datetime) -> datetime:
    """Aware UTC. A feed time without an offset (or RFC 822 ``-0000``) is UTC by the feed
    formats' convention; inside paperbell a naive time is a bug, and ``to_utc`` refuses it.

    Raises ``BadItemError`` when the time falls outside what a datetime holds once in UTC
    (``9999-12-31T23:59:59-14:00``).
    """
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        return to_utc(aware)
    except (OverflowError, ValueError):
        raise BadItemError("bad date", f"date {value.isoformat()} is out of range") from None


def local_name(tag: str) -> str:
    """``{namespace}name`` without the namespace, for messages."""
    return tag.rpartition("}")[2]


def arxiv_links(arxiv_id: str) -> tuple[str, str]:
    """The abs and pdf pages of an arXiv id, without version (always the latest)."""
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"
