"""Ordering what a person receives by their learned relevance, and saying why.

The core of it is ``bot.relevance`` (a model per user); here the parts delivery and the
facade share: the ``like:`` papers of someone's subscriptions (which need the query
parser, above relevance), the ranker of an owner, and the few words of "because".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from bot.errors import QueryError
from bot.matching.query import STORED_LIMITS, like_keys, parse_query
from bot.messages import AlertItem
from bot.models import Owner, OwnerKind, Paper, Subscription
from bot.relevance.ranking import Ranked, Ranker, load_ranker
from bot.store.protocols import Feedback, Store

TITLE_CHARS = 60


def like_papers(subs: Iterable[Subscription]) -> frozenset[str]:
    """Every paper the ``like:`` atoms of ``subs`` name."""
    out: set[str] = set()
    for sub in subs:
        if "like:" not in sub.normalized:
            continue
        try:
            out |= like_keys(parse_query(sub.normalized, limits=STORED_LIMITS))
        except QueryError:  # stored by another version: the match step warns about it
            continue
    return frozenset(out)


async def owner_ranker(
    store: Store,
    owner: Owner,
    subs: Sequence[Subscription] | None = None,
    feedback: Sequence[Feedback] | None = None,
) -> Ranker | None:
    """The ranker of a user (None for a channel, or a user with nothing to learn from);
    ``subs`` and ``feedback``, when given, are theirs as the caller read them."""
    if owner.kind is not OwnerKind.USER:
        return None
    if subs is None:
        subs = await store.list_subscriptions(owner)
    return await load_ranker(store, int(owner.id), like_papers(subs), feedback)


def because(ranked: Ranked, titles: dict[str, Paper]) -> str:
    """A few words on why: the liked paper it is close to, else the words that weighed."""
    if ranked.nearest is not None:
        liked = titles.get(ranked.nearest)
        name = _short(liked.title) if liked is not None else ranked.nearest
        return f"close to {name}, which you liked"
    if ranked.words:
        return "words you favour: " + ", ".join(ranked.words)
    return "ranked by your model"


def _short(title: str) -> str:
    title = " ".join(title.split())
    return f"“{title}”" if len(title) <= TITLE_CHARS else f"“{title[: TITLE_CHARS - 1]}…”"


async def with_reasons(
    store: Store, ranked: Sequence[Ranked], known: Mapping[str, Paper] | None = None
) -> list[tuple[Paper, Ranked, str]]:
    """Each ranked paper with its stored record and its "because", in rank order; papers
    in ``known`` (what the caller holds already) are not read again."""
    known = known or {}
    wanted = [*(r.key for r in ranked), *(r.nearest for r in ranked if r.nearest is not None)]
    papers = {**await store.get_papers([k for k in wanted if k not in known]), **known}
    return [(papers[r.key], r, because(r, papers)) for r in ranked if r.key in papers]


async def relevance_of(
    store: Store,
    owner: Owner,
    papers: Sequence[Paper],
    subs: Sequence[Subscription],
    feedback: Sequence[Feedback] | None = None,
) -> dict[str, tuple[float, str]] | None:
    """Paper key → (learned relevance, why) for ``owner``; None when they have no model.
    ``subs`` (and ``feedback`` if given): the owner's, as the caller read them."""
    ranker = await owner_ranker(store, owner, subs, feedback) if papers else None
    if ranker is None:
        return None
    ranked = await ranker.rank([p.key for p in papers])
    known = {p.key: p for p in papers}
    return {p.key: (r.score, why) for p, r, why in await with_reasons(store, ranked, known)}


async def rank_items(
    store: Store,
    owner: Owner,
    items: list[AlertItem],
    subs: Sequence[Subscription],
    feedback: Sequence[Feedback] | None = None,
) -> list[AlertItem]:
    """``items`` carrying the owner's learned relevance and why (unchanged without a model);
    the message orders them by ``AlertItem.rank``."""
    found = await relevance_of(store, owner, [i.paper for i in items], subs, feedback)
    if found is None:
        return items
    return [
        replace(item, relevance=score, because=why)
        for item in items
        for score, why in [found.get(item.paper.key, (0.0, ""))]
    ]
