"""arXiv RSS: ``https://rss.arxiv.org/rss/<cats>`` (RSS 2.0) or ``/atom/<cats>``.

Read by namespace URI with ElementTree, so prefixes and element order do not matter and a
truncated document fails loudly instead of yielding half a day. An empty channel is a day
without announcements (weekends, holidays), not an error; a channel titled "Feed error for
query" is arXiv's error document.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from bot.errors import BadItemError
from bot.models import AnnounceType, FetchResult, Links, Paper, Sighting, SourceState
from bot.settings import SourceConfig
from bot.sources._common import (
    ARXIV_THROTTLE,
    Parsed,
    arxiv_links,
    cache_update,
    conditional_get,
    http_error,
    local_name,
    not_modified_result,
    parse_error,
    parse_iso,
    parse_items,
    parse_rfc822,
    parse_xml,
    text_of,
)
from bot.sources.arxiv_ids import ArxivId, find_arxiv_id_in_url, parse_arxiv_id
from bot.sources.http import HttpClient
from bot.text import display_text, split_authors

ARXIV_NS = "http://arxiv.org/schemas/atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_NS = "http://www.w3.org/2005/Atom"
EMPTY_NOTE = "no announcement (weekend or holiday)"
_ERROR_TITLE = "feed error for query"
_PREFIX_RE = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce\s+Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _RawItem:
    """One item as either layout (RSS or Atom) writes it."""

    guid: str
    title: str
    description: str
    link: str
    categories: tuple[str, ...]
    announce: str
    creators: tuple[str, ...]
    date: datetime | None


def parse_arxiv_rss(config: SourceConfig, body: bytes) -> Parsed[Sighting]:
    """Every item of an arXiv RSS or Atom feed; an error feed raises ``SourceParseError``."""
    root = parse_xml(config, body)
    message = _feed_error(root)
    if message is not None:
        raise parse_error(config, f"feed error: {message}")
    elements, read = _item_elements(config, root)
    return parse_items(config, elements, lambda _, element: _to_sighting(config, read(element)))


def feed_error_message(body: bytes) -> str | None:
    """The message of arXiv's error feed, or None if ``body`` is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    return _feed_error(root)


def _feed_error(root: ET.Element) -> str | None:
    if root.tag == "rss":
        head = root.find("channel")
        title, message = text_of(head, "title"), text_of(head, "description")
    else:
        title = text_of(root, f"{{{ATOM_NS}}}title")
        message = text_of(root, f"{{{ATOM_NS}}}subtitle")
    if not display_text(title).lower().startswith(_ERROR_TITLE):
        return None
    return display_text(message) or display_text(title)


ReadItem = Callable[[ET.Element], _RawItem]


def _item_elements(config: SourceConfig, root: ET.Element) -> tuple[list[ET.Element], ReadItem]:
    """The item elements, and how to read one in this layout."""
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise parse_error(config, "RSS document without a <channel>")
        text = text_of(channel, "pubDate") or text_of(channel, "lastBuildDate")
        return channel.findall("item"), partial(_rss_item, day=_day(parse_rfc822, text))
    if root.tag == f"{{{ATOM_NS}}}feed":
        day = _day(parse_iso, text_of(root, f"{{{ATOM_NS}}}updated"))
        return root.findall(f"{{{ATOM_NS}}}entry"), partial(_atom_item, day=day)
    raise parse_error(config, f"not an RSS or Atom feed (root element <{local_name(root.tag)}>)")


def _day(parse: Callable[[str], datetime | None], text: str) -> datetime | None:
    """The feed's own date, the fallback for undated items; an impossible one is none."""
    try:
        return parse(text)
    except BadItemError:
        return None


def _rss_item(item: ET.Element, day: datetime | None) -> _RawItem:
    return _RawItem(
        guid=text_of(item, "guid"),
        title=text_of(item, "title"),
        description=text_of(item, "description"),
        link=text_of(item, "link"),
        categories=tuple(text_of(c) for c in item.findall("category")),
        announce=text_of(item, f"{{{ARXIV_NS}}}announce_type"),
        creators=tuple(text_of(c) for c in item.findall(f"{{{DC_NS}}}creator")),
        date=parse_rfc822(text_of(item, "pubDate")) or day,
    )


def _atom_item(entry: ET.Element, day: datetime | None) -> _RawItem:
    atom = f"{{{ATOM_NS}}}"
    creators = [text_of(c) for c in entry.findall(f"{{{DC_NS}}}creator")]
    creators = creators or [text_of(a, f"{atom}name") for a in entry.findall(f"{atom}author")]
    published = text_of(entry, f"{atom}published") or text_of(entry, f"{atom}updated")
    return _RawItem(
        guid=text_of(entry, f"{atom}id"),
        title=text_of(entry, f"{atom}title"),
        description=text_of(entry, f"{atom}summary"),
        link=_atom_alternate(entry),
        categories=tuple(c.get("term", "") for c in entry.findall(f"{atom}category")),
        announce=text_of(entry, f"{{{ARXIV_NS}}}announce_type"),
        creators=tuple(creators),
        date=parse_iso(published) or day,
    )


def _atom_alternate(entry: ET.Element) -> str:
    for link in entry.findall(f"{{{ATOM_NS}}}link"):
        if link.get("rel", "alternate") == "alternate":
            return link.get("href", "")
    return ""


def _to_sighting(config: SourceConfig, raw: _RawItem) -> Sighting:
    prefix = _PREFIX_RE.match(raw.description)
    ident = _item_id(raw, prefix)
    if ident is None:
        where = (raw.guid or raw.link)[:200]
        raise BadItemError("no arXiv id", f"no arXiv id in guid, description or link {where!r}")
    announce = _announce(raw.announce or (prefix["type"] if prefix else ""))
    abstract = raw.description[prefix.end() :] if prefix else raw.description
    abs_url, pdf_url = arxiv_links(ident.id)
    categories = dict.fromkeys(c.strip() for c in raw.categories if c.strip())
    paper = Paper(
        key=ident.id,
        title=display_text(raw.title),
        abstract=display_text(abstract),
        version=ident.version,
        authors=tuple(name for text in raw.creators for name in split_authors(text)),
        categories=tuple(categories),
        published=raw.date,
        links=Links(abs=abs_url, pdf=pdf_url),
        sources=(config.name,),
    )
    return Sighting(paper, announce)


def _item_id(raw: _RawItem, prefix: re.Match[str] | None) -> ArxivId | None:
    """The id and version from the guid, else from the description prefix, else the link."""
    from_prefix = parse_arxiv_id(prefix["id"]) if prefix else None
    ident = parse_arxiv_id(raw.guid) if raw.guid else None
    ident = ident or from_prefix or find_arxiv_id_in_url(raw.link)
    if ident is not None and ident.version is None and from_prefix is not None:
        return ArxivId(ident.id, from_prefix.version)
    return ident


def _announce(value: str) -> AnnounceType:
    value = value.strip().lower() or AnnounceType.NEW.value
    try:
        return AnnounceType(value)
    except ValueError:
        reason = "unknown announce type"
        raise BadItemError(reason, f"{reason} {value[:100]!r}") from None


class ArxivRssSource:
    def __init__(self, config: SourceConfig, http: HttpClient) -> None:
        self.config = config
        self._http = http

    async def fetch(self, state: SourceState) -> FetchResult:
        response = await conditional_get(
            self.config, self._http, state, throttle_key=ARXIV_THROTTLE
        )
        if response.not_modified:
            return not_modified_result(response)
        if not response.ok:
            message = await asyncio.to_thread(feed_error_message, response.body)
            if message is not None:
                raise parse_error(self.config, f"feed error: {message}")
            raise http_error(self.config, response)
        # Parsing a large feed takes a while: off the event loop (web, health checks).
        parsed = await asyncio.to_thread(parse_arxiv_rss, self.config, response.body)
        note = None if parsed.items else EMPTY_NOTE
        return FetchResult(parsed.items, cache_update(response), note=note, bad_items=parsed.bad)
