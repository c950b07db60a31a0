"""What a match is made of: the words to highlight and a score, computed per paper.

Only for the subscriptions a paper matched, after the presearcher found them, so the
program is known true: which of its leaves made it true follows from its shape alone
(``static_leaves``, found once when the subscription is added) except for the sides of
an OR, which are looked up. One ``Explainer`` per paper remembers each leaf's credit
(score and words) and the paper's words by token and by index term, so the thousands of
matches of one paper share that work. A ``Matcher`` goes further: the index entry that
reached a program names the leaves it proved (``Fixed``, shared by every entry that
proves the same ones), explained once per paper, and only an OR's other sides are
looked up (``Sides``; the whole program, ``Whole``, if one holds). These are the
recipes the matcher groups a paper's matches by; ``tests/reference_explain.py`` is the
straightforward walk they must equal.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Set as AbstractSet
from operator import itemgetter
from typing import Any, NamedTuple, TypeAlias

from bot.matching.analysis import (
    HAY_ABSTRACT,
    HAY_ANY,
    HAY_AUTHOR,
    HAY_TITLE,
    TITLE_NS,
    PaperTerms,
    fold,
    surface_forms,
    surface_words,
    word_terms,
)
from bot.matching.program import ABSTRACT_TERM, AND, KEY, NOT, OR, PHRASE, PREFIX, Program, evaluate

TITLE_WEIGHT, ABSTRACT_WEIGHT, AUTHOR_WEIGHT, FILTER_WEIGHT = 2.0, 1.0, 1.5, 0.5
UPVOTE_NUDGE = 0.1
_HAY_WEIGHT = {HAY_TITLE: TITLE_WEIGHT, HAY_ABSTRACT: ABSTRACT_WEIGHT, HAY_AUTHOR: AUTHOR_WEIGHT}
_KEY_HAY = {"": HAY_ANY, "ti": HAY_TITLE}

# A leaf's score and words. The words may be a set the Explainer holds: never changed.
Credit = tuple[float, AbstractSet[str]]
# A leaf's credit and its words in highlight order.
_Credit = tuple[float, AbstractSet[str], tuple[str, ...]]
_FALSE: _Credit = (0.0, frozenset(), ())  # by identity: a leaf the paper does not hold
_NONE: frozenset[str] = frozenset()
# A program's positive leaves, each followed by whether it needs checking (flat: a tuple
# of pairs would cost 100 bytes more per subscription). See static_leaves.
StaticLeaves = tuple[Any, ...]


class Match(NamedTuple):
    """One subscription matching one paper.

    ``matched_words``: the words of the paper, as written in its LaTeX-folded title,
    abstract or author names (``Transformers``, ``LLMs``, ``Gödel``), that made the positive
    parts of the query true, sorted case-insensitively; highlight each as a whole word.
    Filters (``cat:``, ``source:``, ``upvotes:``) add no words. ``score``: 2 per matched
    part found in the title, 1.5 in author names, 1 in the abstract only, 0.5 per
    filter, plus 0.1·ln(1+upvotes); higher is a better match, for ordering a digest.

    A named tuple rather than a frozen dataclass (immutable all the same): the match
    step makes one per hit, a million a cycle at 100k subscriptions, and ``new_match``
    builds a tuple four times faster than a dataclass's ``__init__``.
    """

    sub_id: int
    matched_words: tuple[str, ...]
    score: float


def new_match(sub_id: int, words: tuple[str, ...], score: float) -> Match:
    """``Match(sub_id, words, score)``, without the keyword-capable ``__new__``."""
    match: Match = _tuple_new(Match, (sub_id, words, score))
    return match


_tuple_new: Any = tuple.__new__


class Fixed:
    """Positive leaves that one index entry proves, as ``StaticLeaves`` none of which
    needs checking: one object for every entry with these leaves (``diffusion``, and
    the last side of ``flow OR diffusion``), hashed by identity."""

    __slots__ = ("leaves", "rid", "users")

    def __init__(self, proved: tuple[Program, ...], program: StaticLeaves) -> None:
        """``program``: the static leaves of the program the entry is of, reused when
        equal (a program of one conjunction) rather than copied."""
        leaves = tuple(x for leaf in proved for x in (leaf, False))
        self.leaves: StaticLeaves = program if leaves == program else leaves
        self.users = 0  # entries sharing it, in one Matcher
        self.rid = -1  # its number among a Matcher's recipes


class Sides:
    """An index entry that proves ``fixed`` while other sides of an OR in the program
    (``sides``) may hold as well; if one does, the program's ``static_leaves``."""

    __slots__ = ("fixed", "leaves", "rid", "sides")

    def __init__(self, fixed: Fixed, sides: tuple[Program, ...], leaves: StaticLeaves) -> None:
        self.fixed, self.sides, self.leaves = fixed, sides, leaves
        self.rid = -1


class Whole:
    """A program explained as a whole on each paper, whichever entry reached it (one
    too big for disjunctive normal form, or with an OR of ANDs): from its
    ``static_leaves`` if it has them, else by walking it."""

    __slots__ = ("leaves", "program", "rid")

    def __init__(self, program: Program, leaves: StaticLeaves | None) -> None:
        self.program, self.leaves = program, leaves
        self.rid = -1


# How the matches reached through one index entry are explained.
Recipe: TypeAlias = "Fixed | Sides | Whole"


class Explainer:
    """Words and score of the programs one paper matched.

    Caches per paper: the paper's words by token and by index term, each leaf's credit,
    and each program's result (by identity: a ``Matcher`` shares one program object
    among the subscriptions that compiled to the same one, so each distinct query is
    explained once per paper however many people hold it).
    """

    def __init__(self, terms: PaperTerms) -> None:
        self.terms = terms
        self._nudge = UPVOTE_NUDGE * math.log1p(max(terms.upvotes or 0, 0))
        self._forms: dict[int, dict[str, set[str]]] = {}
        self._by_term: dict[int, dict[str, set[str]]] = {}
        # leaf -> its credit when true, _FALSE when not: leaves recur across queries
        self._credits: dict[Program, _Credit] = {}
        # hay -> its tokens sorted, and the words of each, for prefixes
        self._sorted_tokens: dict[int, tuple[list[str], list[set[str]]]] = {}
        self._order: dict[str, tuple[str, str]] = {}  # word -> its place among words
        self._rounded: dict[float, float] = {}
        # id(program) -> (program, words, score). The program is kept so that its id
        # cannot pass to another object while this cache lives.
        self._explained: dict[int, tuple[Program, tuple[str, ...], float]] = {}
        # Words and score by the ``Fixed`` leaves an index entry proved (see Matcher).
        self._by_fixed: dict[Fixed, tuple[tuple[str, ...], float]] = {}

    def match(self, sub_id: int, program: Program) -> Match:
        """The ``Match`` of a subscription whose ``program`` matches the paper."""
        words, score = self.explain(program)
        return new_match(sub_id, words, score)

    def explain(self, program: Program) -> tuple[tuple[str, ...], float]:
        """Words and score of ``program``, which matches the paper; remembered by
        identity, for the other subscriptions sharing the program object."""
        done = self._explained.get(id(program))
        if done is None or done[0] is not program:
            leaves = static_leaves(program)
            result = self.explain_walk(program) if leaves is None else self.explain_static(leaves)
            done = self._explained[id(program)] = (program, *result)
        return done[1], done[2]

    def explain_recipe(self, recipe: Recipe) -> tuple[tuple[str, ...], float]:
        """Words and score of a program the paper reached through an index entry
        explained by ``recipe``."""
        if isinstance(recipe, Fixed):
            return self._explain_fixed(recipe)
        if isinstance(recipe, Sides):
            return self._explain_sides(recipe)
        if recipe.leaves is None:
            return self.explain_walk(recipe.program)
        return self.explain_static(recipe.leaves)

    def _explain_fixed(self, fixed: Fixed) -> tuple[tuple[str, ...], float]:
        """What an entry proved: explained once per paper for every entry sharing it
        (a ``Sides`` whose other sides fail falls back to it)."""
        done = self._by_fixed.get(fixed)
        if done is None:
            leaves = fixed.leaves
            # One leaf (most): its credit is the explanation.
            one = len(leaves) == 2
            done = self._explain_leaf(leaves[0]) if one else self.explain_static(leaves)
            self._by_fixed[fixed] = done
        return done

    def _explain_sides(self, entry: Sides) -> tuple[tuple[str, ...], float]:
        """What the entry proved, unless another side of an OR holds as well; then the
        whole program."""
        credits, keys = self._credits, self.terms.keys
        for leaf in entry.sides:
            credit = credits.get(leaf)
            if credit is None:
                if leaf[0] == KEY and leaf[1] not in keys:
                    continue  # as cheap as remembering it
                true = evaluate(leaf, keys, self.terms)
                credit = credits[leaf] = self._leaf_credit(leaf) if true else _FALSE
            if credit is not _FALSE:
                return self.explain_static(entry.leaves)
        return self._explain_fixed(entry.fixed)

    def _explain_leaf(self, leaf: Program) -> tuple[tuple[str, ...], float]:
        """``explain_static`` of a single true leaf."""
        credit = self._credits.get(leaf)
        if credit is None:
            credit = self._credits[leaf] = self._leaf_credit(leaf)
        return credit[2], self._round(self._nudge + credit[0])

    def explain_walk(self, program: Program) -> tuple[tuple[str, ...], float]:
        """``explain``, for a program whose true leaves only walking it can tell."""
        found: list[Program] = []
        _true_leaves(program, self.terms, found)
        return self.explain_static(tuple(x for leaf in dict.fromkeys(found) for x in (leaf, False)))

    def explain_static(self, leaves: StaticLeaves) -> tuple[tuple[str, ...], float]:
        """Words and score of a matching program from its ``static_leaves``: one pass,
        a dict lookup per leaf once the paper's leaves are known (the hot loop)."""
        credits, keys = self._credits, self.terms.keys
        score = self._nudge
        words: tuple[str, ...] = ()
        more: list[AbstractSet[str]] | None = None
        pairs = iter(leaves)
        for leaf, check in zip(pairs, pairs, strict=True):
            credit = credits.get(leaf)
            if credit is None:  # a leaf of a true program is true unless it is an OR's side
                if check and leaf[0] == KEY and leaf[1] not in keys:
                    continue  # as cheap as remembering it
                true = not check or evaluate(leaf, keys, self.terms)
                credit = credits[leaf] = self._leaf_credit(leaf) if true else _FALSE
            if credit is _FALSE:
                continue
            score += credit[0]
            if not credit[2]:
                continue
            if not words:
                words = credit[2]
            elif more is None:
                more = [frozenset(words), credit[1]]
            else:
                more.append(credit[1])
        if more is not None:  # several parts brought words: merge them
            words = self._sorted(frozenset[str]().union(*more))
        return words, self._round(score)

    def _round(self, score: float) -> float:
        rounded = self._rounded.get(score)
        if rounded is None:  # round() to digits costs more than the rest; scores recur
            rounded = self._rounded[score] = round(score, 3)
        return rounded

    def _leaf_credit(self, leaf: Program) -> _Credit:
        score, words = self._credit(leaf)
        return score, words, self._sorted(words)

    def _sorted(self, words: AbstractSet[str]) -> tuple[str, ...]:
        """``words`` case-insensitively sorted (ties by code point)."""
        if len(words) < 2:  # most leaves: one word as written
            return tuple(words)
        order = self._order
        for w in words:
            if w not in order:
                order[w] = (fold(w), w)
        return tuple(sorted(words, key=order.__getitem__))

    def _credit(self, leaf: Program) -> Credit:
        """Score and surface words of one true leaf."""
        op = leaf[0]
        if op == KEY:
            return self._key_credit(leaf[1])
        if op == ABSTRACT_TERM:
            return ABSTRACT_WEIGHT, self._terms_of(HAY_ABSTRACT).get(leaf[1], _NONE)
        if op not in (PHRASE, PREFIX):
            return FILTER_WEIGHT, frozenset()  # upvotes
        hay, needle = leaf[1], leaf[2]
        if op == PHRASE:  # title or abstract: words from both are highlighted
            words: set[str] = set()
            toks = needle.split()
            for forms in self._parts(hay):
                for tok in toks:
                    found = forms.get(tok)
                    if found:
                        words.update(found)
        else:
            words = self._prefixed(hay, needle[1:])
        if hay == HAY_ANY:
            hay = HAY_TITLE if needle in self.terms.hays[HAY_TITLE] else HAY_ABSTRACT
        return _HAY_WEIGHT[hay], words

    def _key_credit(self, key: object) -> Credit:
        if not isinstance(key, str):
            return FILTER_WEIGHT, frozenset()  # unreachable: pairs are never KEY leaves
        ns, sep, body = key.partition(":")
        if not sep:
            ns, body = "", key
        if ns == "au":
            return AUTHOR_WEIGHT, self._forms_of(HAY_AUTHOR).get(body, _NONE)
        if ns not in _KEY_HAY:
            return FILTER_WEIGHT, _NONE  # cat:, cat*:, src:
        title = self._terms_of(HAY_TITLE).get(body, _NONE)
        if ns:  # ti:
            return TITLE_WEIGHT, title
        abstract = self._terms_of(HAY_ABSTRACT).get(body, _NONE)
        words = title | abstract if title and abstract else title or abstract
        hay = HAY_TITLE if TITLE_NS + body in self.terms.keys else HAY_ABSTRACT
        return _HAY_WEIGHT[hay], words

    def _prefixed(self, hay: int, pre: str) -> set[str]:
        """The words of ``hay`` (title and abstract for ``HAY_ANY``) whose folded token
        starts with ``pre``: the tokens are sorted once per paper, so those are found by
        bisection, next to each other."""
        index = self._sorted_tokens.get(hay)
        if index is None:
            pairs = sorted(
                ((tok, words) for forms in self._parts(hay) for tok, words in forms.items()),
                key=itemgetter(0),
            )
            index = self._sorted_tokens[hay] = ([tok for tok, _ in pairs], [w for _, w in pairs])
        toks, words = index
        found: set[str] = set()
        for i in range(bisect_left(toks, pre), len(toks)):
            if not toks[i].startswith(pre):
                break
            found.update(words[i])
        return found

    def _parts(self, hay: int) -> tuple[dict[str, set[str]], ...]:
        if hay == HAY_ANY:
            return self._forms_of(HAY_TITLE), self._forms_of(HAY_ABSTRACT)
        return (self._forms_of(hay),)

    def _forms_of(self, hay: int) -> dict[str, set[str]]:
        """Folded token → the words as written, in the title, abstract or author names
        (``HAY_ANY`` is looked up in title and abstract: no merged copy is made)."""
        forms = self._forms.get(hay)
        if forms is None:
            t = self.terms
            if hay == HAY_AUTHOR:
                forms = {}
                for author in t.authors:
                    for tok, words in surface_forms(author).items():
                        forms.setdefault(tok, set()).update(words)
            else:
                forms = surface_forms(t.title if hay == HAY_TITLE else t.abstract)
            self._forms[hay] = forms
        return forms

    def _terms_of(self, hay: int) -> dict[str, set[str]]:
        """Index term → the words as written that have it, in the title or the abstract."""
        by_term = self._by_term.get(hay)
        if by_term is None:
            by_term = self._by_term[hay] = {}
            # From the words, not from _forms_of: most papers never need the latter.
            for word in surface_words(
                self.terms.title if hay == HAY_TITLE else self.terms.abstract
            ):
                for term in word_terms(word):
                    by_term.setdefault(term, set()).add(word)
        return by_term


def static_leaves(p: Program) -> StaticLeaves | None:
    """Where the words and score of ``p`` come from on a paper it matches, found once
    rather than per paper: its positive leaves in the order ``_true_leaves`` finds them,
    each once and each followed by whether it needs checking (a side of an OR counts only
    if true; any other positive leaf of a true program is true). None when an OR has an
    AND or an OR as a side: then only walking the program on the paper tells."""
    found: dict[Program, bool] = {}
    stack: list[tuple[Program, bool]] = [(p, False)]
    while stack:
        node, check = stack.pop()
        op = node[0]
        if op == AND and not check:
            stack.extend((child, False) for child in reversed(node[1]))
        elif op == OR and not check:
            stack.extend((child, True) for child in reversed(node[1]))
        elif op in (AND, OR):
            return None
        elif op != NOT:
            found.setdefault(node, check)
    return tuple(x for pair in found.items() for x in pair)


def _true_leaves(p: Program, terms: PaperTerms, out: list[Program]) -> bool:
    """Evaluate ``p``; append to ``out`` the leaves that make it true (none under a NOT)."""
    op = p[0]
    if op == AND:
        mine: list[Program] = []
        for child in p[1]:
            if not _true_leaves(child, terms, mine):
                return False
        out.extend(mine)
        return True
    if op == OR:
        any_true = False
        for child in p[1]:  # every true side counts, for highlighting
            any_true = _true_leaves(child, terms, out) or any_true
        return any_true
    if op == NOT:
        return not evaluate(p[1], terms.keys, terms)
    if evaluate(p, terms.keys, terms):
        out.append(p)
        return True
    return False
