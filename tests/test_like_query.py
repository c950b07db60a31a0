"""``like:`` in the query language: parsing, and matching against a brute-force reference.

The reference computes similarity its own way — scikit-learn's ``cosine_similarity`` over
a vectorizer fitted on the same texts — and evaluates query trees naively; the matcher
gets its ``like:`` keys from the stored vectors (``LikeTargets``), as the match step does.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics.pairwise import cosine_similarity

from bot.errors import QueryError
from bot.matching.analysis import analyze_paper, with_likes
from bot.matching.matcher import Matcher
from bot.matching.query import (
    And,
    Like,
    Not,
    Or,
    Query,
    leaves,
    make_and,
    make_not,
    make_or,
    paper_key,
    parse_query,
    render,
)
from bot.relevance.fitting import fit_tfidf
from bot.relevance.similar import LIKE_THRESHOLD, LikeTargets
from bot.relevance.vectors import vector_text
from bot.store.sqlite.store import open_sqlite_store
from tests.reference_eval import reference_match
from tests.support_query import corpus_vocabulary, leaf_queries
from tests.support_relevance import NOW_FOR_CORPUS, dated_corpus, store_corpus

PAPERS = dated_corpus(NOW_FOR_CORPUS)
# Targets: papers with close neighbours and papers without, so like: both hits and misses.
TARGETS = tuple(PAPERS[i].key for i in (0, 7, 21, 60, 99, 150))


@cache
def reference_similar() -> dict[str, frozenset[str]]:
    """Paper key → the targets it is like, by scikit-learn's own cosine."""
    vectorizer = fit_tfidf([vector_text(p) for p in PAPERS])
    rows = vectorizer.transform([vector_text(p) for p in PAPERS])
    index = {p.key: i for i, p in enumerate(PAPERS)}
    targets = rows[[index[k] for k in TARGETS]]
    sims = cosine_similarity(rows, targets)
    return {
        p.key: frozenset(t for j, t in enumerate(TARGETS) if sims[i, j] >= LIKE_THRESHOLD)
        for i, p in enumerate(PAPERS)
    }


@cache
def stored_similar(tmp: Path) -> dict[str, frozenset[str]]:
    """The same, as the match step gets it: from the stored vectors."""

    async def run() -> dict[str, frozenset[str]]:
        store = await open_sqlite_store(tmp / "like.db")
        try:
            await store_corpus(store, NOW_FOR_CORPUS)
            targets = await LikeTargets.load(store, TARGETS)
            return await targets.similar(store, [p.key for p in PAPERS])
        finally:
            await store.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def similar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, frozenset[str]]:
    return stored_similar(tmp_path_factory.mktemp("like"))


def test_stored_vectors_agree_with_the_reference_cosine(
    similar: dict[str, frozenset[str]],
) -> None:
    reference = reference_similar()
    assert {k: v for k, v in reference.items() if v} == similar
    assert all(t in similar[t] for t in TARGETS)  # a paper is like itself
    hits = sum(len(v) for v in similar.values())
    assert len(TARGETS) < hits < len(PAPERS)  # neighbours found, yet far from everything


def _ref(q: Query, key: str, doc_match: dict[Query, bool], similar: frozenset[str]) -> bool:
    if isinstance(q, And):
        return all(_ref(c, key, doc_match, similar) for c in q.children)
    if isinstance(q, Or):
        return any(_ref(c, key, doc_match, similar) for c in q.children)
    if isinstance(q, Not):
        return not _ref(q.child, key, doc_match, similar)
    if isinstance(q, Like):
        return q.key in similar
    return doc_match[q]


def like_leaves() -> st.SearchStrategy[Query]:
    return st.sampled_from(TARGETS).map(Like)


def queries_with_likes() -> st.SearchStrategy[Query]:
    leaf = st.one_of(like_leaves(), like_leaves(), leaf_queries(corpus_vocabulary()))

    def extend(inner: st.SearchStrategy[Query]) -> st.SearchStrategy[Query]:
        ors = st.lists(inner, min_size=2, max_size=3).map(make_or)
        ands = st.tuples(st.lists(inner, min_size=1, max_size=3), st.lists(inner, max_size=2)).map(
            lambda t: make_and([*t[0], *(make_not(q) for q in t[1])])
        )
        return st.one_of(ors, ands)

    return st.recursive(leaf, extend, max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(queries_with_likes())
def test_like_queries_round_trip(q: Query) -> None:
    assert parse_query(render(q)) == q


@settings(max_examples=60, deadline=None)
@given(query=queries_with_likes(), picks=st.lists(st.integers(0, len(PAPERS) - 1), max_size=25))
def test_matcher_agrees_with_the_reference(
    similar: dict[str, frozenset[str]], query: Query, picks: list[int]
) -> None:
    matcher = Matcher()
    matcher.add(1, query)
    reference = reference_similar()
    for i in {*picks, 0, 7}:
        paper = PAPERS[i]
        plain = {
            leaf: reference_match(leaf, paper)
            for leaf in leaves(query)
            if not isinstance(leaf, Like)
        }
        expected = _ref(query, paper.key, plain, reference[paper.key])
        terms = with_likes(analyze_paper(paper), similar.get(paper.key, frozenset()))
        assert bool(matcher.match_terms(terms)) == expected, (render(query), paper.key)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("2406.11779", "2406.11779"),
        ("arXiv:2406.11779v3", "2406.11779"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("math.GT/0309136v2", "math/0309136"),
        ("feed:" + "ab" * 20, "feed:" + "ab" * 20),
    ],
)
def test_like_takes_arxiv_ids_and_paper_keys(written: str, key: str) -> None:
    assert paper_key(written) == key
    assert parse_query(f"like:{written} cat:cs.LG -survey") == make_and(
        [Like(key), parse_query("cat:cs.LG"), make_not(parse_query("survey"))]
    )


@pytest.mark.parametrize("text", ["like:", "like:diffusion", "like:2406", "like:(a b)"])
def test_bad_like_values_get_one_clear_error(text: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    message = str(caught.value)
    assert "\n" not in message and "like" in message and "column" in message


def test_like_alone_is_a_positive_query() -> None:
    with pytest.raises(QueryError, match="only says what to leave out"):
        parse_query("-like:2406.11779")
    assert parse_query("like:2406.11779 like:2406.11780") == make_and(
        [Like("2406.11779"), Like("2406.11780")]
    )
