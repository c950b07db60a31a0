"""The presearcher: what matches, what is highlighted, and agreement with the reference."""

from __future__ import annotations

from dataclasses import replace
from functools import cache, lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.matching.analysis import Key, PaperTerms, analyze_paper, key_frequencies
from bot.matching.matcher import Match, Matcher
from bot.matching.program import AND, KEY, NOT, compile_query, plan
from bot.matching.query import Query, parse_query
from bot.models import Paper
from tests.reference_eval import NaiveDoc, load_corpus, reference_match
from tests.support_query import corpus_vocabulary, positive_queries


def _paper(
    title: str = "",
    abstract: str = "",
    *,
    authors: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    sources: tuple[str, ...] = (),
    upvotes: int | None = None,
) -> Paper:
    return Paper(
        key="2401.00001",
        title=title,
        abstract=abstract,
        authors=authors,
        categories=categories,
        sources=sources,
        upvotes=upvotes,
    )


def _matches(query: str, paper: Paper) -> bool:
    matcher = Matcher()
    matcher.add(1, parse_query(query))
    got = list(matcher.match_ids(analyze_paper(paper))) == [1]
    assert got == reference_match(parse_query(query), paper)  # the two always agree
    return got


@pytest.mark.parametrize(
    ("query", "title", "abstract", "expected"),
    [
        ("transformers", "A Transformer for Video", "", True),
        ("learned", "", "We study learning rates.", True),
        ("LLMs", "An LLM benchmark", "", True),
        ("llm", "", "Most LLMs undergo finetuning.", True),
        ("Gödel", "Godel machines", "", True),
        ('"transformer"', "Transformers", "", False),
        ('"transformers"', "Transformers", "", True),
        ("in-context", "", "in-context learning", True),
        ("in-context", "", "In Context Learning", True),
        ("context", "", "in-context learning", True),
        ("in-context", "", "context in learning", False),
        ('"video generation"', "Fast video", "Generation of images", False),
        ("diffus*", "", "Diffusion models", True),
        ("diffus*", "", "A diffuse prior", True),
        ("diffus*", "", "Confusion", False),
        ("title:diffusion", "", "Diffusion models", False),
        ("abstract:diffusion", "", "Diffusion models", True),
        ("diffusion -survey", "Diffusion: a survey", "", False),
        ("diffusion -survey", "Diffusion", "Video", True),
        ("survey OR diffusion", "Diffusion", "", True),
        ("$\\alpha$-divergence", "", "the $\\alpha$-divergence bound", True),
        ("β-VAE", "", "the $\\beta$-VAE objective", True),
        ("news", "", "a new method", False),
    ],
)
def test_text_matching(query: str, title: str, abstract: str, expected: bool) -> None:
    assert _matches(query, _paper(title, abstract)) is expected


AUTHORS = ("Yann LeCun", 'J\\"urgen Schmidhuber', "Fei-Fei Li")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("author:lecun", True),
        ('author:"Yann LeCun"', True),
        ("author:jürgen", True),
        ("author:jurgen", True),
        ("author:schmid*", True),
        ('author:"fei-fei li"', True),
        ('author:"lecun jurgen"', False),  # never across two names
        ("author:yanns", False),  # names are not stemmed
        ("lecun", False),  # an author's name is not in the title or abstract
    ],
)
def test_author_matching(query: str, expected: bool) -> None:
    assert _matches(query, _paper("Deep nets", "We train.", authors=AUTHORS)) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cat:cs.LG", True),
        ("cat:stat.ml", True),
        ("cat:cs.*", True),
        ("cat:cs.CV", False),
        ("cat:math.*", False),
        ("source:hf", True),
        ('source:"lab blog"', True),
        ("source:arxiv", False),
        ("upvotes:>=12", True),
        ("upvotes:>12", False),
        ("cat:cs.LG -source:hf", False),
        ("cat:cs.CV OR upvotes:>=10", True),
    ],
)
def test_filters(query: str, expected: bool) -> None:
    paper = _paper("x", categories=("cs.LG", "stat.ML"), sources=("hf", "Lab Blog"), upvotes=12)
    assert _matches(query, paper) is expected


def test_upvotes_need_a_count_and_match_once_reached() -> None:
    paper = _paper("Diffusion", upvotes=None)
    assert not _matches("upvotes:>=0", paper)
    assert not _matches("diffusion upvotes:>=20", replace(paper, upvotes=5))
    assert _matches("diffusion upvotes:>=20", replace(paper, upvotes=20))


def test_field_only_and_unindexable_queries_are_planned_as_designed() -> None:
    def paths(text: str) -> list[tuple[Key, ...]]:
        return [path for path, _ in plan(compile_query(parse_query(text)), lambda k: 0.0)]

    assert paths("cat:cs.LG") == [("cat:cs.lg",)]
    assert paths("cat:cs.*") == [("cat*:cs.",)]
    assert paths("source:hf") == [("src:hf",)]
    assert paths("upvotes:>=50") == [()]  # checked for every paper
    assert paths("upvotes:>=50 -survey") == [()]
    assert sorted(paths("a OR title:b")) == [("a",), ("ti:b",)]
    assert paths('"video generation"') == [(("video", "generation"),)]  # a pair of words
    assert paths('"in context learning"') == [(("context", "learning"), ("in", "context"))]
    assert paths("diffus*") == [("pre:diffus",)]
    assert paths("author:schmid*") == [("au*:schmid",)]
    # Too many conjunctions for DNF: one any-of set, each verified in full.
    big = "(a1 OR a2 OR a3) (b1 OR b2 OR b3)"
    assert sorted(paths(big)) in ([("a1",), ("a2",), ("a3",)], [("b1",), ("b2",), ("b3",)])


def test_rarest_keys_come_first() -> None:
    weights = {"common": 0.9, "rare": 0.01, "mid": 0.2, "often": 0.5, "never": 0.3}
    query = parse_query("common mid often rare -never")
    entries = plan(compile_query(query), lambda k: weights[str(k)])
    [(path, residual)] = entries
    assert path == ("rare", "mid", "often")
    assert residual == (AND, ((KEY, "common"), (NOT, (KEY, "never"))))


def test_add_remove_replace_without_rebuild() -> None:
    matcher = Matcher()
    terms = analyze_paper(_paper("Diffusion transformers", "for video generation"))
    matcher.add(1, parse_query("diffusion"))
    matcher.add(2, parse_query("video -survey"))
    matcher.add(3, parse_query("robots"))
    assert (len(matcher), sorted(matcher.match_ids(terms))) == (3, [1, 2])
    assert matcher.remove(2)
    assert not matcher.remove(2)
    assert 2 not in matcher
    assert sorted(matcher.match_ids(terms)) == [1]
    matcher.add(1, parse_query("robots"))  # same id: replaced
    matcher.add(4, parse_query('"video generation"'))
    assert (len(matcher), sorted(matcher.match_ids(terms))) == (3, [4])
    for sub_id in (1, 3, 4):
        matcher.remove(sub_id)
    assert (len(matcher), sorted(matcher.match_ids(terms))) == (0, [])


def test_negations_sharing_a_node_see_every_edit() -> None:
    """Ids proven by absent keys are settled in one merged array when the paper holds
    none of the node's keys; adding or removing one must show at the next paper."""
    matcher = Matcher({"video": 0.001})  # "video" is the path of every query below
    plain = analyze_paper(_paper("Video generation", "for robots"))
    survey = analyze_paper(_paper("Video generation", "a survey"))

    def both() -> tuple[list[int], list[int]]:
        return sorted(matcher.match_ids(plain)), sorted(matcher.match_ids(survey))

    matcher.add(1, parse_query("video -survey"))
    matcher.add(2, parse_query("video -tutorial"))
    assert both() == ([1, 2], [2])
    matcher.add(3, parse_query("video -benchmark"))
    assert both() == ([1, 2, 3], [2, 3])
    matcher.remove(1)
    assert both() == ([2, 3], [2, 3])
    matcher.remove(2)
    matcher.add(4, parse_query("video -robots"))
    assert both() == ([3], [3, 4])


def test_prefixes_added_and_removed_later_are_seen() -> None:
    """Prefix keys are derived per word and remembered; changes must show at once."""
    matcher = Matcher()
    terms = analyze_paper(_paper("Transformers", "are transferable"))
    matcher.add(1, parse_query("transf*"))
    assert sorted(matcher.match_ids(terms)) == [1]
    matcher.add(2, parse_query("transfo*"))
    matcher.add(3, parse_query("author:trans*"))
    assert sorted(matcher.match_ids(terms)) == [1, 2]
    matcher.remove(1)
    matcher.add(4, parse_query("transfe* -zebra"))
    assert sorted(matcher.match_ids(terms)) == [2, 4]
    matcher.remove(2)
    matcher.remove(4)
    assert not matcher.match_ids(terms)


def test_or_sides_added_after_a_paper_are_highlighted() -> None:
    """The keys whose presence switches a match to its whole program are kept as a set
    once a paper is matched; one added after must count at the next paper."""
    matcher = Matcher()
    terms = analyze_paper(_paper("Diffusion transformers", "for video generation"))
    matcher.add(1, parse_query("robots OR diffusion"))
    assert [m.matched_words for m in matcher.match_terms(terms)] == [("Diffusion",)]
    matcher.add(2, parse_query("video OR transformers"))
    assert [m.matched_words for m in matcher.match_terms(terms)] == [
        ("Diffusion",),
        ("transformers", "video"),
    ]


def test_matches_carry_words_to_highlight_and_a_score() -> None:
    matcher = Matcher()
    matcher.add(1, parse_query("LLMs"))
    matcher.add(2, parse_query('"in context" OR robots'))
    matcher.add(3, parse_query("author:gödel cat:cs.*"))
    matcher.add(4, parse_query("learn* -robots"))
    paper = _paper(
        "LLM Agents",
        "Most LLMs learn in-context; \\textbf{Learning} is fast.",
        authors=("Kurt Gödel",),
        categories=("cs.LO",),
        upvotes=9,
    )
    nudge = round(0.1 * 2.302585, 3)
    assert matcher.match(paper) == [
        Match(1, ("LLM", "LLMs"), round(2.0 + nudge, 3)),
        Match(2, ("context", "in"), round(1.0 + nudge, 3)),
        Match(3, ("Gödel",), round(1.5 + 0.5 + nudge, 3)),
        Match(4, ("learn", "Learning"), round(1.0 + nudge, 3)),
    ]


def test_explain_one_subscription() -> None:
    matcher = Matcher()
    matcher.add(7, parse_query("title:agents"))
    terms = analyze_paper(_paper("Agents", "agents"))
    assert matcher.explain(7, terms) == Match(7, ("Agents",), 2.0)
    assert matcher.explain(7, analyze_paper(_paper("x", "agents"))) is None


# --- agreement with the reference evaluator over the real corpus ------------------------

SAMPLE = load_corpus()[::4]


@cache
def _sample() -> tuple[list[PaperTerms], list[NaiveDoc], dict[Key, float]]:
    terms = [analyze_paper(p) for p in SAMPLE]
    weights = key_frequencies(analyze_paper(p) for p in load_corpus())
    return terms, [NaiveDoc.of(p) for p in SAMPLE], weights


@lru_cache(maxsize=4096)
def _truth(q: Query) -> frozenset[int]:
    """Sample papers the reference says ``q`` matches (queries recur across phases)."""
    return frozenset(i for i, doc in enumerate(_sample()[1]) if reference_match(q, doc))


def _assert_agrees(matcher: Matcher, subs: dict[int, Query]) -> None:
    terms = _sample()[0]
    expected: list[list[int]] = [[] for _ in terms]
    for sub_id, q in sorted(subs.items()):
        for i in _truth(q):
            expected[i].append(sub_id)
    found = [matcher.match_ids(t) for t in terms]
    assert all(len(ids) == len(set(ids)) for ids in found)  # an OR reached twice: once
    assert [sorted(ids) for ids in found] == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    queries=st.lists(positive_queries(corpus_vocabulary()), min_size=1, max_size=8),
    removed=st.sets(st.integers(0, 7), max_size=4),
    weighted=st.booleans(),
)
def test_presearcher_agrees_with_reference(
    queries: list[Query], removed: set[int], weighted: bool
) -> None:
    matcher = Matcher(_sample()[2] if weighted else None)
    subs = dict(enumerate(queries))
    for sub_id, q in subs.items():
        matcher.add(sub_id, q)
    _assert_agrees(matcher, subs)
    for sub_id in removed:
        assert matcher.remove(sub_id) is (sub_id in subs)
        subs.pop(sub_id, None)
    _assert_agrees(matcher, subs)
    for sub_id in removed & set(range(len(queries))):  # back, under new ids
        matcher.add(100 + sub_id, queries[sub_id])
        subs[100 + sub_id] = queries[sub_id]
    _assert_agrees(matcher, subs)


@pytest.mark.parametrize(
    "text",
    [
        "(model OR language OR image) (training OR data OR video)",  # too many for DNF
        '(model OR diffus* OR "language models") -(video OR image)',
        "model OR models OR modeling",  # overlapping branches, one hit each
        'title:(model OR learning) OR abstract:"we propose" OR author:lecun',
        "upvotes:>=1 OR cat:cs.CL OR source:hf",
    ],
)
def test_big_ors_agree_with_reference(text: str) -> None:
    query = parse_query(text)
    matcher = Matcher()
    matcher.add(1, query)
    matcher.add(2, query)  # the same query twice: two ids, each found once
    terms, docs, _ = _sample()
    for t, doc in zip(terms, docs, strict=True):
        expected = [1, 2] if reference_match(query, doc) else []
        assert sorted(matcher.match_ids(t)) == expected


def test_or_branches_are_planned_disjoint() -> None:
    entries = plan(compile_query(parse_query("alpha OR beta OR gamma")), lambda k: 0.0)
    assert entries == [
        (("alpha",), None),
        (("beta",), (NOT, (KEY, "alpha"))),
        (("gamma",), (AND, ((NOT, (KEY, "alpha")), (NOT, (KEY, "beta"))))),
    ]


def test_match_terms_lists_the_same_ids_as_match_ids() -> None:
    terms, _, weights = _sample()
    matcher = Matcher(weights)
    for sub_id, text in enumerate(["model", '"language models"', "train* -video", "cat:cs.*"]):
        matcher.add(sub_id, parse_query(text))
    for t in terms:
        found = matcher.match_terms(t)
        assert [m.sub_id for m in found] == sorted(matcher.match_ids(t))
        assert all(m.score > 0 for m in found)


@cache
def _many() -> dict[int, Query]:
    """2,000 subscriptions of words, phrases, negations, prefixes and thresholds over the
    corpus's words: enough that a few changes go to the index's overlay rather than into
    a new snapshot."""
    words = [w for w in corpus_vocabulary().words if len(w) > 3]
    shapes = ("{0}", "{0} -{1}", '"{0} {1}"', "{0}* {1}", "{0} upvotes:>=5", "{0} OR {1}")
    texts = [shapes[i % len(shapes)].format(w, words[-1 - i]) for i, w in enumerate(words)]
    return {i: parse_query(t) for i, t in enumerate(texts[:2000])}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    added=st.lists(positive_queries(corpus_vocabulary(), max_leaves=4), min_size=1, max_size=4),
    removed=st.sets(st.integers(0, 1999), max_size=6),
)
def test_changes_after_the_first_paper_agree_with_reference(
    added: list[Query], removed: set[int]
) -> None:
    """Once papers are matched, the index's flat snapshot stays; what changes after it
    (added, removed, an id given a new query, entry numbers reused) must show at once."""
    subs = dict(_many())
    matcher = Matcher(_sample()[2])
    for sub_id, q in subs.items():
        matcher.add(sub_id, q)
    _assert_agrees(matcher, subs)
    snapshot = matcher._index._snapshot
    for sub_id in removed:
        matcher.remove(sub_id)
        del subs[sub_id]
    _assert_agrees(matcher, subs)
    for i, q in enumerate(added):  # new ids reuse the entry numbers just freed
        matcher.add(2000 + i, q)
        subs[2000 + i] = q
    matcher.add(0, added[0])  # an id given another query
    subs[0] = added[0]
    _assert_agrees(matcher, subs)
    for sub_id in (2000, *sorted(removed)[:2]):  # removed again, or once more re-added
        if sub_id in subs:
            matcher.remove(sub_id)
            del subs[sub_id]
        else:
            matcher.add(sub_id, _many()[sub_id])
            subs[sub_id] = _many()[sub_id]
    _assert_agrees(matcher, subs)
    assert matcher._index._snapshot is snapshot  # the overlay answered, not a new snapshot
