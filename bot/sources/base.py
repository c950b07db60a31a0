"""What every source is: something that fetches once and returns sightings or raises."""

from __future__ import annotations

from typing import Protocol

from bot.models import FetchResult, SourceState
from bot.settings import SourceConfig


class Source(Protocol):
    config: SourceConfig

    async def fetch(self, state: SourceState) -> FetchResult:
        """Fetch and parse everything this source offers now.

        Raise a ``SourceError`` (``FetchError``, ``RateLimitedError``, ``SourceParseError``)
        with a message fit for an operator; never return a partial result. The one
        exception is an item that cannot be read: it is left out and listed in
        ``bad_items``, so one hostile item never costs the source its other papers.
        ``state.http_cache`` carries validators for conditional GETs; the result carries the
        validators to keep.
        """
        ...
