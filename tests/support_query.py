"""Hypothesis strategies for queries: random text for the parser, and random query trees
built from the test corpus's own words, phrases, names and categories for the matcher."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from hypothesis import strategies as st

from bot.matching.analysis import fold_name, text_tokens
from bot.matching.query import (
    Cat,
    Field,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
    Upvotes,
    make_and,
    make_not,
    make_or,
)
from tests.reference_eval import AUTHOR_NAMES, CATEGORY_SETS, FEED_NAME, load_corpus

OPERATOR_WORDS = frozenset({"and", "or", "not"})


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]
    prefixes: tuple[str, ...]
    author_words: tuple[str, ...]
    author_phrases: tuple[tuple[str, ...], ...]
    categories: tuple[str, ...]
    category_prefixes: tuple[str, ...]
    sources: tuple[str, ...]


@cache
def corpus_vocabulary() -> Vocabulary:
    """Words and phrases seen in at least two corpus papers (so queries do match), plus a
    few never seen (so they also miss)."""
    word_df: Counter[str] = Counter()
    pair_df: Counter[tuple[str, str]] = Counter()
    for paper in load_corpus():
        toks = text_tokens(paper.title) + text_tokens(paper.abstract)
        word_df.update(set(toks))
        pair_df.update(set(pairwise(toks)))
    words = sorted(w for w, n in word_df.items() if n >= 2 and w not in OPERATOR_WORDS)
    phrases = sorted(p for p, n in pair_df.items() if n >= 2)
    names = [text_tokens(name) for name in AUTHOR_NAMES]
    cats = sorted({c.lower() for group in CATEGORY_SETS for c in group})
    return Vocabulary(
        words=(*words, "zebrafish", "quux"),
        phrases=(*phrases, ("large", "zebrafish")),
        prefixes=tuple(sorted({w[:k] for w in words[::7] for k in (3, 4, 6) if len(w) >= k})),
        author_words=tuple(sorted({t for name in names for t in name} | {"nobody"})),
        author_phrases=tuple(tuple(n) for n in names),
        categories=(*cats, "hep-th"),
        category_prefixes=("cs.", "cs.c", "q-bio", "stat", "ma", "hep"),
        sources=("hf", "arxiv", fold_name(FEED_NAME), "elsewhere"),
    )


def leaf_queries(v: Vocabulary) -> st.SearchStrategy[Query]:
    text_field = st.sampled_from([Field.ANY, Field.ANY, Field.ANY, Field.TITLE, Field.ABSTRACT])
    author = st.just(Field.AUTHOR)
    return st.one_of(
        st.builds(Term, text_field, st.sampled_from(v.words)),
        st.builds(Term, text_field, st.sampled_from(v.words)),
        st.builds(Phrase, text_field, st.sampled_from(v.phrases)),
        st.builds(Phrase, text_field, st.sampled_from(v.words).map(lambda w: (w,))),
        st.builds(Prefix, text_field, st.sampled_from(v.prefixes)),
        st.builds(Term, author, st.sampled_from(v.author_words)),
        st.builds(Phrase, author, st.sampled_from(v.author_phrases)),
        st.builds(Prefix, author, st.sampled_from([w[:3] for w in v.author_words if len(w) > 2])),
        st.builds(Cat, st.sampled_from(v.categories)),
        st.builds(Cat, st.sampled_from(v.category_prefixes), st.just(True)),
        st.builds(Source, st.sampled_from(v.sources)),
        st.builds(Upvotes, st.integers(0, 9)),
    )


def positive_queries(v: Vocabulary, max_leaves: int = 8) -> st.SearchStrategy[Query]:
    """Canonical query trees that ask for something (as ``parse_query`` requires)."""

    def extend(inner: st.SearchStrategy[Query]) -> st.SearchStrategy[Query]:
        ors = st.lists(inner, min_size=2, max_size=3).map(make_or)
        ands = st.tuples(st.lists(inner, min_size=1, max_size=3), st.lists(inner, max_size=2)).map(
            lambda t: make_and([*t[0], *(make_not(q) for q in t[1])])
        )
        return st.one_of(ors, ands)

    return st.recursive(leaf_queries(v), extend, max_leaves=max_leaves)


QUERY_PIECES = (
    "AND", "OR", "NOT", "and", "or", "-", "--", "(", ")", '"', "“", "”", "title:", "ti:",
    "abstract:", "author:", "cat:", "source:", "upvotes:", "foo:", ">=", ">", "5", "-1",
    "cs.*", "cs.LG", "diffusion", "LLMs", "in-context", "trans*", "tr*", "*", "a*b", ":",
    "&&", "||", "é", "ß", "ﬁ", "α", "Σ", "\u00ad", "\x00", "\t", "\n", " ", " ", " ",
)  # fmt: skip


def query_soup() -> st.SearchStrategy[str]:
    """Strings built from the query language's own pieces: mostly near-misses."""
    return st.lists(st.sampled_from(QUERY_PIECES), max_size=30).map("".join)
