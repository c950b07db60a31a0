"""Explanations (words and score): the fast path equals the straightforward one.

The matcher shares one program among equal subscriptions, plans each program's leaves
once, and remembers per paper each leaf's credit and each program's result; none of
that may change a single word or score. ``tests/reference_explain.py`` is the
straightforward explainer (walk every matching program, no sharing) it is checked against.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.matching.analysis import PaperTerms, analyze_paper, key_frequencies
from bot.matching.explain import Explainer, Match, static_leaves
from bot.matching.matcher import Matcher
from bot.matching.program import compile_query
from bot.matching.query import Query, parse_query
from bot.models import Paper
from tests.reference_eval import load_corpus
from tests.reference_explain import reference_explain
from tests.support_query import corpus_vocabulary, positive_queries

UNUSUAL = Paper(
    key="2401.99999",
    title="Gödel, Escher and the ﬁnite $\\beta$-VAE: LLMs vs. LLM-based Agents",
    abstract="We study G\\\"odel numbering, in-context learning and Ægir's transformers; "
    "learning to learn, re-learning, and β-VAE models (Gödel's theorem).",
    authors=("Kurt Gödel", "Jürgen Schmidhuber"),
    categories=("cs.LG", "math.LO"),
    sources=("Hugging Face",),
    upvotes=41,
)


@cache
def _papers() -> tuple[list[PaperTerms], dict[object, float]]:
    papers = [*load_corpus()[::6], UNUSUAL]
    weights = key_frequencies(analyze_paper(p) for p in load_corpus())
    return [analyze_paper(p) for p in papers], weights


def _reference(matcher: Matcher, subs: dict[int, Query], terms: PaperTerms) -> list[Match]:
    hits = sorted(matcher.match_ids(terms))
    return [Match(*reference_explain(s, compile_query(subs[s]), terms)) for s in hits]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    queries=st.lists(positive_queries(corpus_vocabulary()), min_size=1, max_size=6),
    copies=st.lists(st.integers(0, 5), max_size=4),
    upvotes=st.sampled_from([None, 0, 3, 250]),
)
def test_fast_explanations_equal_the_straightforward_ones(
    queries: list[Query], copies: list[int], upvotes: int | None
) -> None:
    subs = dict(enumerate(queries))
    for i, pick in enumerate(copies):  # equal queries under other ids: one shared program
        subs[100 + i] = queries[pick % len(queries)]
    terms_list, weights = _papers()
    matcher = Matcher(weights)
    for sub_id, q in subs.items():
        matcher.add(sub_id, q)
    for paper_terms in terms_list:
        terms = replace(paper_terms, upvotes=upvotes) if upvotes is not None else paper_terms
        expected = _reference(matcher, subs, terms)
        assert matcher.match_terms(terms) == expected
        explainer = Explainer(terms)  # the general path, program by program
        assert [explainer.match(m.sub_id, compile_query(subs[m.sub_id])) for m in expected] == (
            expected
        )
        some = {m.sub_id for m in expected[::2]}
        assert matcher.match_terms(terms, only=some) == [m for m in expected if m.sub_id in some]


def test_equal_subscriptions_share_one_program() -> None:
    matcher = Matcher()
    for sub_id in range(3):
        matcher.add(sub_id, parse_query("diffusion cat:cs.LG"))
    matcher.add(3, parse_query("diffusion"))
    programs = dict(matcher.programs())
    assert programs[0] is programs[1] is programs[2]
    assert programs[3] is not programs[0]
    matcher.remove(0)
    matcher.remove(1)
    matcher.add(1, parse_query("diffusion cat:cs.LG"))  # the survivor's object is reused
    assert dict(matcher.programs())[1] is programs[2]


def test_removing_every_holder_forgets_the_program() -> None:
    matcher = Matcher()
    matcher.add(1, parse_query("robots"))
    matcher.add(2, parse_query("robots"))
    matcher.remove(1)
    matcher.remove(2)
    matcher.add(3, parse_query("robots"))
    paper = analyze_paper(UNUSUAL)
    assert matcher.match_terms(paper) == []
    terms = analyze_paper(replace(UNUSUAL, title="Robots"))
    nudge = 0.1 * math.log1p(41)
    assert matcher.match_terms(terms) == [Match(3, ("Robots",), round(2.0 + nudge, 3))]


def test_static_leaves_need_the_paper_only_for_the_sides_of_an_or() -> None:
    def leaves(text: str) -> object:
        return static_leaves(compile_query(parse_query(text)))

    assert leaves("alpha beta -gamma") == ((0, "alpha"), False, (0, "beta"), False)
    assert leaves("alpha (beta OR gamma)") == (
        (0, "alpha"),
        False,
        (0, "beta"),
        True,
        (0, "gamma"),
        True,
    )
    assert leaves("(alpha beta) OR gamma") is None  # only walking tells which side held
