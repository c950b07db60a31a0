"""What a match is made of: the words to highlight and a score, computed per paper.

Only for the subscriptions a paper matched, after the presearcher found them. One
``Explainer`` per paper caches, per query leaf, the paper words it stands for, so that
thousands of matches of the same paper share the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.matching.analysis import (
    HAY_ABSTRACT,
    HAY_ANY,
    HAY_AUTHOR,
    HAY_TITLE,
    TITLE_NS,
    PaperTerms,
    fold,
    surface_forms,
    term_key,
)
from bot.matching.program import ABSTRACT_TERM, AND, KEY, NOT, OR, PHRASE, PREFIX, Program, evaluate

TITLE_WEIGHT, ABSTRACT_WEIGHT, AUTHOR_WEIGHT, FILTER_WEIGHT = 2.0, 1.0, 1.5, 0.5
UPVOTE_NUDGE = 0.1
_HAY_WEIGHT = {HAY_TITLE: TITLE_WEIGHT, HAY_ABSTRACT: ABSTRACT_WEIGHT, HAY_AUTHOR: AUTHOR_WEIGHT}
_KEY_HAY = {"": HAY_ANY, "ti": HAY_TITLE}

Credit = tuple[float, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Match:
    """One subscription matching one paper.

    ``matched_words``: the words of the paper, as written in its LaTeX-folded title,
    abstract or author names (``Transformers``, ``LLMs``, ``Gödel``), that made the positive
    parts of the query true, sorted case-insensitively; highlight each as a whole word.
    Filters (``cat:``, ``source:``, ``upvotes:``) add no words. ``score``: 2 per matched
    part found in the title, 1.5 in author names, 1 in the abstract only, 0.5 per
    filter, plus 0.1·ln(1+upvotes); higher is a better match, for ordering a digest.
    """

    sub_id: int
    matched_words: tuple[str, ...]
    score: float


class Explainer:
    """Builds ``Match`` values for one paper."""

    def __init__(self, terms: PaperTerms) -> None:
        self.terms = terms
        self._nudge = UPVOTE_NUDGE * math.log1p(max(terms.upvotes or 0, 0))
        self._forms: dict[int, dict[str, set[str]]] = {}
        self._by_term: dict[int, dict[str, set[str]]] = {}
        self._credits: dict[Program, Credit] = {}

    def match(self, sub_id: int, program: Program) -> Match:
        found: list[Program] = []
        _true_leaves(program, self.terms, found)
        words: set[str] = set()
        score = self._nudge
        for leaf in dict.fromkeys(found):
            credit = self._credits.get(leaf)
            if credit is None:
                credit = self._credits[leaf] = self._credit(leaf)
            score += credit[0]
            words |= credit[1]
        return Match(sub_id, tuple(sorted(words, key=lambda w: (fold(w), w))), round(score, 3))

    def _credit(self, leaf: Program) -> Credit:
        """Score and surface words of one true leaf."""
        op = leaf[0]
        if op == KEY:
            return self._key_credit(leaf[1])
        if op == ABSTRACT_TERM:
            return ABSTRACT_WEIGHT, frozenset(self._terms_of(HAY_ABSTRACT).get(leaf[1], ()))
        if op not in (PHRASE, PREFIX):
            return FILTER_WEIGHT, frozenset()  # upvotes
        hay, needle = leaf[1], leaf[2]
        forms = self._forms_of(hay)  # title or abstract: words from both are highlighted
        if op == PHRASE:
            words = {w for tok in needle.split() for w in forms.get(tok, ())}
        else:
            words = {w for tok, ws in forms.items() if tok.startswith(needle[1:]) for w in ws}
        if hay == HAY_ANY:
            hay = HAY_TITLE if needle in self.terms.hays[HAY_TITLE] else HAY_ABSTRACT
        return _HAY_WEIGHT[hay], frozenset(words)

    def _key_credit(self, key: object) -> Credit:
        if not isinstance(key, str):
            return FILTER_WEIGHT, frozenset()  # unreachable: pairs are never KEY leaves
        ns, sep, body = key.partition(":")
        if not sep:
            ns, body = "", key
        if ns == "au":
            return AUTHOR_WEIGHT, frozenset(self._forms_of(HAY_AUTHOR).get(body, ()))
        if ns not in _KEY_HAY:
            return FILTER_WEIGHT, frozenset()  # cat:, cat*:, src:
        hay = _KEY_HAY[ns]
        words = frozenset(self._terms_of(hay).get(body, ()))
        if hay == HAY_ANY:
            hay = HAY_TITLE if TITLE_NS + body in self.terms.keys else HAY_ABSTRACT
        return _HAY_WEIGHT[hay], words

    def _forms_of(self, hay: int) -> dict[str, set[str]]:
        """Folded token → the words as written, in the texts behind haystack ``hay``."""
        if hay not in self._forms:
            t = self.terms
            texts = {
                HAY_TITLE: [t.title],
                HAY_ABSTRACT: [t.abstract],
                HAY_AUTHOR: list(t.authors),
            }.get(hay, [t.title, t.abstract])
            merged: dict[str, set[str]] = {}
            for text in texts:
                for tok, words in surface_forms(text).items():
                    merged.setdefault(tok, set()).update(words)
            self._forms[hay] = merged
        return self._forms[hay]

    def _terms_of(self, hay: int) -> dict[str, set[str]]:
        """Index term → the words as written that have it."""
        if hay not in self._by_term:
            merged: dict[str, set[str]] = {}
            for tok, words in self._forms_of(hay).items():
                merged.setdefault(term_key(tok), set()).update(words)
            self._by_term[hay] = merged
        return self._by_term[hay]


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
