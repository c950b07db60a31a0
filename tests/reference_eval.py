"""A deliberately simple evaluator of a ``Query`` over a ``Paper``, and the test corpus.

Nothing here is fast or clever: the paper is re-tokenized from scratch with the public
analysis steps (``text_tokens``, ``term_key``, ``fold_name``) and the query tree walked
leaf by leaf with lists and slices, so it can be read and trusted at a glance. The
presearching ``Matcher`` must agree with it on every query and paper.

``load_corpus`` and its synthetic names, categories and sources live in bench/_corpus.py,
shared with the matcher bench (which may not import tests/), and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench._corpus import AUTHOR_NAMES, CATEGORY_SETS, FEED_NAME, load_corpus
from bot.matching.analysis import fold_name, term_key, text_tokens
from bot.matching.query import (
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
)
from bot.models import Paper

__all__ = [
    "AUTHOR_NAMES",
    "CATEGORY_SETS",
    "FEED_NAME",
    "NaiveDoc",
    "load_corpus",
    "reference_match",
]


@dataclass(frozen=True)
class NaiveDoc:
    title: list[str]
    abstract: list[str]
    authors: list[list[str]]
    categories: list[str]
    sources: list[str]
    upvotes: int | None

    @classmethod
    def of(cls, paper: Paper) -> NaiveDoc:
        return cls(
            title=text_tokens(paper.title),
            abstract=text_tokens(paper.abstract),
            authors=[text_tokens(a) for a in paper.authors],
            categories=[c.lower() for c in paper.categories],
            sources=[fold_name(s) for s in paper.sources],
            upvotes=paper.upvotes,
        )

    def parts(self, field: Field) -> list[list[str]]:
        """The token sequences a field looks in; a phrase never spans two of them."""
        if field is Field.ANY:
            return [self.title, self.abstract]
        if field is Field.TITLE:
            return [self.title]
        if field is Field.ABSTRACT:
            return [self.abstract]
        return self.authors


def reference_match(q: Query, paper: Paper | NaiveDoc) -> bool:
    doc = paper if isinstance(paper, NaiveDoc) else NaiveDoc.of(paper)
    return _eval(q, doc)


def _eval(q: Query, doc: NaiveDoc) -> bool:  # noqa: PLR0911 - one case per node type
    if isinstance(q, And):
        return all(_eval(c, doc) for c in q.children)
    if isinstance(q, Or):
        return any(_eval(c, doc) for c in q.children)
    if isinstance(q, Not):
        return not _eval(q.child, doc)
    if isinstance(q, Term | Phrase | Prefix):
        return any(_in_sequence(q, seq) for seq in doc.parts(q.field))
    if isinstance(q, Cat):
        return any(c.startswith(q.value) if q.prefix else c == q.value for c in doc.categories)
    if isinstance(q, Source):
        return q.name in doc.sources
    assert isinstance(q, Upvotes)
    return doc.upvotes is not None and doc.upvotes >= q.at_least


def _in_sequence(q: Term | Phrase | Prefix, seq: list[str]) -> bool:
    if isinstance(q, Prefix):
        return any(tok.startswith(q.prefix) for tok in seq)
    if isinstance(q, Phrase):
        n = len(q.words)
        return any(tuple(seq[i : i + n]) == q.words for i in range(len(seq) - n + 1))
    if q.field is Field.AUTHOR:
        return q.word in seq  # names: the word itself, never its stem
    target = term_key(q.word)
    return any(term_key(tok) == target for tok in seq)
