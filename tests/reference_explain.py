"""The straightforward explainer the fast one must agree with: walk each matching
program on the paper, collect its true leaves, and credit each from maps of the whole
paper's words, with no sharing between programs (paperbell's explainer as it was before
programs were shared and leaves planned ahead). Slow on purpose; a test oracle only."""

from __future__ import annotations

import math
import re
import unicodedata

from bot.matching.analysis import (
    HAY_ABSTRACT,
    HAY_ANY,
    HAY_AUTHOR,
    HAY_TITLE,
    TITLE_NS,
    PaperTerms,
    fold,
    term_key,
    tokenize,
)
from bot.matching.explain import (
    ABSTRACT_WEIGHT,
    AUTHOR_WEIGHT,
    FILTER_WEIGHT,
    TITLE_WEIGHT,
    UPVOTE_NUDGE,
)
from bot.matching.program import ABSTRACT_TERM, AND, KEY, NOT, OR, PHRASE, PREFIX, Program, evaluate

_HAY_WEIGHT = {HAY_TITLE: TITLE_WEIGHT, HAY_ABSTRACT: ABSTRACT_WEIGHT, HAY_AUTHOR: AUTHOR_WEIGHT}
_KEY_HAY = {"": HAY_ANY, "ti": HAY_TITLE}

Explained = tuple[int, tuple[str, ...], float]
_WORD = re.compile(r"[^\W_]+")


def reference_explain(sub_id: int, program: Program, terms: PaperTerms) -> Explained:
    """(sub_id, words, score) of ``program``, which matches ``terms``."""
    found: list[Program] = []
    _true_leaves(program, terms, found)
    words: set[str] = set()
    score = UPVOTE_NUDGE * math.log1p(max(terms.upvotes or 0, 0))
    for leaf in dict.fromkeys(found):
        leaf_score, leaf_words = _credit(leaf, terms)
        score += leaf_score
        words |= leaf_words
    return sub_id, tuple(sorted(words, key=lambda w: (fold(w), w))), round(score, 3)


def _credit(leaf: Program, t: PaperTerms) -> tuple[float, set[str]]:
    op = leaf[0]
    if op == KEY:
        return _key_credit(leaf[1], t)
    if op == ABSTRACT_TERM:
        return ABSTRACT_WEIGHT, _by_term(HAY_ABSTRACT, t).get(leaf[1], set())
    if op not in (PHRASE, PREFIX):
        return FILTER_WEIGHT, set()
    hay, needle = leaf[1], leaf[2]
    forms = _forms(hay, t)
    if op == PHRASE:
        words = {w for tok in needle.split() for w in forms.get(tok, ())}
    else:
        words = {w for tok, ws in forms.items() if tok.startswith(needle[1:]) for w in ws}
    if hay == HAY_ANY:
        hay = HAY_TITLE if needle in t.hays[HAY_TITLE] else HAY_ABSTRACT
    return _HAY_WEIGHT[hay], words


def _key_credit(key: str, t: PaperTerms) -> tuple[float, set[str]]:
    ns, sep, body = key.partition(":")
    if not sep:
        ns, body = "", key
    if ns == "au":
        return AUTHOR_WEIGHT, _forms(HAY_AUTHOR, t).get(body, set())
    if ns not in _KEY_HAY:
        return FILTER_WEIGHT, set()
    hay = _KEY_HAY[ns]
    words = _by_term(hay, t).get(body, set())
    if hay == HAY_ANY:
        hay = HAY_TITLE if TITLE_NS + body in t.keys else HAY_ABSTRACT
    return _HAY_WEIGHT[hay], words


def _forms(hay: int, t: PaperTerms) -> dict[str, set[str]]:
    texts = {HAY_TITLE: [t.title], HAY_ABSTRACT: [t.abstract], HAY_AUTHOR: list(t.authors)}
    out: dict[str, set[str]] = {}
    for text in texts.get(hay, [t.title, t.abstract]):
        for word in _WORD.findall(unicodedata.normalize("NFC", text)):
            for tok in tokenize(fold(word)):
                out.setdefault(tok, set()).add(word)
    return out


def _by_term(hay: int, t: PaperTerms) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for tok, words in _forms(hay, t).items():
        out.setdefault(term_key(tok), set()).update(words)
    return out


def _true_leaves(p: Program, terms: PaperTerms, out: list[Program]) -> bool:
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
        for child in p[1]:
            any_true = _true_leaves(child, terms, out) or any_true
        return any_true
    if op == NOT:
        return not evaluate(p[1], terms.keys, terms)
    if evaluate(p, terms.keys, terms):
        out.append(p)
        return True
    return False
