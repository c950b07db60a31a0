"""Queries tried on stored papers, ``like:`` included: the hit rates ``test-query``, the
web preview and the manage page show, all counted the way the match step matches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.matching.matcher import Match, Matcher
from bot.matching.query import Query, like_keys
from bot.models import Paper
from bot.relevance.similar import LikeTargets
from bot.store.protocols import Store


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
    return [(p, m) for p in papers for m in matcher.match(p, likes.get(p.key, none))]
