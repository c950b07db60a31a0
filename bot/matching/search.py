"""``search``: stored papers that a query in the subscription language matches, best first.

The query means exactly what it would mean as a subscription (stems, ``word*``, phrases,
fields, AND/OR/NOT, ``cat:``, ``source:``, ``upvotes:``), because the subscription matcher
decides. The FTS5 index only proposes candidates, ranked by bm25: each text leaf becomes an
FTS5 term loose enough to hold every word the matcher would accept (a stem is searched as a
shorter prefix, since ``capability`` stems to ``capabl``). The one known gap: letters the
matcher spells out and FTS5's unicode61 does not (``ß``, ``æ``, ``β`` → ``beta``) can hide
a paper from ``search`` that a subscription would still match. Parts the index cannot
express (``NOT``, filters, ``like:``) are left to the matcher; a query with nothing for the index
pages through every paper, newest first.
"""

from __future__ import annotations

from bot.matching.analysis import term_key
from bot.matching.matcher import Matcher
from bot.matching.query import And, Field, Or, Phrase, Prefix, Query, Term, like_keys
from bot.models import Paper
from bot.relevance.similar import LikeTargets
from bot.store.protocols import Store

PAGE = 200
# Every word with a stem S starts with S minus its last letter (Snowball rewrites only that
# one: -y/-ies → -i, -bility → -bl), so that prefix finds them all.
STEM_SLACK = 1
MIN_PREFIX = 3


async def search_papers(store: Store, query: Query, limit: int) -> list[Paper]:
    """Up to ``limit`` papers matching ``query`` (from ``parse_query``), best first."""
    matcher = Matcher()
    matcher.add(0, query)
    match = fts_match(query)
    targets = await LikeTargets.load(store, like_keys(query))
    hits: list[Paper] = []
    offset = 0
    while len(hits) < limit:
        page = await store.search_candidates(match, PAGE, offset)
        likes = await targets.similar(store, [p.key for p in page])
        hits += [p for p in page if matcher.match(p, likes.get(p.key, frozenset()))]
        if len(page) < PAGE:
            break
        offset += PAGE
    return hits[:limit]


def fts_match(query: Query) -> str | None:
    """An FTS5 expression every paper matching ``query`` satisfies; None for "any paper"."""
    if isinstance(query, And | Or):
        return _group_match(query)
    if isinstance(query, Term):
        return _quote(query.word) if query.field is Field.AUTHOR else _stem_prefix(query.word)
    if isinstance(query, Phrase):
        return _quote(" ".join(query.words))
    if isinstance(query, Prefix):
        return _quote(query.prefix) + " *"
    # NOT: the index cannot narrow by absence; cat:, source:, upvotes: are not in it.
    return None


def _group_match(query: And | Or) -> str | None:
    parts = [fts_match(child) for child in query.children]
    if isinstance(query, Or) and None in parts:
        return None  # one alternative may be any paper, so the group may be too
    known = [p for p in parts if p is not None]
    operator = " AND " if isinstance(query, And) else " OR "
    return "(" + operator.join(known) + ")" if known else None


def _stem_prefix(word: str) -> str:
    stem = term_key(word)
    common = 0
    for a, b in zip(stem, word, strict=False):
        if a != b:
            break
        common += 1
    cut = max(MIN_PREFIX, min(common, len(stem) - STEM_SLACK))
    return _quote(word[:cut]) + " *"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
