"""The storage interface the rest of paperbell sees.

Everything above this line talks to a ``Store``; SQLite is one implementation
(``bot.store.sqlite``), and the contract tests in ``tests/store_contract.py`` are what a
second one (PostgreSQL) must pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.models import Paper, Sighting, SourceState, UpsertResult


class Store(Protocol):
    async def ingest(
        self, sightings: Sequence[Sighting], state: SourceState, now: datetime
    ) -> UpsertResult:
        """Merge one source's sightings into stored papers and save that source's state.

        One transaction: either every sighting and the new state are stored, or nothing.
        A replacement announcement of an unknown paper is stored but counted as skipped.
        """
        ...

    async def record_source_error(self, source_id: str, error: str, now: datetime) -> None:
        """Remember that a source failed, leaving its papers and HTTP validators alone."""
        ...

    async def get_source_state(self, source_id: str) -> SourceState | None: ...

    async def list_source_states(self) -> list[SourceState]: ...

    async def get_paper(self, key: str) -> Paper | None: ...

    async def list_papers(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers published (or, lacking a date, first seen) at or after ``since``, newest first."""
        ...

    async def search(self, text: str, limit: int = 10) -> list[Paper]:
        """Full-text search over title, abstract and authors, best match first.

        ``text`` is plain words from a user, never raw FTS syntax.
        """
        ...

    async def close(self) -> None: ...
