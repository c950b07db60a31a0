"""Turning paperbell's values into SQLite row values and back, and user text into FTS5 queries.

Datetimes are stored as fixed-width ISO-8601 UTC text (``isoformat`` with microseconds), so
text order is time order and a round trip gives back an equal value. Lists are JSON arrays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.errors import InvalidQueryError
from bot.models import HttpCacheEntry, Links, Paper, SourceState
from bot.store.merge import to_utc

# Column order shared by every SELECT and by paper_values(); key is first.
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
MAX_SEARCH_WORDS = 32

Row = Sequence[Any]
# Values per IN (...) list (or owners per bulk digest insert, six values each). A query's
# parameters are capped: 32,766 by default in the SQLite RETURNING needs (3.35 or newer),
# lower in a build that sets its own limit; and a short list keeps each statement quick.
CHUNK = 500


def chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    """``items`` in runs of ``CHUNK``, for one IN (...) list each."""
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


# A word is worth searching for only if it holds a letter or digit; "-", "*" or "(" alone
# would become an empty FTS phrase.
_WORDLIKE = re.compile(r"[^\W_]")


def iso(when: datetime) -> str:
    return to_utc(when).isoformat(timespec="microseconds")


def opt_iso(when: datetime | None) -> str | None:
    return None if when is None else iso(when)


def opt_datetime(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# One encoder for every row: json.dumps with options builds a new one on each call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode


def _json_list(items: Sequence[str]) -> str:
    return _to_json(items)  # a tuple encodes as a JSON array


def paper_values(paper: Paper) -> tuple[Any, ...]:
    """Every column of PAPER_COLUMNS except key, in that order."""
    if paper.first_seen is None:
        raise ValueError(f"paper {paper.key!r} has no first_seen; merge it before storing")
    links = paper.links
    return (
        paper.version,
        paper.title,
        paper.abstract,
        _json_list(paper.authors),
        _json_list(paper.categories),
        opt_iso(paper.published),
        opt_iso(paper.updated),
        links.abs,
        links.pdf,
        links.hf,
        links.code,
        paper.upvotes,
        paper.comments,
        paper.github_stars,
        _json_list(paper.sources),
        iso(paper.first_seen),
        paper.arxiv_comment,
        paper.journal_ref,
    )


def paper_from_row(row: Row) -> Paper:
    (key, version, title, abstract, authors, categories, published, updated) = row[:8]
    (link_abs, link_pdf, link_hf, link_code, upvotes, comments, stars) = row[8:15]
    sources, first_seen, arxiv_comment, journal_ref = row[15:19]
    return Paper(
        key=key,
        version=version,
        title=title,
        abstract=abstract,
        authors=tuple(json.loads(authors)),
        categories=tuple(json.loads(categories)),
        published=opt_datetime(published),
        updated=opt_datetime(updated),
        links=Links(abs=link_abs, pdf=link_pdf, hf=link_hf, code=link_code),
        upvotes=upvotes,
        comments=comments,
        github_stars=stars,
        sources=tuple(json.loads(sources)),
        first_seen=opt_datetime(first_seen),
        arxiv_comment=arxiv_comment,
        journal_ref=journal_ref,
    )


def http_cache_json(cache: dict[str, HttpCacheEntry]) -> str:
    plain = {
        url: {"etag": entry.etag, "last_modified": entry.last_modified}
        for url, entry in cache.items()
    }
    return json.dumps(plain, ensure_ascii=False, sort_keys=True)


def state_from_row(row: Row) -> SourceState:
    source_id, cache, last_success, last_error, last_error_at, last_note = row
    entries = {
        url: HttpCacheEntry(etag=v.get("etag"), last_modified=v.get("last_modified"))
        for url, v in json.loads(cache).items()
    }
    return SourceState(
        source_id=source_id,
        http_cache=entries,
        last_success=opt_datetime(last_success),
        last_error=last_error,
        last_error_at=opt_datetime(last_error_at),
        last_note=last_note,
    )


def fts_query(text: str) -> str:
    """User words as an FTS5 query that cannot inject syntax: every word a quoted string.

    Quoted strings are implicitly ANDed; FTS5 operators (``AND``, ``NEAR(``, ``*``, ``:``,
    ``-``, ``^``) inside quotes are just text for the tokenizer.
    """
    words = [w for w in text.split() if _WORDLIKE.search(w)]
    if not words:
        raise InvalidQueryError("search needs at least one word")
    if len(words) > MAX_SEARCH_WORDS:
        raise InvalidQueryError(
            f"search takes at most {MAX_SEARCH_WORDS} words; this one has {len(words)}"
        )
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def check_limit(limit: int | None) -> int:
    """SQLite's LIMIT value for an optional positive limit (-1 means no limit)."""
    if limit is None:
        return -1
    if limit < 1:
        raise InvalidQueryError(f"limit must be at least 1, not {limit}")
    return limit
