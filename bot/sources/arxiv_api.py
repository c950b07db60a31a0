"""arXiv API: ``GET /api/query`` (Atom 1.0), newest submissions first, paged with ``start``.

Parsed by namespace URI, so both layouts read the same: the legacy one (hard-wrapped
fields, ``arxiv:`` declared inline on each element, ``scheme`` on ``primary_category``) and
the current one (namespaces on ``<feed>``, one-line fields). Every request goes through the
"arxiv" throttle shared with arXiv RSS sources.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bot.errors import BadItemError
from bot.models import BadItem, FetchResult, Links, Paper, Sighting, SourceState
from bot.settings import SourceConfig
from bot.sources._common import (
    ARXIV_THROTTLE,
    arxiv_links,
    fetch,
    http_error,
    local_name,
    parse_error,
    parse_iso,
    parse_items,
    parse_xml,
    text_of,
)
from bot.sources.arxiv_ids import find_arxiv_id_in_url
from bot.sources.http import HttpClient, HttpResponse, is_file_url
from bot.text import display_text, name_to_unicode

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH_NS = (
    "http://a9.com/-/spec/opensearch/1.1/",
    "http://a9.com/-/spec/opensearchrss/1.0/",  # older OpenSearch responses
)
_ERROR_IDS = ("http://arxiv.org/api/errors", "https://arxiv.org/api/errors")
EMPTY_NOTE = "no papers match the query"


@dataclass(frozen=True, slots=True)
class ApiPage:
    total: int | None  # opensearch:totalResults; None if the feed did not say
    papers: tuple[Paper, ...]
    bad: tuple[BadItem, ...] = ()  # entries skipped


def parse_arxiv_api(config: SourceConfig, body: bytes) -> ApiPage:
    """One page of API results; the error entry raises ``SourceParseError``."""
    root = parse_xml(config, body)
    if root.tag != f"{ATOM}feed":
        raise parse_error(config, f"not an Atom feed (root element <{local_name(root.tag)}>)")
    entries = root.findall(f"{ATOM}entry")
    message = _error_message(entries)
    if message is not None:
        raise parse_error(config, f"arXiv API error: {message}")
    parsed = parse_items(config, entries, lambda _, entry: _to_paper(config, entry))
    return ApiPage(_total_results(config, root), parsed.items, parsed.bad)


def api_error_message(body: bytes) -> str | None:
    """The message of the API's error entry, or None if ``body`` holds none."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    return _error_message(root.findall(f"{ATOM}entry"))


def _error_message(entries: list[ET.Element]) -> str | None:
    for entry in entries:
        ident = text_of(entry, f"{ATOM}id").strip()
        if ident.startswith(_ERROR_IDS) or text_of(entry, f"{ATOM}title").strip() == "Error":
            return display_text(text_of(entry, f"{ATOM}summary")) or "unspecified error"
    return None


def _total_results(config: SourceConfig, root: ET.Element) -> int | None:
    for namespace in OPENSEARCH_NS:
        node = root.find(f"{{{namespace}}}totalResults")
        if node is not None:
            try:
                return int((node.text or "").strip())
            except ValueError:
                raise parse_error(config, f"totalResults {node.text!r} is not a number") from None
    return None


def _to_paper(config: SourceConfig, entry: ET.Element) -> Paper:
    entry_id = text_of(entry, f"{ATOM}id").strip()
    ident = find_arxiv_id_in_url(entry_id)
    if ident is None:
        raise BadItemError("no arXiv id", f"id {entry_id[:200]!r} is not an arXiv abs URL")
    names = (name_to_unicode(text_of(a, f"{ATOM}name")) for a in entry.findall(f"{ATOM}author"))
    return Paper(
        key=ident.id,
        title=display_text(text_of(entry, f"{ATOM}title")),
        abstract=display_text(text_of(entry, f"{ATOM}summary")),
        version=ident.version,
        authors=tuple(name for name in names if name),
        categories=_categories(entry),
        published=parse_iso(text_of(entry, f"{ATOM}published")),
        updated=parse_iso(text_of(entry, f"{ATOM}updated")),
        links=_links(entry, ident.id),
        sources=(config.name,),
        arxiv_comment=display_text(text_of(entry, f"{ARXIV}comment")),
        journal_ref=display_text(text_of(entry, f"{ARXIV}journal_ref")),
    )


def _categories(entry: ET.Element) -> tuple[str, ...]:
    """Primary category first, then the others, each once."""
    primary = entry.find(f"{ARXIV}primary_category")
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [c.get("term", "") for c in entry.findall(f"{ATOM}category")]
    return tuple(dict.fromkeys(term.strip() for term in terms if term.strip()))


def _links(entry: ET.Element, arxiv_id: str) -> Links:
    abs_url, pdf_url = arxiv_links(arxiv_id)
    for link in entry.findall(f"{ATOM}link"):
        href = link.get("href", "")
        if link.get("title") == "pdf" and href:
            pdf_url = href
        elif link.get("rel") == "alternate" and href:
            abs_url = href
    return Links(abs=abs_url, pdf=pdf_url)


class ArxivApiSource:
    def __init__(self, config: SourceConfig, http: HttpClient) -> None:
        self.config = config
        self._http = http

    async def fetch(self, state: SourceState) -> FetchResult:
        papers: dict[str, Paper] = {}
        bad: list[BadItem] = []
        start = 0
        while start < self.config.max_results:
            size = min(self.config.page_size, self.config.max_results - start)
            page = await self._page(start, size)
            for paper in page.papers:
                papers.setdefault(paper.key, paper)
            bad.extend(page.bad)
            start += len(page.papers) + len(page.bad)
            done = page.total is not None and start >= page.total
            if not page.papers or done or is_file_url(self.config.url):
                break
        note = None if papers or bad else EMPTY_NOTE
        sightings = tuple(Sighting(paper) for paper in papers.values())
        return FetchResult(sightings, note=note, bad_items=tuple(bad))

    async def _page(self, start: int, size: int) -> ApiPage:
        params: dict[str, str | int] = {
            "search_query": self.config.query,
            "start": start,
            "max_results": size,
            "sortBy": "submittedDate",
            "sortOrder": "descending",
        }
        response = await fetch(
            self.config, self._http, self.config.url, params=params, throttle_key=ARXIV_THROTTLE
        )
        if not response.ok:
            raise await self._status_error(response)
        # Parsing a large page takes a while: off the event loop (web, health checks).
        return await asyncio.to_thread(parse_arxiv_api, self.config, response.body)

    async def lookup(self, key: str) -> Paper | None:
        """One paper by its id (``id_list``), or None when arXiv knows no such paper."""
        params: dict[str, str | int] = {"id_list": key, "max_results": 1}
        response = await fetch(
            self.config, self._http, self.config.url, params=params, throttle_key=ARXIV_THROTTLE
        )
        if not response.ok:
            raise await self._status_error(response)
        page = await asyncio.to_thread(parse_arxiv_api, self.config, response.body)
        return next((p for p in page.papers if p.key == key), None)

    async def _status_error(self, response: HttpResponse) -> Exception:
        message = await asyncio.to_thread(api_error_message, response.body)
        if message is not None:
            return parse_error(self.config, f"arXiv API error: {message}")
        return http_error(self.config, response)
