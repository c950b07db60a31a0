"""Hugging Face Daily Papers: ``GET /api/daily_papers?date=YYYY-MM-DD``.

Papers join a day's list for up to two weeks after their arXiv date, so every fetch polls
today and the ``config.days - 1`` days before (UTC), each with its own conditional-GET
validators. Both the 2024 and the 2026 layouts parse: we read only ``paper.*`` fields that
both have, plus the outer ``numComments``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bot.errors import BadItemError
from bot.models import BadItem, FetchResult, HttpCacheEntry, Links, Paper, Sighting, SourceState
from bot.settings import SourceConfig
from bot.sources._common import (
    NOT_MODIFIED,
    Parsed,
    arxiv_links,
    cache_update,
    fetch,
    http_error,
    parse_error,
    parse_items,
    source_time,
)
from bot.sources.arxiv_ids import parse_arxiv_id
from bot.sources.http import HttpClient, HttpResponse, is_file_url, request_url
from bot.text import display_text, name_to_unicode, redact_url

PAGE_SIZE = 100  # the API's maximum
MAX_PAGES = 20  # a day never holds 2000 papers; stops a server that repeats a full page
HF_THROTTLE = "huggingface"
Clock = Callable[[], datetime]


class _Author(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = ""


class _Paper(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    summary: str = ""
    authors: list[_Author] = Field(default_factory=list)
    publishedAt: datetime | None = None  # the API spells fields in camelCase
    upvotes: int | None = None
    githubRepo: str | None = None
    githubStars: int | None = None


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    paper: _Paper
    numComments: int | None = None


_DOCUMENT = TypeAdapter(list[Any])


def parse_hf_daily(config: SourceConfig, body: bytes) -> Parsed[Paper]:
    """Papers of one Daily Papers page; a malformed item is skipped, a malformed
    document (not JSON, not a list) fails the whole page."""
    try:
        raws = _DOCUMENT.validate_json(body)
    except ValidationError as exc:
        raise parse_error(config, _describe_invalid(exc)) from None
    return parse_items(config, raws, lambda _, raw: _to_paper(config, _validate(raw)))


def _validate(raw: Any) -> _Item:
    try:
        return _Item.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        # "bad upvotes", "bad id": the field, for the cycle line's count of skipped items
        reason = f"bad {first['loc'][-1]}" if first["loc"] else "bad item"
        raise BadItemError(reason, f"{where or 'item'}: {first['msg']}") from None


def _describe_invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return f"not valid JSON ({first['msg'].removeprefix('Invalid JSON: ')})"
    return f"expected a JSON list of papers ({first['msg']})"


def _to_paper(config: SourceConfig, item: _Item) -> Paper:
    raw = item.paper
    ident = parse_arxiv_id(raw.id)
    if ident is None:
        raise BadItemError("no arXiv id", f"paper.id {raw.id!r} is not an arXiv id")
    abs_url, pdf_url = arxiv_links(ident.id)
    names = (name_to_unicode(author.name) for author in raw.authors)
    return Paper(
        key=ident.id,
        title=display_text(raw.title),
        abstract=display_text(raw.summary),
        version=ident.version,
        authors=tuple(name for name in names if name),
        published=source_time(raw.publishedAt) if raw.publishedAt else None,
        links=Links(
            abs=abs_url,
            pdf=pdf_url,
            hf=f"https://huggingface.co/papers/{ident.id}",
            code=raw.githubRepo or None,
        ),
        upvotes=raw.upvotes,
        comments=item.numComments,
        github_stars=raw.githubStars,
        sources=(config.name,),
    )


def hf_error_message(body: bytes) -> str:
    """The ``{"error": ...}`` message Hugging Face sends with a 4xx, if any."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("error") or data.get("message") if isinstance(data, dict) else None
    return display_text(message) if isinstance(message, str) else ""


class HfDailySource:
    def __init__(self, config: SourceConfig, http: HttpClient, *, now: Clock | None = None) -> None:
        self.config = config
        self._http = http
        self._now = now or (lambda: datetime.now(UTC))

    def days(self) -> list[date]:
        """Today (UTC) first, then the days before it."""
        today = self._now().astimezone(UTC).date()
        return [today - timedelta(days=n) for n in range(self.config.days)]

    async def fetch(self, state: SourceState) -> FetchResult:
        papers: dict[str, Paper] = {}
        cache: dict[str, HttpCacheEntry] = {}
        bad: list[BadItem] = []
        fetched_any = False
        for day in [None] if is_file_url(self.config.url) else self.days():
            day_fetched = await self._fetch_day(day, state, papers, cache, bad)
            fetched_any = fetched_any or day_fetched
        sightings = tuple(Sighting(paper) for paper in papers.values())
        note = None if fetched_any else NOT_MODIFIED
        return FetchResult(sightings, cache, note=note, bad_items=tuple(bad))

    async def _fetch_day(
        self,
        day: date | None,
        state: SourceState,
        papers: dict[str, Paper],
        cache: dict[str, HttpCacheEntry],
        bad: list[BadItem],
    ) -> bool:
        """Fetch every page of one day into ``papers``; False if all were unchanged."""
        fetched = False
        for page in range(MAX_PAGES):
            response = await self._get_page(day, page, state)
            if response.not_modified:
                cache[response.url] = response.validators
                # Whether the page was full we cannot know; we went on last time if so.
                next_url = self._page_url(day, page + 1)
                if next_url not in state.http_cache:
                    break
                continue
            fetched = True
            cache.update(cache_update(response))
            # Parsing a large page takes a while: off the event loop (web, health checks).
            parsed = await asyncio.to_thread(parse_hf_daily, self.config, response.body)
            for paper in parsed.items:
                papers.setdefault(paper.key, paper)  # the most recent day wins
            bad.extend(parsed.bad)
            if day is None or len(parsed.items) + len(parsed.bad) < PAGE_SIZE:
                break
        return fetched

    def _params(self, day: date | None, page: int) -> dict[str, str | int] | None:
        if day is None:
            return None
        params: dict[str, str | int] = {"date": day.isoformat(), "limit": PAGE_SIZE}
        if page:
            params["p"] = page
        return params

    def _page_url(self, day: date | None, page: int) -> str:
        return redact_url(request_url(self.config.url, self._params(day, page)))

    async def _get_page(self, day: date | None, page: int, state: SourceState) -> HttpResponse:
        response = await fetch(
            self.config,
            self._http,
            self.config.url,
            params=self._params(day, page),
            cache=state.http_cache.get(self._page_url(day, page)),
            throttle_key=HF_THROTTLE,
        )
        if not response.ok and not response.not_modified:
            message = await asyncio.to_thread(hf_error_message, response.body)
            raise http_error(self.config, response, message)
        return response
