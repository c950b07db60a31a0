"""Paperbell's values as PostgreSQL row values and back.

asyncpg already maps ``timestamptz`` to aware datetimes, ``text[]`` to lists and ``bytea``
to bytes; this adds the checks and shapes: every datetime written is aware (converted to
UTC, a naive one refused), and text loses NUL characters, which PostgreSQL's text cannot
hold (nothing paperbell shows a reader keeps them anyway: ``bot.text`` strips controls).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from bot.errors import InvalidQueryError
from bot.models import HttpCacheEntry, Links, Paper, Sighting, SourceState
from bot.store.merge import to_utc

PAPER_COLUMNS = (
    "key",
    "version",
    "title",
    "abstract",
    "authors",
    "categories",
    "published",
    "updated",
    "link_abs",
    "link_pdf",
    "link_hf",
    "link_code",
    "upvotes",
    "comments",
    "github_stars",
    "sources",
    "first_seen",
    "arxiv_comment",
    "journal_ref",
)
STATE_COLUMNS = (
    "source_id",
    "http_cache",
    "last_success",
    "last_error",
    "last_error_at",
    "last_note",
)


def utc(when: datetime) -> datetime:
    """``when`` in UTC; ValueError (a StoreError at the boundary) when it is naive."""
    return to_utc(when)


def opt_utc(when: datetime | None) -> datetime | None:
    return None if when is None else to_utc(when)


def text(value: str) -> str:
    return value.replace("\x00", "")


def opt_text(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "")


def texts(values: Sequence[str]) -> list[str]:
    return [v.replace("\x00", "") for v in values]


def without_nul(sightings: Sequence[Sighting]) -> list[Sighting]:
    """The sightings with NUL characters dropped from their text, before merging: what is
    stored then equals what was merged, so an item carrying a NUL does not look changed on
    every fetch."""
    return [replace(s, paper=_clean(s.paper)) if _has_nul(s.paper) else s for s in sightings]


def _texts_of(paper: Paper) -> list[str]:
    links = [paper.links.abs, paper.links.pdf, paper.links.hf, paper.links.code]
    return [paper.key, paper.title, paper.abstract, *paper.authors, *paper.categories,
            *paper.sources, *(link for link in links if link), paper.arxiv_comment,
            paper.journal_ref]  # fmt: skip


def _has_nul(paper: Paper) -> bool:
    return any("\x00" in value for value in _texts_of(paper))


def _clean(paper: Paper) -> Paper:
    links = paper.links
    return replace(
        paper,
        key=text(paper.key),
        title=text(paper.title),
        abstract=text(paper.abstract),
        authors=tuple(texts(paper.authors)),
        categories=tuple(texts(paper.categories)),
        sources=tuple(texts(paper.sources)),
        arxiv_comment=text(paper.arxiv_comment),
        journal_ref=text(paper.journal_ref),
        links=Links(
            abs=opt_text(links.abs),
            pdf=opt_text(links.pdf),
            hf=opt_text(links.hf),
            code=opt_text(links.code),
        ),
    )


def paper_values(paper: Paper) -> tuple[Any, ...]:
    """Every column of PAPER_COLUMNS, key first, in that order."""
    if paper.first_seen is None:
        raise ValueError(f"paper {paper.key!r} has no first_seen; merge it before storing")
    links = paper.links
    return (
        text(paper.key),
        paper.version,
        text(paper.title),
        text(paper.abstract),
        texts(paper.authors),
        texts(paper.categories),
        opt_utc(paper.published),
        opt_utc(paper.updated),
        opt_text(links.abs),
        opt_text(links.pdf),
        opt_text(links.hf),
        opt_text(links.code),
        paper.upvotes,
        paper.comments,
        paper.github_stars,
        texts(paper.sources),
        utc(paper.first_seen),
        text(paper.arxiv_comment),
        text(paper.journal_ref),
    )


def paper_from_row(row: asyncpg.Record | Sequence[Any]) -> Paper:
    values = tuple(row)
    (key, version, title, abstract, authors, categories, published, updated) = values[:8]
    (link_abs, link_pdf, link_hf, link_code, upvotes, comments, stars) = values[8:15]
    sources, first_seen, arxiv_comment, journal_ref = values[15:19]
    return Paper(
        key=key,
        version=version,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        categories=tuple(categories),
        published=published,
        updated=updated,
        links=Links(abs=link_abs, pdf=link_pdf, hf=link_hf, code=link_code),
        upvotes=upvotes,
        comments=comments,
        github_stars=stars,
        sources=tuple(sources),
        first_seen=first_seen,
        arxiv_comment=arxiv_comment,
        journal_ref=journal_ref,
    )


def http_cache_value(cache: dict[str, HttpCacheEntry]) -> dict[str, dict[str, str | None]]:
    return {
        text(url): {"etag": opt_text(e.etag), "last_modified": opt_text(e.last_modified)}
        for url, e in cache.items()
    }


def state_from_row(row: asyncpg.Record) -> SourceState:
    source_id, cache, last_success, last_error, last_error_at, last_note = tuple(row)
    entries = {
        url: HttpCacheEntry(etag=v.get("etag"), last_modified=v.get("last_modified"))
        for url, v in cache.items()
    }
    return SourceState(
        source_id=source_id,
        http_cache=entries,
        last_success=last_success,
        last_error=last_error,
        last_error_at=last_error_at,
        last_note=last_note,
    )


def check_limit(limit: int | None) -> int | None:
    """An optional positive limit (None: no limit, as SQL's ``LIMIT NULL``)."""
    if limit is not None and limit < 1:
        raise InvalidQueryError(f"limit must be at least 1, not {limit}")
    return limit
