"""Why a query did not match a paper: the clause that failed, in plain words, and an edit
of the query that would have matched it.

The counterpart of ``bot.matching.explain`` (which says what made a match true): the
query's tree (``bot.matching.query.ast``) is walked top down, each node judged by the
matcher's own compiled program (``bot.matching.program``), so the answer is the one the
match step would give. The first false child of an AND is the clause named; a NOT is
named with the words that made its inside true (``Explainer``'s highlight words).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.matching.analysis import PaperTerms, fold, fold_name, tokenize
from bot.matching.explain import Explainer
from bot.matching.program import compile_query, evaluate
from bot.matching.query.ast import (
    And,
    Cat,
    Field,
    Like,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
    Upvotes,
    is_positive,
    make_and,
    make_or,
    render,
)
from bot.models import Paper

_WHERE = {
    Field.ANY: "title or abstract",
    Field.TITLE: "title",
    Field.ABSTRACT: "abstract",
    Field.AUTHOR: "author names",
}


@dataclass(frozen=True, slots=True)
class FailedClause:
    """The clause of a query that kept it from matching one paper."""

    clause: str  # the clause as paperbell writes it: "NOT survey", "cat:cs.cv"
    reason: str  # plain words: '`NOT survey` excluded it: the paper says "survey"'


def holds(q: Query, terms: PaperTerms) -> bool:
    """Whether ``q`` is true for the paper, as the match step would judge it."""
    return evaluate(compile_query(q), terms.keys, terms)


def failed_clause(q: Query, paper: Paper, terms: PaperTerms) -> FailedClause | None:
    """The first clause of ``q`` that is false for the paper; None when ``q`` matches."""
    if holds(q, terms):
        return None
    node = q
    while isinstance(node, And):  # AND children are what a person wrote as clauses
        node = next(c for c in node.children if not holds(c, terms))
    return FailedClause(render(node), _reason(node, paper, terms))


def _reason(node: Query, paper: Paper, terms: PaperTerms) -> str:
    clause = f"`{render(node)}`"
    if isinstance(node, Not):
        words = Explainer(terms).match(0, compile_query(node.child)).matched_words
        distinct = {w.lower(): w for w in reversed(words)}  # one spelling per word
        said = ", ".join(f'"{w}"' for w in sorted(distinct.values(), key=str.lower))
        return f"{clause} excluded it: the paper says " + (said or "it")
    if isinstance(node, Or):
        return f"{clause}: none of these is in the paper"
    return f"{clause}: {_leaf_reason(node, paper)}"


def _leaf_reason(node: Query, paper: Paper) -> str:  # noqa: PLR0911 - one per kind of leaf
    if isinstance(node, Term | Phrase | Prefix):
        return f"the paper's {_WHERE[node.field]} has {_missing(node)}"
    if isinstance(node, Cat):
        cats = ", ".join(paper.categories) or "no category"
        return f"but the paper is {cats}"
    if isinstance(node, Source):
        seen = ", ".join(paper.sources) or "no source"
        return f"but the paper was seen in {seen}"
    if isinstance(node, Upvotes):
        if paper.upvotes is None:
            return "but the paper has no Hugging Face upvote count"
        return f"but the paper has {paper.upvotes} upvotes"
    if isinstance(node, Like):
        return f"the paper is not close enough to {node.key}"
    return "not true for the paper"


def _missing(node: Term | Phrase | Prefix) -> str:
    if isinstance(node, Term):
        return f'no word "{node.word}" (nor one of the same stem)'
    if isinstance(node, Phrase):
        return 'not the words "' + " ".join(node.words) + '" in this order'
    return f'no word starting with "{node.prefix}"'


def suggest_edit(q: Query, paper: Paper, terms: PaperTerms) -> Query | None:
    """A close edit of ``q`` that matches the paper: the failing clauses of its top AND
    dropped, or, when nothing positive would be left, a failing filter widened to the
    paper's own value. None when no such edit is found (or ``q`` matches already)."""
    if holds(q, terms):
        return None
    clauses = q.children if isinstance(q, And) else (q,)
    kept = [c for c in clauses if holds(c, terms)]
    failed = [c for c in clauses if not holds(c, terms)]
    if kept and is_positive(make_and(kept)):
        return make_and(kept)
    widened = [w for c in failed if (w := _widen(c, paper)) is not None]
    if len(widened) != len(failed):
        return None
    edit = make_and([*kept, *widened])
    return edit if holds(edit, terms) and is_positive(edit) else None


def _widen(clause: Query, paper: Paper) -> Query | None:
    """``clause OR`` the paper's own value of the same filter, if it is one."""
    if isinstance(clause, Cat) and paper.categories:
        return make_or([clause, Cat(paper.categories[0].lower())])
    if isinstance(clause, Source) and paper.sources:
        return make_or([clause, *_sources(paper.sources)])
    if isinstance(clause, Term | Phrase | Prefix | Or) and _text(clause):
        word = _title_word(paper)
        return make_or([clause, Term(Field.TITLE, word)]) if word else None
    return None


def _text(clause: Query) -> bool:
    return not isinstance(clause, Term | Phrase | Prefix) or clause.field is not Field.AUTHOR


def _title_word(paper: Paper) -> str | None:
    """The title's longest word: what a reader would most likely add to catch it."""
    words = [w for w in tokenize(fold(paper.title)) if len(w) >= 5 and w.isalpha()]
    return max(words, key=len) if words else None


def _sources(names: Iterable[str]) -> list[Query]:
    return [Source(fold_name(n)) for n in names]
