"""Papers as each kind of source presents them, and a one-line ingest, for the store tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.models import AnnounceType, Links, Paper, Sighting, SourceState, UpsertResult
from bot.store.protocols import PaperStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=6)


def arxiv_paper(key: str, **fields: object) -> Paper:
    """A paper as arXiv RSS presents it: versioned, categorised, arXiv links."""
    base = Paper(
        key=key,
        title=f"Paper {key}",
        abstract=f"Abstract of {key}.",
        version=1,
        authors=("Ada Lovelace",),
        categories=("cs.LG",),
        published=datetime(2026, 3, 1, 5, 0, tzinfo=UTC),
        updated=datetime(2026, 3, 1, 5, 0, tzinfo=UTC),
        links=Links(abs=f"https://arxiv.org/abs/{key}", pdf=f"https://arxiv.org/pdf/{key}"),
        sources=("arxiv",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def hf_paper(key: str, **fields: object) -> Paper:
    """A paper as HF Daily Papers presents it: no version or categories, but upvotes."""
    base = Paper(
        key=key,
        title=f"Paper {key}",
        abstract=f"HF abstract of {key}.",
        authors=("Ada Lovelace",),
        published=datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        links=Links(hf=f"https://huggingface.co/papers/{key}"),
        upvotes=4,
        comments=2,
        sources=("hf",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def feed_paper(key: str, **fields: object) -> Paper:
    """A paper met through a blog feed that linked its arXiv id."""
    base = Paper(
        key=key,
        title=f"A blog post about {key}",
        links=Links(abs=f"https://blog.example/{key}"),
        published=datetime(2026, 3, 3, 12, 0, tzinfo=UTC),
        sources=("ml-blog",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def sightings(*papers: Paper, announce: AnnounceType = AnnounceType.NEW) -> list[Sighting]:
    return [Sighting(p, announce) for p in papers]


async def ingest(
    store: PaperStore, papers: list[Sighting], source: str = "src", now: datetime = NOW
) -> UpsertResult:
    return await store.ingest(papers, SourceState(source), now)
