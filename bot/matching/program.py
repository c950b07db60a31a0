"""Compiled subscriptions: a ``Query`` as a small tuple program, and its index plan.

A program is nested tuples with interned strings (about 60 bytes a node, strings shared
between subscriptions), so 100k subscriptions stay well under 1 KB each:

- ``(KEY, key)``: the paper holds this index key (a stemmed word, a title word, an author
  word, a category or category prefix, a source, a ``like:`` paper it is similar to);
- ``(ABSTRACT_TERM, term)``: the abstract holds this index term;
- ``(PHRASE, hay, needle)``: ``" w1 w2 "`` occurs in haystack ``hay``;
- ``(PREFIX, hay, needle)``: ``" pre"`` occurs in haystack ``hay``;
- ``(UPVOTES, n)``, ``(AND, children)``, ``(OR, children)``, ``(NOT, child)``.

``plan`` turns a program into the entries the presearcher indexes. Each entry is a path
of at most ``MAX_PATH`` keys that every match of one conjunction must hold, rarest first,
and the residual still to verify (None when the path proves the match). A query becomes
at most ``MAX_CONJUNCTIONS`` conjunctions (disjunctive normal form); beyond that, Luwak's
extraction: one any-of key set, each member verified against the whole query. Entries
are made disjoint (each also requires that the ones before it failed), so one paper
reaches a subscription at most once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from itertools import pairwise, product
from typing import Any, TypeAlias

from bot.matching.analysis import (
    AUTHOR_NS,
    AUTHOR_PREFIX_NS,
    CAT_NS,
    CAT_PREFIX_NS,
    HAY_ABSTRACT,
    HAY_ANY,
    HAY_AUTHOR,
    HAY_TITLE,
    LIKE_NS,
    PREFIX_NS,
    SOURCE_NS,
    TITLE_NS,
    Key,
    PaperTerms,
    term_key,
)
from bot.matching.query.ast import (
    And,
    Cat,
    Field,
    Leaf,
    Like,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
)

KEY, ABSTRACT_TERM, PHRASE, PREFIX, UPVOTES, AND, OR, NOT = range(8)
MAX_PATH = 3
MAX_CONJUNCTIONS = 8

Program: TypeAlias = tuple[Any, ...]
Weight: TypeAlias = Callable[[Key], float]
Leaves: TypeAlias = tuple[Program, ...]
# (path of keys, residual to verify or None when the path proves the match)
Entry: TypeAlias = tuple[tuple[Key, ...], Program | None]

HAYS = {Field.ANY: HAY_ANY, Field.TITLE: HAY_TITLE, Field.ABSTRACT: HAY_ABSTRACT}
HAYS[Field.AUTHOR] = HAY_AUTHOR

_intern = sys.intern


def compile_query(q: Query) -> Program:
    if isinstance(q, And | Or):
        return (AND if isinstance(q, And) else OR, tuple(compile_query(c) for c in q.children))
    if isinstance(q, Not):
        return (NOT, compile_query(q.child))
    return _compile_leaf(q)


def _compile_leaf(q: Leaf) -> Program:  # noqa: PLR0911 - one return per kind of leaf
    if isinstance(q, Term):
        if q.field is Field.ABSTRACT:
            return (ABSTRACT_TERM, _intern(term_key(q.word)))
        # Author names are matched word for word; title and abstract by index term.
        author = q.field is Field.AUTHOR
        title = TITLE_NS if q.field is Field.TITLE else ""
        return (KEY, _intern(AUTHOR_NS + q.word if author else title + term_key(q.word)))
    if isinstance(q, Phrase | Prefix):
        text = " ".join(q.words) + " " if isinstance(q, Phrase) else q.prefix
        return (PHRASE if isinstance(q, Phrase) else PREFIX, HAYS[q.field], _intern(" " + text))
    if isinstance(q, Cat):
        return (KEY, _intern((CAT_PREFIX_NS if q.prefix else CAT_NS) + q.value))
    if isinstance(q, Source):
        return (KEY, _intern(SOURCE_NS + q.name))
    if isinstance(q, Like):
        return (KEY, _intern(LIKE_NS + q.key))
    return (UPVOTES, q.at_least)


def evaluate(p: Program, keys: AbstractSet[Key], t: PaperTerms) -> bool:  # noqa: PLR0911
    """``p`` on paper ``t``; ``keys`` is ``t.keys``, plus any ``pre:`` keys derived."""
    op = p[0]
    if op == KEY:
        return p[1] in keys
    if op == AND:
        for child in p[1]:  # noqa: SIM110 - a plain loop is twice as fast as all()
            if not evaluate(child, keys, t):
                return False
        return True
    if op == OR:
        for child in p[1]:  # noqa: SIM110 - a plain loop is twice as fast as any()
            if evaluate(child, keys, t):
                return True
        return False
    if op == NOT:
        return not evaluate(p[1], keys, t)
    if op == ABSTRACT_TERM:
        return p[1] in t.abstract_terms
    if op == UPVOTES:
        return t.upvotes is not None and t.upvotes >= p[1]
    return p[2] in t.hays[p[1]]  # PHRASE, PREFIX


def needed_keys(p: Program) -> tuple[tuple[Key, ...], bool]:
    """Keys a paper must hold for leaf ``p`` to be true, and whether holding them is
    enough. ``pre:``/``au*:`` keys are derived by the matcher, not stored in papers."""
    op = p[0]
    if op == KEY:
        return (p[1],), True
    if op == ABSTRACT_TERM:
        return (p[1],), False
    if op == PREFIX:
        prefix = p[2][1:]
        if p[1] == HAY_AUTHOR:
            return (AUTHOR_PREFIX_NS + prefix,), True
        return (PREFIX_NS + prefix,), p[1] == HAY_ANY
    if op == PHRASE:
        return _phrase_keys(p[1], p[2].split())
    return (), False  # UPVOTES, NOT, or a group taken as a whole


def _phrase_keys(hay: int, words: list[str]) -> tuple[tuple[Key, ...], bool]:
    if hay == HAY_AUTHOR:
        return tuple(dict.fromkeys(AUTHOR_NS + w for w in words)), False
    if len(words) == 1:
        return ((TITLE_NS if hay == HAY_TITLE else "") + term_key(words[0]),), False
    pairs = tuple(dict.fromkeys(pairwise(words)))
    return pairs, hay == HAY_ANY and len(words) == 2


# A conjunction while planning: (required keys, leaves whose keys suffice, residual
# leaves). Leaves are the program's own tuples, so the index shares rather than copies.
_Conj: TypeAlias = tuple[frozenset[Key], tuple[Program, ...], tuple[Program, ...]]


def plan(p: Program, weight: Weight) -> list[Entry]:
    """Index entries for program ``p``. Their matches never overlap (each entry also
    requires that the entries before it failed), so a paper reaches a subscription at
    most once and the matcher needs no set to drop duplicates."""
    return plan_with_leaves(p, weight)[0]


def plan_with_leaves(
    p: Program, weight: Weight
) -> tuple[list[Entry], list[tuple[Leaves, frozenset[Program]]] | None]:
    """``plan``, and for each entry the positive leaves of its conjunction, each once
    (a paper that reaches the entry holds them all), with those of the conjunctions
    after it, kept or not (they may hold too). None for entries that verify the whole
    program (a query too big for disjunctive normal form)."""
    conjs = _dnf(p)
    if conjs is None:
        return _anchor_entries(p, weight), None
    positive = [tuple(dict.fromkeys(x for x in (*c[1], *c[2]) if x[0] != NOT)) for c in conjs]
    entries: list[Entry] = []
    leaves: list[tuple[Leaves, frozenset[Program]]] = []
    for i, conj in enumerate(conjs):
        path, checks = _entry(conj, weight)
        earlier = [_negate(c, set(path)) for c in conjs[:i]]
        if None in earlier:
            continue  # an earlier conjunction holds wherever this one does
        entries.append((path, _all((*checks, *(e for e in earlier if e is not None)))))
        leaves.append((positive[i], frozenset(x for later in positive[i + 1 :] for x in later)))
    return entries, leaves


def _anchor_entries(p: Program, weight: Weight) -> list[Entry]:
    anchors = _anchors(p, weight)
    if anchors is None:
        return [((), p)]
    ordered = sorted(anchors, key=_by(weight))
    return [
        ((k,), _all((p, *((NOT, (KEY, earlier)) for earlier in ordered[:i]))))
        for i, k in enumerate(ordered)
    ]


def _by(weight: Weight) -> Callable[[Key], tuple[float, str]]:
    return lambda k: (weight(k), k if isinstance(k, str) else " ".join(k))


def _entry(conj: _Conj, weight: Weight) -> tuple[tuple[Key, ...], tuple[Program, ...]]:
    """The path (rarest keys first) and what is left to check for one conjunction."""
    required, exact, residual = conj
    path = tuple(sorted(required, key=_by(weight))[:MAX_PATH])
    return path, (*_unproven(exact, set(path)), *residual)


def _unproven(exact: tuple[Program, ...], proven: set[Key]) -> tuple[Program, ...]:
    return tuple(leaf for leaf in exact if needed_keys(leaf)[0][0] not in proven)


def _negate(conj: _Conj, proven: set[Key]) -> Program | None:
    """NOT ``conj`` on a path holding ``proven``; None when ``conj`` surely holds there."""
    leaves = (*_unproven(conj[1], proven), *conj[2])
    if not leaves:
        return None
    return (NOT, leaves[0] if len(leaves) == 1 else (AND, leaves))


def _all(checks: tuple[Program, ...]) -> Program | None:
    if not checks:
        return None
    return checks[0] if len(checks) == 1 else (AND, checks)


def absent_keys(residual: Program) -> tuple[Key, ...] | None:
    """The keys whose absence alone proves ``residual`` (``a -b``, a later OR branch)."""
    parts = residual[1] if residual[0] == AND else (residual,)
    out: list[Key] = []
    for part in parts:
        if part[0] != NOT:
            return None
        keys, sufficient = needed_keys(part[1])
        if not sufficient or len(keys) != 1:
            return None
        out.append(keys[0])
    return tuple(out)


def _dnf(p: Program) -> list[_Conj] | None:
    """``p`` as an OR of conjunctions, or None when that would take too many."""
    op = p[0]
    if op == OR:
        out: list[_Conj] = []
        for child in p[1]:
            sub = _dnf(child)
            if sub is None or len(out) + len(sub) > MAX_CONJUNCTIONS:
                return None
            out.extend(sub)
        return out
    if op == AND:
        parts: list[list[_Conj]] = []
        total = 1
        for child in p[1]:
            sub = _dnf(child)
            if sub is None or total * len(sub) > MAX_CONJUNCTIONS:
                return None
            total *= len(sub)
            parts.append(sub)
        return [_join(combo) for combo in product(*parts)]
    keys, sufficient = needed_keys(p)
    return [(frozenset(keys), (p,), ()) if sufficient else (frozenset(keys), (), (p,))]


def _join(conjs: tuple[_Conj, ...]) -> _Conj:
    required = frozenset[Key]().union(*(c[0] for c in conjs))
    exact = tuple(dict.fromkeys(leaf for c in conjs for leaf in c[1]))
    residual = tuple(dict.fromkeys(r for c in conjs for r in c[2]))
    return required, exact, residual


def _anchors(p: Program, weight: Weight) -> frozenset[Key] | None:
    """Keys of which every match holds at least one (None: no such set)."""
    op = p[0]
    if op == OR:
        sets = [_anchors(c, weight) for c in p[1]]
        if any(s is None for s in sets):
            return None
        return frozenset[Key]().union(*(s for s in sets if s is not None))
    if op == AND:
        options = [s for s in (_anchors(c, weight) for c in p[1]) if s is not None]
        if not options:
            return None
        return min(options, key=lambda s: (sum(map(weight, s)), sorted(map(str, s))))
    keys = needed_keys(p)[0]
    if not keys:
        return None
    return frozenset({min(keys, key=_by(weight))})
