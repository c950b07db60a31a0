"""The query language: every construct, every error message, and random input."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.errors import QueryError, UserError
from bot.matching.query import (
    STORED_LIMITS,
    And,
    Cat,
    Field,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
    Upvotes,
    leaves,
    normalize_query,
    parse_query,
    render,
)
from tests.support_query import corpus_vocabulary, positive_queries, query_soup

# --- what each construct means ---------------------------------------------------------

PARSED: list[tuple[str, Query]] = [
    ("diffusion", Term(Field.ANY, "diffusion")),
    ("Transformers", Term(Field.ANY, "transformers")),
    ("Gödel", Term(Field.ANY, "godel")),
    ('"Exact Phrase"', Phrase(Field.ANY, ("exact", "phrase"))),
    ("“curly quotes”", Phrase(Field.ANY, ("curly", "quotes"))),
    ('"transformers"', Phrase(Field.ANY, ("transformers",))),
    ("in-context", Phrase(Field.ANY, ("in", "context"))),
    ("encoder/decoder", Phrase(Field.ANY, ("encoder", "decoder"))),
    ("Transform*", Prefix(Field.ANY, "transform")),
    ("a b", And((Term(Field.ANY, "a"), Term(Field.ANY, "b")))),
    ("a AND b", And((Term(Field.ANY, "a"), Term(Field.ANY, "b")))),
    ("a OR b", Or((Term(Field.ANY, "a"), Term(Field.ANY, "b")))),
    ("a -b", And((Term(Field.ANY, "a"), Not(Term(Field.ANY, "b"))))),
    ("a NOT b", And((Term(Field.ANY, "a"), Not(Term(Field.ANY, "b"))))),
    ("a AND NOT b", And((Term(Field.ANY, "a"), Not(Term(Field.ANY, "b"))))),
    ("a --b", And((Term(Field.ANY, "a"), Term(Field.ANY, "b")))),
    ("title:llm", Term(Field.TITLE, "llm")),
    ("ti:llm", Term(Field.TITLE, "llm")),
    ('abstract:"we propose"', Phrase(Field.ABSTRACT, ("we", "propose"))),
    ("author:hinton", Term(Field.AUTHOR, "hinton")),
    ('author:"Yann LeCun"', Phrase(Field.AUTHOR, ("yann", "lecun"))),
    ("au:Schmid*", Prefix(Field.AUTHOR, "schmid")),
    ("author:Müller", Term(Field.AUTHOR, "muller")),
    ("cat:cs.LG", Cat("cs.lg")),
    ("cat:cs.*", Cat("cs.", prefix=True)),
    ("cat:q-bio.NC", Cat("q-bio.nc")),
    ("source:hf", Source("hf")),
    ('source:"Lab Blog"', Source("lab blog")),
    ("upvotes:>=10", Upvotes(10)),
    ("upvotes:>9", Upvotes(10)),
    ("upvotes:≥0", Upvotes(0)),
    ("title:or", Term(Field.TITLE, "or")),
    ('"or"', Phrase(Field.ANY, ("or",))),
    ("-(-a)", Term(Field.ANY, "a")),
    ("a a", Term(Field.ANY, "a")),
    ("(((a)))", Term(Field.ANY, "a")),
]


@pytest.mark.parametrize(("text", "query"), PARSED)
def test_parses(text: str, query: Query) -> None:
    assert parse_query(text) == query


NORMALIZED = [
    (
        'transformer (diffusion OR "video generation") -survey',
        'transformer AND (diffusion OR "video generation") AND NOT survey',
    ),
    ("llm agents OR robots", "llm AND (agents OR robots)"),  # OR binds tighter
    ("(a b) OR c", "(a AND b) OR c"),
    ("(a OR b) OR (c OR a)", "a OR b OR c"),
    ("a (b (c d))", "a AND b AND c AND d"),
    ("NOT (a OR b) c", "NOT (a OR b) AND c"),
    ("-(a b) c", "NOT (a AND b) AND c"),
    ('title:(Agent OR "tool use")', 'title:agent OR title:"tool use"'),
    ('Au:"Fei-Fei Li" CAT:CS.CV', 'author:"fei fei li" AND cat:cs.cv'),
    ("source:Lab  Blog", "source:lab AND blog"),
    ('source:"Lab  Blog" upvotes:>4', 'source:"lab blog" AND upvotes:>=5'),
    ("LLMs β-VAE", 'llms AND "beta vae"'),
    ("a\tAND\nb", "a AND b"),
]


@pytest.mark.parametrize(("text", "normalized"), NORMALIZED)
def test_normalized_form(text: str, normalized: str) -> None:
    assert normalize_query(text) == normalized
    assert normalize_query(normalized) == normalized


# --- every error: what, where, how to fix ----------------------------------------------

ERRORS: list[tuple[str, str, int, str]] = [
    ("", "the query is empty", 1, "type at least one word"),
    ("   ", "the query is empty", 1, "type at least one word"),
    ('"diffusion models', "unbalanced quote", 1, 'close it with "'),
    ('transformers "diffusion', "unbalanced quote", 14, 'close it with "'),
    ("(a OR b", "unbalanced parenthesis", 1, "close it with )"),
    ("a OR b)", "unbalanced parenthesis", 7, "add ( before it"),
    ("(a))", "unbalanced parenthesis", 4, "add ( before it"),
    (")", "unbalanced parenthesis", 1, "add ( before it"),
    ("()", "empty parentheses", 1, "put words inside"),
    ("a (", "unbalanced parenthesis", 3, "close it with )"),
    ("a OR", "OR has nothing after it", 3, "put a word after OR"),
    ("a OR OR b", "OR has nothing after it", 3, "put a word after OR"),
    ("a AND", "AND has nothing after it", 3, "put a word after AND"),
    ("a AND OR b", "AND has nothing after it", 3, "put a word after AND"),
    ("AND b", "AND has nothing before it", 1, "put a word before AND"),
    ("OR b", "OR has nothing before it", 1, "put a word before OR"),
    ("(OR b)", "OR has nothing before it", 2, "put a word before OR"),
    ("NOT", "NOT has nothing after it", 1, "put a word after NOT"),
    ("a NOT", "NOT has nothing after it", 3, "put a word after NOT"),
    ("a - b", "- has nothing after it", 3, "write -word, with no space"),
    ("-survey", "the query only says what to leave out", 1, "add a word to look for"),
    ("NOT a NOT b", "the query only says what to leave out", 1, "add a word to look for"),
    ("a OR -b", "this side of OR only says what to leave out", 6, "put the NOT outside"),
    ("foo:bar", 'unknown field "foo:"', 1, 'quote it: "foo:bar"'),
    ("x re:invent", 'unknown field "re:"', 3, "fields are title:, abstract:, author:"),
    ("title:", "title: has no value", 6, 'no space after the colon, e.g. title:"some words"'),
    ("title: llm", "title: has no value", 6, "no space after the colon"),
    ("cat: cs.LG", "cat: has no value", 4, "e.g. cat:cs.LG"),
    ("x upvotes:", "upvotes: has no value", 10, "e.g. upvotes:>=10"),
    ("title:-llm", "title: is followed by -", 7, "put the minus first: -title:llm"),
    ("title:(a author:b)", "author: inside a title:( ) group", 10, "move it outside"),
    ("cat:(cs.LG)", "cat: takes one value, not a group", 1, "cat:a OR cat:b"),
    ("cat:cs_LG", 'bad category "cs_LG"', 5, "cat:cs.LG, or cat:cs.*"),
    ("cat:c*", 'bad category "c*"', 5, "cat:cs.*"),
    ("source:a*", 'bad source name "a*"', 8, "source:hf"),
    ("tr*", "prefix too short (at least 3 letters before *)", 1, "transform*"),
    ("é*", "prefix too short (at least 3 letters before *)", 1, "add letters"),
    ("in-cont*", "a prefix must be a single word", 1, "remove the hyphen"),
    ("*former", "* inside a word", 1, "a * can only end a word"),
    ("trans*former", "* inside a word", 6, "a * can only end a word"),
    ("upvotes:lots", 'bad upvotes "lots"', 9, "upvotes:>=10"),
    ("upvotes:>=-1", 'bad upvotes ">=-1"', 9, "upvotes:>=10"),
    ("upvotes:10", 'bad upvotes "10"', 9, "write upvotes:>=10 for papers with 10 or more"),
    ("upvotes:<5", 'bad upvotes "<5"', 9, "upvotes:>="),
    ("upvotes:>=99999999", 'bad upvotes ">=99999999"', 9, "up to 1000000"),
    ('""', "empty phrase", 1, "put words between the quotes"),
    ('a " "', "empty phrase", 3, "put words between the quotes"),
    ('"++"', "nothing to look for in the phrase", 1, "use letters or digits"),
    ("++", 'nothing to look for in "++"', 1, "use letters or digits"),
    ("a && b", '"&&" is not an operator', 3, "write AND"),
    ("a || b", '"||" is not an operator', 3, "write OR"),
    ("a or b", '"or" is ambiguous', 3, 'write OR in capitals for the operator, or "or" in quotes'),
    ("a and b", '"and" is ambiguous', 3, "write AND in capitals"),
    ("Not b", '"Not" is ambiguous', 1, "write NOT in capitals"),
    ("a AND&&", '"AND&&" is ambiguous', 3, "write AND in capitals"),
    ("a (or)", '"or" is ambiguous', 4, "write OR in capitals"),
    ("a\x07b", "invisible or control character U+0007", 2, "remove it"),
    ("in\u00adcontext", "invisible or control character U+00AD", 3, "remove it"),
    ("a" * 513, "query is too long (513 characters, at most 512)", 513, "shorten it"),
    (
        " ".join(f"w{i}" for i in range(33)),
        "too many terms (at most 32 words, phrases and filters)",
        119,
        "split it",
    ),
    (
        "(" * 9 + "a" + ")" * 9,
        "parentheses nested too deeply (at most 8 levels)",
        9,
        "simplify the query",
    ),
    ("α" * 500, "the query is too long once written out", 1, "shorten it"),
]


@pytest.mark.parametrize(("text", "problem", "column", "hint"), ERRORS)
def test_errors_say_what_where_and_how(text: str, problem: str, column: int, hint: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    err = info.value
    assert (err.problem, err.column) == (problem, column)
    assert hint in err.hint
    assert str(err) == f"{problem} at column {column}: {err.hint}"
    assert isinstance(err, UserError)


def test_issue_example_message() -> None:
    with pytest.raises(QueryError, match=r'^unbalanced quote at column 14: close it with "$'):
        parse_query('transformers "diffusion')


def test_limits_are_inclusive() -> None:
    assert parse_query("a" * 512) == Term(Field.ANY, "a" * 512)
    q = parse_query(" ".join(f"w{i}" for i in range(32)))
    assert len(list(leaves(q))) == 32
    assert parse_query("(" * 8 + "a" + ")" * 8) == Term(Field.ANY, "a")


def test_unknown_source_lists_the_configured_ones() -> None:
    sources = ["hf", "arxiv", "Lab Blog"]
    assert parse_query('source:"lab blog"', sources=sources) == Source("lab blog")
    with pytest.raises(QueryError) as info:
        parse_query("diffusion source:hff", sources=sources)
    assert info.value.column == 18  # the value's column
    assert info.value.hint == "sources are arxiv, hf, lab blog"


def test_stored_form_of_a_long_query_reparses() -> None:
    """A 512-character query can grow when written out; the stored limits take it back."""
    text = " ".join(f"subscription{i:02} -unwantedword{i:02}" for i in range(16))
    assert len(text) <= 512
    q = parse_query(text)
    assert len(render(q)) > 512
    assert parse_query(render(q), limits=STORED_LIMITS) == q


# --- random input ------------------------------------------------------------------------

_ERROR_TEXT = re.compile(r"^.+ at column \d+: .+$", re.S)


def _parses_or_explains(text: str) -> None:
    try:
        q = parse_query(text)
    except QueryError as err:
        assert 1 <= err.column <= len(text) + 1
        assert err.problem
        assert err.hint
        assert _ERROR_TEXT.match(str(err))
        return
    again = render(q)
    assert parse_query(again, limits=STORED_LIMITS) == q
    assert len(list(leaves(q))) <= 32


# A 1 s deadline is thousands of times what a parse takes: it catches runaway
# backtracking or recursion, not a slow machine.
_BOUNDED = settings(max_examples=200, deadline=timedelta(seconds=1))


@_BOUNDED
@given(st.text(max_size=600))
@example("(" * 300)
@example("-" * 511 + "a")
@example('"' * 512)
@example("a " * 256)
def test_random_text_parses_or_gives_a_clear_error(text: str) -> None:
    _parses_or_explains(text)


@_BOUNDED
@given(query_soup())
def test_query_like_text_parses_or_gives_a_clear_error(text: str) -> None:
    _parses_or_explains(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(positive_queries(corpus_vocabulary()))
def test_normalized_form_parses_back_to_the_same_query(q: Query) -> None:
    text = render(q)
    assert parse_query(text, limits=STORED_LIMITS) == q
    if len(text) <= 512:
        assert normalize_query(text) == text
