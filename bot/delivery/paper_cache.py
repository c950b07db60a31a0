"""Papers read for messages, kept for a minute.

A day's alerts and digests show the same few thousand papers to thousands of readers;
read and decoded again for every claim and every digest, they were a large part of the
dispatcher's time at 50,000 subscriptions (``bench/cycle.py``). The cache forgets
everything every ``ttl`` seconds, so a paper that changed (a new version, more upvotes)
shows in mail at most that late, and it never holds more than ``size`` papers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bot.models import Paper
from bot.store.protocols import Store

TTL_SECONDS = 60.0
SIZE = 4096  # papers; a day of arXiv is 1,000-2,000, some 3 KB each


class PaperCache:
    """``Store.get_papers`` through a small cache that expires as a whole."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = TTL_SECONDS,
        size: int = SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._ttl, self._size, self._clock = store, ttl, size, clock
        self._papers: dict[str, Paper] = {}
        self._since = clock()

    async def get_papers(self, keys: Sequence[str]) -> dict[str, Paper]:
        """The stored papers among ``keys``, by key (an unknown key is left out)."""
        if self._clock() - self._since >= self._ttl:
            self.clear()
        missing = [k for k in dict.fromkeys(keys) if k not in self._papers]
        found = await self._store.get_papers(missing) if missing else {}
        known = {k: p for k in keys if (p := self._papers.get(k) or found.get(k)) is not None}
        if len(self._papers) + len(found) > self._size:
            self.clear()
        self._papers.update(found)
        return known

    def clear(self) -> None:
        self._papers = {}
        self._since = self._clock()
