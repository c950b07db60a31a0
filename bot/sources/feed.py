"""Any RSS or Atom feed, read with feedparser from the bytes we fetched.

An item that points at an arXiv paper (in its link, guid or any other link) is keyed by
the arXiv id, so a paper met through a blog merges with the same paper from arXiv or HF.
Other items get ``feed:<sha1>`` from their guid, else link, else title and date: the same
item gives the same key on every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import xml.sax
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from bot.errors import BadItemError
from bot.models import FetchResult, Links, Paper, Sighting, SourceState
from bot.settings import SourceConfig
from bot.sources._common import (
    Parsed,
    cache_update,
    conditional_get,
    http_error,
    not_modified_result,
    parse_error,
    parse_items,
)
from bot.sources.arxiv_ids import ArxivId, find_arxiv_id_in_url, parse_arxiv_id
from bot.sources.http import HttpClient
from bot.text import display_text, html_to_text, split_authors

_HTML_TYPES = ("text/html", "application/xhtml+xml")
FeedEntry = Any  # feedparser.FeedParserDict: a dict with attribute access, untyped


def parse_feed(config: SourceConfig, body: bytes) -> Parsed[Sighting]:
    """Every usable item of an RSS/Atom document; malformed XML fails the whole feed."""
    # A stream, never bytes or str: feedparser would treat those as a URL to fetch or a
    # path to open.
    parsed = feedparser.parse(io.BytesIO(body), sanitize_html=True, resolve_relative_uris=False)
    problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        raise parse_error(config, "not an RSS or Atom feed (no <rss> or <feed> element)")
    if parsed.get("bozo") and isinstance(problem, xml.sax.SAXException):
        raise parse_error(config, f"malformed XML ({_describe_sax(problem)})")
    found = parse_items(config, parsed.entries, lambda _, entry: _to_paper(config, entry))
    papers: dict[str, Paper] = {}
    for paper in found.items:
        papers.setdefault(paper.key, paper)
    return Parsed(tuple(Sighting(paper) for paper in papers.values()), found.bad)


def _describe_sax(exc: xml.sax.SAXException) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"
    return str(exc.getMessage())


def _to_paper(config: SourceConfig, entry: FeedEntry) -> Paper | None:
    title = _text(entry, "title")
    link = str(entry.get("link") or "").strip()
    if not title and not link:
        return None  # nothing to show a person or to link to
    ident = _arxiv_id(entry)
    published, updated = _time(entry, "published_parsed"), _time(entry, "updated_parsed")
    return Paper(
        key=ident.id if ident else _feed_key(entry, link, title, config.url),
        title=title or link,
        abstract=_abstract(entry),
        version=ident.version if ident else None,
        authors=_authors(entry),
        categories=_categories(entry),
        published=published or updated,
        updated=updated,
        links=_links(entry, link),
        sources=(config.name,),
    )


def _text(entry: FeedEntry, name: str) -> str:
    """A text construct as plain text: HTML ones lose their tags."""
    detail = entry.get(f"{name}_detail") or {}
    return _render(str(entry.get(name) or ""), detail.get("type"))


def _abstract(entry: FeedEntry) -> str:
    """The summary, else the first content; feedparser may copy content into ``summary``
    without a ``summary_detail``, so the content's own type decides how to read it."""
    if entry.get("summary_detail"):
        return _text(entry, "summary")
    for content in entry.get("content") or ():
        if content.get("value"):
            return _render(str(content["value"]), content.get("type"))
    return _render(str(entry.get("summary") or ""), "text/html")


def _render(value: str, content_type: str | None) -> str:
    return html_to_text(value) if content_type in _HTML_TYPES else display_text(value)


def _hrefs(entry: FeedEntry) -> list[str]:
    hrefs = [str(entry.get("link") or "")]
    hrefs += [str(link.get("href") or "") for link in entry.get("links") or ()]
    return [href.strip() for href in hrefs if href and href.strip()]


def _arxiv_id(entry: FeedEntry) -> ArxivId | None:
    """The arXiv id in the link, the guid, or any other link, in that order."""
    links = _hrefs(entry)
    found = find_arxiv_id_in_url(links[0]) if links else None
    guid = str(entry.get("id") or "")
    found = found or (parse_arxiv_id(guid) if guid else None)
    for href in links[1:]:
        found = found or find_arxiv_id_in_url(href)
    return found


def _feed_key(entry: FeedEntry, link: str, title: str, feed_url: str) -> str:
    guid = str(entry.get("id") or "").strip()
    date = str(_raw(entry, "published") or _raw(entry, "updated") or "")
    basis = guid or link or f"{title}\n{date}"
    # A URL is unique everywhere; anything else ("1", a title) only within its own feed.
    if not basis.startswith(("http://", "https://", "tag:", "urn:")):
        basis = f"{feed_url}\n{basis}"
    return "feed:" + hashlib.sha1(basis.encode("utf-8")).hexdigest()


def _authors(entry: FeedEntry) -> tuple[str, ...]:
    names = [str(a.get("name") or "") for a in entry.get("authors") or ()]
    if not any(names) and entry.get("author"):
        names = [str(entry["author"])]
    return tuple(name for text in names if text for name in split_authors(text))


def _categories(entry: FeedEntry) -> tuple[str, ...]:
    terms = (str(tag.get("term") or "").strip() for tag in entry.get("tags") or ())
    return tuple(dict.fromkeys(term for term in terms if term))


def _links(entry: FeedEntry, link: str) -> Links:
    pdf = hf = None
    for href in _hrefs(entry):
        host_path = href.split("://", 1)[-1].lower()
        if pdf is None and host_path.startswith(("arxiv.org/pdf/", "export.arxiv.org/pdf/")):
            pdf = href
        if hf is None and host_path.startswith("huggingface.co/papers/"):
            hf = href
    return Links(abs=link or None, pdf=pdf, hf=hf)


def _time(entry: FeedEntry, name: str) -> datetime | None:
    """feedparser's parsed times are UTC ``struct_time``s."""
    value = _raw(entry, name)
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        raise BadItemError("bad date", f"{name.removesuffix('_parsed')} out of range") from None


def _raw(entry: FeedEntry, key: str) -> object:
    """A field as parsed: FeedParserDict.get("updated") would hand back "published"
    (with a DeprecationWarning) when an item has no updated date."""
    return dict.get(entry, key)


class FeedSource:
    def __init__(self, config: SourceConfig, http: HttpClient) -> None:
        self.config = config
        self._http = http

    async def fetch(self, state: SourceState) -> FetchResult:
        # Feeds on one host take turns (spaced by min_request_interval if set).
        host = urlsplit(self.config.url).hostname or ""
        response = await conditional_get(
            self.config, self._http, state, throttle_key=f"feed:{host}"
        )
        if response.not_modified:
            return not_modified_result(response)
        if not response.ok:
            raise http_error(self.config, response)
        # feedparser is slow on a large feed: off the event loop (web, health checks).
        parsed = await asyncio.to_thread(parse_feed, self.config, response.body)
        return FetchResult(parsed.items, cache_update(response), bad_items=parsed.bad)
