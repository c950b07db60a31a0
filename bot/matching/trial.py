"""Queries tried on stored papers, ``like:`` included: the hit rates ``test-query``, the
web preview and the manage page show, all counted the way the match step matches.

Trying a query analyses every paper of the window: a week of a busy source is some 10,000
papers and seconds of CPU. The daemon serves the web pages on its event loop, so the work
goes in slices that yield between them: an unsubscribe or a send waits one slice, not the
whole preview."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from bot.matching.matcher import Match, Matcher
from bot.matching.query import Query, like_keys
from bot.models import Paper
from bot.relevance.similar import LikeTargets
from bot.store.protocols import Store

SLICE = 100  # papers analysed between two yields to the event loop: some 20-40 ms


async def try_queries(
    store: Store, queries: Mapping[int, Query], papers: Sequence[Paper]
) -> list[tuple[Paper, Match]]:
    """Each (paper, match) of ``queries`` (by id) over ``papers``, in paper order. A
    ``like:`` atom holds for the papers whose vectors are close to its paper's."""
    matcher = Matcher()
    wanted: set[str] = set()
    for sub_id, query in queries.items():
        matcher.add(sub_id, query)
        wanted |= like_keys(query)
    likes: dict[str, frozenset[str]] = {}
    if wanted:  # only then are vectors read
        targets = await LikeTargets.load(store, wanted)
        likes = await targets.similar(store, [p.key for p in papers])
    none: frozenset[str] = frozenset()
    found: list[tuple[Paper, Match]] = []
    for start in range(0, len(papers), SLICE):
        if start:
            await asyncio.sleep(0)
        for p in papers[start : start + SLICE]:
            found += [(p, m) for m in matcher.match(p, likes.get(p.key, none))]
    return found
