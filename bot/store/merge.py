"""How a new sighting of a paper combines with what we already store. Pure: no I/O.

The rules, in short:

* an unknown paper is NEW, unless the sighting is a replacement announcement (a new
  version of a paper we never saw): that is stored but SKIPPED, never announced as new;
* a known paper keeps its ``first_seen``; the text (title, abstract, authors) comes from
  the record with the higher arXiv version, arXiv's own text winning a tie, and an empty
  value never replaces a non-empty one;
* categories and sources are unions; counters (upvotes, comments, stars) take the latest
  value a source provided; ``published`` is the earliest known, ``updated`` the latest;
* the result is UPDATED when anything stored changed, UNCHANGED otherwise.

On a tie the stored text is kept, so two sources that disagree slightly (HF strips TeX
backslashes, a blog reformats a title) cannot flip the record back and forth every cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from bot.models import Links, Outcome, Paper, Sighting, UpsertResult

ARXIV_SOURCE = "arxiv"

T = TypeVar("T")
Ordered = TypeVar("Ordered", int, datetime)


def merge(existing: Paper | None, sighting: Sighting, now: datetime) -> tuple[Paper, Outcome]:
    """Combine one sighting with the stored paper (or nothing) and say what that did.

    Raises ``ValueError`` for a naive datetime or a sighting of a different paper.
    """
    now = to_utc(now)
    incoming = normalise(sighting.paper)
    if existing is None:
        outcome = Outcome.SKIPPED if sighting.announce.is_replacement else Outcome.NEW
        return replace(incoming, first_seen=now), outcome
    if existing.key != incoming.key:
        raise ValueError(f"cannot merge paper {incoming.key!r} into {existing.key!r}")
    merged = combine(existing, incoming)
    return merged, Outcome.UNCHANGED if merged == existing else Outcome.UPDATED


def normalise(paper: Paper) -> Paper:
    """The same paper with UTC datetimes and no repeated category or source."""
    if _is_normal(paper):  # the usual case; replace() costs more than the whole check
        return paper
    return replace(
        paper,
        categories=_unique(paper.categories),
        sources=_unique(paper.sources),
        published=_opt_utc(paper.published),
        updated=_opt_utc(paper.updated),
        first_seen=_opt_utc(paper.first_seen),
    )


def combine(existing: Paper, incoming: Paper) -> Paper:
    """Field-by-field merge of two records of the same paper; ``existing`` keeps its key."""
    text_from_incoming = _text_rank(incoming) > _text_rank(existing)
    primary, secondary = (incoming, existing) if text_from_incoming else (existing, incoming)
    return replace(
        existing,
        version=_max_opt(existing.version, incoming.version),
        title=primary.title or secondary.title,
        abstract=primary.abstract or secondary.abstract,
        authors=primary.authors or secondary.authors,
        arxiv_comment=primary.arxiv_comment or secondary.arxiv_comment,
        journal_ref=primary.journal_ref or secondary.journal_ref,
        categories=_merge_categories(existing, incoming),
        published=_min_opt(existing.published, incoming.published),
        updated=_max_opt(existing.updated, incoming.updated),
        links=_merge_links(existing.links, incoming.links, _from_arxiv(incoming)),
        upvotes=_latest(existing.upvotes, incoming.upvotes),
        comments=_latest(existing.comments, incoming.comments),
        github_stars=_latest(existing.github_stars, incoming.github_stars),
        sources=_unique((*existing.sources, *incoming.sources)),
    )


def _is_normal(paper: Paper) -> bool:
    return (
        len(set(paper.categories)) == len(paper.categories)
        and len(set(paper.sources)) == len(paper.sources)
        and all(w is None or w.tzinfo is UTC for w in (paper.published, paper.updated))
        and (paper.first_seen is None or paper.first_seen.tzinfo is UTC)
    )


def to_utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: paperbell needs timezone-aware")
    return when.astimezone(UTC)


# --- one source's batch -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What storing one batch must write, and what to report about it."""

    inserts: tuple[Paper, ...]
    updates: tuple[Paper, ...]
    result: UpsertResult


def merge_batch(
    stored: Mapping[str, Paper], sightings: Sequence[Sighting], now: datetime
) -> BatchPlan:
    """Merge a whole batch against the stored papers; one outcome per distinct key.

    A key seen twice in the batch merges twice, in order. An unknown key is NEW if any of
    its sightings is not a replacement, else SKIPPED; a known key is UPDATED only if the
    final record differs from the stored one.
    """
    current: dict[str, Paper] = {}
    announced: set[str] = set()
    for sighting in sightings:
        key = sighting.paper.key
        current[key], _ = merge(current.get(key, stored.get(key)), sighting, now)
        if not sighting.announce.is_replacement:
            announced.add(key)
    return _plan(stored, current, announced)


def _plan(stored: Mapping[str, Paper], current: dict[str, Paper], announced: set[str]) -> BatchPlan:
    inserts = tuple(p for k, p in current.items() if k not in stored)
    updates = tuple(p for k, p in current.items() if k in stored and p != stored[k])
    new = tuple(p for p in inserts if p.key in announced)
    return BatchPlan(
        inserts=inserts,
        updates=updates,
        result=UpsertResult(
            new=new,
            updated=updates,
            unchanged=len(current) - len(inserts) - len(updates),
            skipped=len(inserts) - len(new),
        ),
    )


# --- helpers ----------------------------------------------------------------------------------


def _from_arxiv(paper: Paper) -> bool:
    return ARXIV_SOURCE in paper.sources


def _text_rank(paper: Paper) -> tuple[int, bool]:
    # An unknown version (HF, most feeds) ranks below any known one.
    return (paper.version or 0, _from_arxiv(paper))


def _merge_categories(existing: Paper, incoming: Paper) -> tuple[str, ...]:
    # arXiv knows the primary category; its order wins so the primary stays first.
    if _from_arxiv(incoming) and incoming.categories:
        return _unique((*incoming.categories, *existing.categories))
    return _unique((*existing.categories, *incoming.categories))


def _merge_links(existing: Links, incoming: Links, incoming_is_arxiv: bool) -> Links:
    def pick(ours: str | None, theirs: str | None, theirs_wins: bool) -> str | None:
        return (theirs or ours) if theirs_wins else (ours or theirs)

    return Links(
        abs=pick(existing.abs, incoming.abs, incoming_is_arxiv),
        pdf=pick(existing.pdf, incoming.pdf, incoming_is_arxiv),
        hf=pick(existing.hf, incoming.hf, False),
        code=pick(existing.code, incoming.code, False),
    )


def _latest(old: T | None, new: T | None) -> T | None:
    return old if new is None else new


def _max_opt(a: Ordered | None, b: Ordered | None) -> Ordered | None:
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)


def _min_opt(a: Ordered | None, b: Ordered | None) -> Ordered | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


def _opt_utc(when: datetime | None) -> datetime | None:
    return None if when is None else to_utc(when)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
