"""Papers and what paperbell keeps about itself: the ``PaperStore`` and ``MetaStore`` roles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.models import AlertRule, Paper, Sighting, SourceState, UpsertResult
from bot.store.records import Lease, QueuedPapers


class PaperStore(Protocol):
    """Papers, their sources' state, search, and the queue of papers waiting to be matched.

    The sources write here (``ingest``, ``record_source_error``); matching, search and the
    messages read."""

    async def ingest(
        self,
        sightings: Sequence[Sighting],
        state: SourceState,
        now: datetime,
        alert: AlertRule | None = None,
    ) -> UpsertResult:
        """Merge one source's sightings into stored papers and save that source's state.

        One transaction: either every sighting and the new state are stored, or nothing.
        A replacement announcement of an unknown paper is stored but counted as skipped.
        New and updated papers wait for the match step, except those ``alert`` holds quiet
        (stored, never matched; counted in ``quiet``).
        """
        ...

    async def record_source_error(self, source_id: str, error: str, now: datetime) -> None:
        """Remember that a source failed, leaving its papers and HTTP validators alone."""
        ...

    async def get_source_state(self, source_id: str) -> SourceState | None: ...

    async def list_source_states(self) -> list[SourceState]: ...

    async def get_paper(self, key: str) -> Paper | None: ...

    async def get_papers(self, keys: Sequence[str]) -> dict[str, Paper]: ...

    async def list_papers(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers published (or, lacking a date, first seen) at or after ``since``, newest first."""
        ...

    async def count_papers_since(self, since: datetime) -> int:
        """How many papers ``list_papers(since=since)`` lists, counted by the store (a week
        of a busy source is 10,000s of papers: too many to read only to count them)."""
        ...

    async def search(self, text: str, limit: int = 10) -> list[Paper]:
        """Full-text search over title, abstract and authors, best match first.

        ``text`` is plain words from a user, never raw FTS syntax.
        """
        ...

    async def search_candidates(self, match: str | None, limit: int, offset: int) -> list[Paper]:
        """A page of papers the index says may match: ``match`` is an FTS5 expression built
        by ``bot.matching.search`` (never user text), best first; ``None`` pages through every
        paper, newest first."""
        ...

    async def queued_for_matching(self, limit: int = 5000) -> QueuedPapers:
        """Up to ``limit`` papers ``ingest`` stored that no match step has taken yet, the
        most recently queued first (new papers are matched before an old backlog).

        ``ingest`` queues its new and updated papers in its own transaction, so a crash
        between storing and matching delays alerts but never loses them. The match step
        reads page after page until the queue is empty; there is no cap per cycle.
        """
        ...


class MetaStore(Protocol):
    """What paperbell keeps about itself (daemon record, heartbeats, failure streaks, the
    synced command hash), and the store's own lifetime."""

    async def get_meta(self, key: str) -> str | None:
        """A value paperbell keeps about itself (e.g. the synced Discord command hash)."""
        ...

    async def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any earlier one."""
        ...

    async def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``ttl`` from now; True if
        ``holder`` now holds it, False while someone else's lease has not yet expired."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give lease ``name`` up, if ``holder`` holds it (else nothing changes)."""
        ...

    async def get_lease(self, name: str) -> Lease | None:
        """Who holds lease ``name`` and until when; None when free or expired."""
        ...

    async def close(self) -> None: ...
