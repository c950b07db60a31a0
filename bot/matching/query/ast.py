"""The parsed form of a subscription query, and its normalized text.

Nodes are frozen and built only through ``make_and``/``make_or``/``make_not``, which keep
the tree canonical: nested ANDs and ORs flattened, repeated children dropped (first kept),
one-child groups unwrapped, ``NOT NOT x`` turned into ``x``. ``render`` writes the
canonical text: operators in capitals, every AND written out, fields explicit (the
default "title or abstract" has none), words folded; ``parse_query(render(q)) == q``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias


class Field(StrEnum):
    """Where a word, phrase or prefix is looked for. ``ANY`` is title or abstract."""

    ANY = "any"
    TITLE = "title"
    ABSTRACT = "abstract"
    AUTHOR = "author"


class _Node:
    __slots__ = ()

    def __str__(self) -> str:
        return render(self)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Term(_Node):
    """One word (folded). In title/abstract it matches any word with the same stem;
    in author names it matches that exact word."""

    field: Field
    word: str


@dataclass(frozen=True, slots=True)
class Phrase(_Node):
    """Folded words in this order, not stemmed. One word is an exact, unstemmed word."""

    field: Field
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prefix(_Node):
    """Any word starting with ``prefix`` (folded, at least 3 characters)."""

    field: Field
    prefix: str


@dataclass(frozen=True, slots=True)
class Cat(_Node):
    """An arXiv category (lowercased); with ``prefix`` any category starting with it."""

    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Source(_Node):
    """A source name (``hf``, ``arxiv``, a feed) as ``bot.matching.analysis.fold_name`` folds it."""

    name: str


@dataclass(frozen=True, slots=True)
class Upvotes(_Node):
    """Hugging Face upvotes at least ``at_least``; a paper without a count never matches."""

    at_least: int


@dataclass(frozen=True, slots=True)
class Like(_Node):
    """Papers similar to the stored paper ``key`` (an arXiv id without version, or a
    feed paper's ``feed:`` key): cosine of their vectors at least
    ``bot.relevance.similar.LIKE_THRESHOLD``."""

    key: str


@dataclass(frozen=True, slots=True)
class And(_Node):
    children: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or(_Node):
    children: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Not(_Node):
    child: Query


Query: TypeAlias = Term | Phrase | Prefix | Cat | Source | Upvotes | Like | And | Or | Not
Leaf: TypeAlias = Term | Phrase | Prefix | Cat | Source | Upvotes | Like


def make_and(items: Iterable[Query]) -> Query:
    return _group(And, items)


def make_or(items: Iterable[Query]) -> Query:
    return _group(Or, items)


def _group(kind: type[And] | type[Or], items: Iterable[Query]) -> Query:
    flat: list[Query] = []
    for item in items:
        for child in item.children if isinstance(item, kind) else (item,):
            if child not in flat:
                flat.append(child)
    if not flat:
        raise ValueError("a group needs at least one child")
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def make_not(item: Query) -> Query:
    return item.child if isinstance(item, Not) else Not(item)


def is_positive(q: Query) -> bool:
    """True when ``q`` asks for something to be present, not only absent."""
    if isinstance(q, Not):
        return False
    if isinstance(q, And):
        return any(is_positive(c) for c in q.children)
    if isinstance(q, Or):
        return all(is_positive(c) for c in q.children)
    return True


def leaves(q: Query) -> Iterator[Leaf]:
    if isinstance(q, And | Or):
        for child in q.children:
            yield from leaves(child)
    elif isinstance(q, Not):
        yield from leaves(q.child)
    else:
        yield q


def like_keys(q: Query) -> frozenset[str]:
    """The papers ``like:`` atoms of ``q`` refer to."""
    return frozenset(leaf.key for leaf in leaves(q) if isinstance(leaf, Like))


_BARE_NAME = re.compile(r"[^\s()\"“”*\-][^\s()\"“”*]*")


def render(q: Query) -> str:
    """The canonical text of ``q``; parsing it gives ``q`` back."""
    if isinstance(q, And):
        return " AND ".join(_wrap(c, Or) for c in q.children)
    if isinstance(q, Or):
        return " OR ".join(_wrap(c, And) for c in q.children)
    if isinstance(q, Not):
        return "NOT " + _wrap(q.child, And, Or)
    return _render_leaf(q)


def _wrap(q: Query, *kinds: type[And] | type[Or]) -> str:
    text = render(q)
    return f"({text})" if isinstance(q, kinds) else text


def _render_leaf(q: Leaf) -> str:  # noqa: PLR0911 - one return per kind of leaf
    if isinstance(q, Term):
        return _fielded(q.field, q.word)
    if isinstance(q, Phrase):
        return _fielded(q.field, '"' + " ".join(q.words) + '"')
    if isinstance(q, Prefix):
        return _fielded(q.field, q.prefix + "*")
    if isinstance(q, Cat):
        return f"cat:{q.value}" + ("*" if q.prefix else "")
    if isinstance(q, Source):
        return "source:" + (q.name if _BARE_NAME.fullmatch(q.name) else f'"{q.name}"')
    if isinstance(q, Like):
        return f"like:{q.key}"
    return f"upvotes:>={q.at_least}"


def _fielded(field: Field, value: str) -> str:
    return value if field is Field.ANY else f"{field.value}:{value}"
