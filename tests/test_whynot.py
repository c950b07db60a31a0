"""The clause that kept a query from matching, and the edit that would have: checked on
the reference corpus against the matcher itself (hypothesis), and by example."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching.analysis import analyze_paper
from bot.matching.matcher import Matcher
from bot.matching.query import parse_query, render
from bot.matching.whynot import failed_clause, holds, suggest_edit
from bot.models import Paper
from tests.reference_eval import load_corpus
from tests.support_query import corpus_vocabulary, positive_queries

CV = Paper(
    key="2612.00001",
    title="Video Diffusion Models: A Survey",
    abstract="We survey diffusion models for video generation.",
    categories=("cs.CV",),
    sources=("arxiv",),
    upvotes=3,
)


@settings(max_examples=150, deadline=None)
@given(query=positive_queries(corpus_vocabulary()), index=st.integers(0, 10_000))
def test_a_failed_clause_exactly_when_the_matcher_says_no(query: object, index: int) -> None:
    papers = load_corpus()
    paper = papers[index % len(papers)]
    terms = analyze_paper(paper)
    matcher = Matcher()
    matcher.add(1, query)  # type: ignore[arg-type]
    matched = bool(matcher.match(paper))
    assert holds(query, terms) is matched  # type: ignore[arg-type]
    failed = failed_clause(query, paper, terms)  # type: ignore[arg-type]
    assert (failed is None) is matched
    edit = suggest_edit(query, paper, terms)  # type: ignore[arg-type]
    if edit is not None:  # a suggestion always matches the paper it was made for
        assert holds(edit, terms) and not matched


def _why(text: str) -> tuple[str | None, str | None, str | None]:
    terms = analyze_paper(CV)
    query = parse_query(text)
    failed = failed_clause(query, CV, terms)
    edit = suggest_edit(query, CV, terms)
    return (
        failed.clause if failed else None,
        failed.reason if failed else None,
        render(edit) if edit else None,
    )


def test_excluded_by_a_negation_names_the_words() -> None:
    assert _why("diffusion -survey") == (
        "NOT survey",
        '`NOT survey` excluded it: the paper says "Survey"',
        "diffusion",
    )


def test_a_category_filter_names_the_paper_category_and_widens() -> None:
    assert _why("cat:cs.LG") == ("cat:cs.lg", "`cat:cs.lg`: but the paper is cs.CV",
                                 "cat:cs.lg OR cat:cs.cv")  # fmt: skip


def test_a_missing_word_and_a_missing_phrase() -> None:
    clause, reason, edit = _why('"video diffusion" transformer')
    assert clause == "transformer"
    assert reason == '`transformer`: the paper\'s title or abstract has no word "transformer" ' \
        "(nor one of the same stem)"  # fmt: skip
    assert edit == '"video diffusion"'
    clause, reason, edit = _why('title:"diffusion video"')
    assert reason == '`title:"diffusion video"`: the paper\'s title has not the words ' \
        '"diffusion video" in this order'  # fmt: skip
    assert edit == 'title:"diffusion video" OR title:diffusion'


def test_upvotes_and_a_match() -> None:
    assert _why("upvotes:>=50 diffusion")[1] == "`upvotes:>=50`: but the paper has 3 upvotes"
    assert _why("diffusion") == (None, None, None)
