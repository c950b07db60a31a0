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
from typing import Any

import pytest
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    queries=st.lists(positive_queries(corpus_vocabulary()), min_size=1, max_size=6),
    copies=st.lists(st.integers(0, 5), max_size=6),
    dropped=st.sets(st.integers(0, 11), max_size=6),
)
def test_groups_after_adds_and_removes_equal_the_straightforward_ones(
    queries: list[Query], copies: list[int], dropped: set[int]
) -> None:
    """Equal queries share a slot, and entries that prove the same leaves share one
    explanation; removing subscriptions frees both (and the side keys and recipes
    numbered for them), and what remains matches as if it had been added alone."""
    subs = dict(enumerate(queries))
    for i, pick in enumerate(copies):
        subs[6 + i] = queries[pick % len(queries)]
    terms_list, weights = _papers()
    matcher = Matcher(weights)
    for sub_id, q in subs.items():
        matcher.add(sub_id, q)
    for sub_id in dropped & subs.keys():
        assert matcher.remove(sub_id)
        del subs[sub_id]
    for sub_id, q in list(subs.items())[::3]:  # re-added under a new id: slots reused
        matcher.remove(sub_id)
        del subs[sub_id]
        subs[50 + sub_id] = q
        matcher.add(50 + sub_id, q)
    for terms in terms_list:
        groups = matcher.match_groups(terms)
        flat = sorted(Match(s, words, score) for ids, words, score in groups for s in ids)
        assert flat == _reference(matcher, subs, terms)
        # One group per explanation: never more than the distinct queries reached.
        assert len(groups) <= len({compile_query(subs[m.sub_id]) for m in flat})
    for sub_id in list(subs):
        matcher.remove(sub_id)
    assert (len(matcher), matcher.match_groups(terms_list[-1])) == (0, [])
    assert not matcher._fixed  # no shared explanation outlives its last entry
    assert not any(matcher._recipes.items) and not matcher._keys


def test_holders_come_and_go_under_any_id() -> None:
    """One holder is written in the entries' holder column (0 and 2**62 included), more
    (or a negative id) get a slot, and back."""
    matcher = Matcher()
    terms = analyze_paper(replace(UNUSUAL, title="Robots"))
    matcher.add(0, parse_query("robots"))
    matcher.add(2**62, parse_query("robots"))
    assert sorted(matcher.match_ids(terms)) == [0, 2**62]
    matcher.remove(2**62)
    assert list(matcher.match_ids(terms)) == [0]
    matcher.add(5, parse_query("robots"))
    matcher.remove(0)
    assert [(list(ids), words) for ids, words, _ in matcher.match_groups(terms)] == [
        ([5], ("Robots",))
    ]
    matcher.add(-3, parse_query("robot"))  # alone, under a negative id: in a slot
    matcher.add(2**62, parse_query("robots OR androids"))  # proves what "robots" does
    groups = matcher.match_groups(terms)
    assert [(sorted(ids), words) for ids, words, _ in groups] == [([-3, 5, 2**62], ("Robots",))]
    assert sorted(matcher.match_ids(terms)) == [-3, 5, 2**62]


def test_only_the_subscriptions_asked_for_are_grouped_and_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An updated paper concerns its ``upvotes:`` subscriptions: a group holding none of
    them is left out before its explanation is built."""
    matcher = Matcher()
    terms = analyze_paper(replace(UNUSUAL, title="Robots and androids"))
    matcher.add(1, parse_query("robots"))
    matcher.add(2, parse_query("robots"))
    matcher.add(3, parse_query("androids"))
    explained: list[object] = []
    explain = Explainer.explain_recipe

    def counted(self: Explainer, recipe: Any) -> tuple[tuple[str, ...], float]:
        explained.append(recipe)
        return explain(self, recipe)

    monkeypatch.setattr(Explainer, "explain_recipe", counted)
    groups = matcher.match_groups(terms, only={2, 9})
    assert [(list(ids), words) for ids, words, _ in groups] == [([2], ("Robots",))]
    assert len(explained) == 1  # the "androids" group was never explained
    assert matcher.match_groups(terms, only=set()) == []
    assert [m.sub_id for m in matcher.match_terms(terms, only={3})] == [3]


def test_a_side_in_a_later_conjunction_counts_even_if_that_entry_was_dropped() -> None:
    """``clearly (maximum OR clearly OR match)``: the third conjunction (clearly match)
    has no entry of its own (the second, clearly, holds wherever it does), yet a paper
    reaching the second entry may hold ``match`` too, and then it is highlighted."""
    matcher = Matcher()
    matcher.add(1, parse_query("clearly (maximum OR clearly OR match)"))
    matcher.add(2, parse_query("clearly"))
    terms = analyze_paper(replace(UNUSUAL, title="Clearly a match", abstract="", upvotes=None))
    assert matcher.match_terms(terms) == [
        Match(1, ("Clearly", "match"), 4.0),
        Match(2, ("Clearly",), 2.0),
    ]


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


def test_an_or_side_the_paper_holds_is_explained_with_the_whole_query() -> None:
    """A side that is a plain key is looked up in the paper's keys by numpy, one that is
    a phrase by the explainer; either way, a side the paper holds is highlighted too,
    and the query leaves the group of those that prove only the first side."""
    matcher = Matcher()
    terms = analyze_paper(replace(UNUSUAL, title="Robots and walking androids"))
    for sub_id, text in enumerate(
        ("robots", "robots OR androids", 'robots OR "walking androids"', "robots OR zebras")
    ):
        matcher.add(sub_id, parse_query(text))
    groups = sorted((sorted(ids), words) for ids, words, _ in matcher.match_groups(terms))
    assert groups == [
        ([0, 3], ("Robots",)),
        ([1], ("androids", "Robots")),
        ([2], ("androids", "Robots", "walking")),
    ]
