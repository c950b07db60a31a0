"""What ingest accepts from a source, whatever the source sent. Pure: no I/O.

Every parser already skips items it cannot read; these checks hold for all of them, on
values that read fine but cannot be right or would swamp a message:

* dates: ``published`` and ``updated`` must fall between 1991-01-01 (arXiv's start) and two
  days after now (time zones, clocks a little off). An item dated outside is *skipped*
  ("bad date"), not clamped: a date we cannot trust cannot tell whether the paper is news,
  and a clamped one would still sort first (or last) forever;
* counters (upvotes, comments, GitHub stars) and versions must be what SQLite holds
  (0 ≤ n < 2**63; versions from 1), else the item is skipped ("bad upvotes");
* text is capped: title (and arXiv's comment and journal reference) 1,000 characters,
  abstract 20,000, 500 authors of 300 characters
  each, 50 categories of 100; a cut text ends with "…" and each cut field is recorded;
  a link longer than 2,000 characters is dropped (a cut URL leads nowhere).
  Invisible controls (bidi overrides, zero-width characters) are removed here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.models import INT_MAX, BadItem, Links, Paper, Sighting
from bot.text import strip_invisible

EARLIEST = datetime(1991, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 500
MAX_AUTHOR = 300
MAX_CATEGORIES = 50
MAX_CATEGORY = 100
MAX_LINK = 2_000
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Vetted:
    sightings: tuple[Sighting, ...]
    bad: tuple[BadItem, ...] = ()  # items skipped
    truncated: tuple[str, ...] = ()  # one field name per cut field


def vet(sightings: Sequence[Sighting], now: datetime) -> Vetted:
    """The sightings fit to store, each bounded; the others as ``BadItem``s."""
    good: list[Sighting] = []
    bad: list[BadItem] = []
    cut: list[str] = []
    for sighting in sightings:
        problem = _problem(sighting.paper, now)
        if problem is not None:
            bad.append(problem)
            continue
        paper, fields = bounded(sighting.paper)
        cut.extend(fields)
        good.append(replace(sighting, paper=paper))
    return Vetted(tuple(good), tuple(bad), tuple(cut))


def _problem(paper: Paper, now: datetime) -> BadItem | None:
    for name in ("published", "updated"):
        when: datetime | None = getattr(paper, name)
        if when is not None and not EARLIEST <= when <= now + FUTURE_SLACK:
            return BadItem("bad date", f"{paper.key}: {name} {when.isoformat()} is implausible")
    for name in ("upvotes", "comments", "github_stars", "version"):
        value: int | None = getattr(paper, name)
        least = 1 if name == "version" else 0
        if value is not None and not least <= value <= INT_MAX:
            shown = str(value) if value.bit_length() < 200 else "a huge number"
            return BadItem(f"bad {name}", f"{paper.key}: {name} {shown} is out of range")
    return None


def bounded(paper: Paper) -> tuple[Paper, list[str]]:
    """``paper`` with its text capped and cleaned, and the names of the fields cut."""
    cut: list[str] = []
    title = _cap(paper.title, MAX_TITLE, "title", cut)
    abstract = _cap(paper.abstract, MAX_ABSTRACT, "abstract", cut)
    authors = _cap_list(paper.authors, MAX_AUTHORS, MAX_AUTHOR, "authors", cut)
    categories = _cap_list(paper.categories, MAX_CATEGORIES, MAX_CATEGORY, "categories", cut)
    links = _links(paper.links, cut)
    comment = _cap(paper.arxiv_comment, MAX_TITLE, "arxiv_comment", cut)
    journal = _cap(paper.journal_ref, MAX_TITLE, "journal_ref", cut)
    fields = (title, abstract, authors, categories, links, comment, journal)
    if fields == (
        paper.title,
        paper.abstract,
        paper.authors,
        paper.categories,
        paper.links,
        paper.arxiv_comment,
        paper.journal_ref,
    ):
        return paper, cut
    return replace(
        paper,
        title=title,
        abstract=abstract,
        authors=authors,
        categories=categories,
        links=links,
        arxiv_comment=comment,
        journal_ref=journal,
    ), cut


def _cap(text: str, limit: int, name: str, cut: list[str]) -> str:
    if len(text) > limit:
        cut.append(name)
        text = text[: limit - 1].rstrip() + ELLIPSIS
    return strip_invisible(text)


def _cap_list(
    items: Sequence[str], count: int, length: int, name: str, cut: list[str]
) -> tuple[str, ...]:
    over = len(items) > count or any(len(item) > length for item in items)
    if over:
        cut.append(name)
    capped = (_cap(item, length, name, []) for item in items[:count])
    return tuple(item for item in capped if item)


def _links(links: Links, cut: list[str]) -> Links:
    values = (links.abs, links.pdf, links.hf, links.code)
    if all(value is None or len(value) <= MAX_LINK for value in values):
        return links
    cut.append("links")
    kept = [value if value is None or len(value) <= MAX_LINK else None for value in values]
    return Links(*kept)


def count_by(reasons: Iterable[str]) -> dict[str, int]:
    """``{"bad date": 2, ...}`` in the order first met."""
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return counts
