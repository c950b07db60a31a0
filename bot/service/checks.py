"""The checks the facade runs on what a person typed: each raises a ``UserError`` (or a
``UsageError``) whose text names the problem and the fix; and the time zones a person may
pick (``timezone_names``, for the pickers of the web and Discord)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.errors import UsageError, UserError
from bot.matching.query import paper_key
from bot.sources.arxiv_ids import find_arxiv_id_in_url, parse_arxiv_id
from bot.store.protocols import Rating


@cache
def timezone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def why_key(text: str) -> str:
    """The stored key of a paper as people name it: an arXiv id with or without version,
    an arXiv abs/pdf URL, a Hugging Face papers URL, or a feed paper's ``feed:`` key."""
    found = parse_arxiv_id(text) or find_arxiv_id_in_url(text)  # a link typed without https://
    key = found.id if found else paper_key(text) if "://" not in text else None
    if key is None:
        raise UsageError(
            f"{text.strip()!r} is not a paper id: give an arXiv id (2406.11779 or "
            "2406.11779v2) or an arxiv.org/abs, arxiv.org/pdf or huggingface.co/papers URL"
        )
    return key


def check_min_relevance(value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        raise UsageError(f"min_relevance must be between 0 and 1, not {value:g}")


def check_ratings(
    like: Sequence[str], dislike: Sequence[str]
) -> tuple[dict[str, Rating], list[str]]:
    """Paper ids as typed → stored keys and ratings, and a line for each id that is no
    paper id or is both liked and disliked."""
    out: dict[str, Rating] = {}
    bad: list[str] = []
    for rating, ids in ((Rating.LIKE, like), (Rating.DISLIKE, dislike)):
        for text in ids:
            key = paper_key(text)
            if key is None:
                bad.append(
                    f"{text!r} is not a paper id: write an arXiv id like 2406.11779 "
                    "or a key as `paperbell papers` shows it"
                )
            elif out.get(key, rating) is not rating:
                bad.append(f"{key} is both liked and disliked: choose one")
            else:
                out[key] = rating
    if not out and not bad:
        raise UsageError("name at least one paper to like or dislike")
    return out, bad


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"{name!r} is not a time zone I know; try one like Europe/Berlin") from None
    return name


def check_range(what: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise UserError(f"{what} must be between {low} and {high}, not {value}")
    return value
