"""Match papers against many subscriptions at once: a presearcher, as in Lucene's Monitor.

Each subscription is compiled once (``bot.matcher_program``) and indexed under a path of
at most two keys that every matching paper must hold, rarest first, in a two-level trie:
``root[k1]`` holds subscriptions proven by ``k1`` alone, ``root[k1].next[k2]`` those
needing both, and each node keeps the subscriptions that still need checking (a NOT, a
phrase, a third word) with their residual program. A paper is analysed once; its key set
is intersected with the trie's keys, so the cost follows the paper's words and its hits,
not the number of subscriptions. Subscriptions with no indexable term (``upvotes:>=50``)
are checked for every paper. ``add`` and ``remove`` edit the trie in place.

Which key is "rarest" comes from ``key_weights`` (share of papers holding each key, e.g.
``bot.analysis.key_frequencies`` over recent papers), else from word length. It only
affects speed, never results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.analysis import (
    HAY_ABSTRACT,
    HAY_ANY,
    HAY_AUTHOR,
    HAY_TITLE,
    TITLE_NS,
    Key,
    PaperTerms,
    analyze_paper,
    fold,
    surface_forms,
    term_key,
)
from bot.matcher_index import PathIndex
from bot.matcher_program import (
    ABSTRACT_TERM,
    AND,
    KEY,
    NOT,
    OR,
    PHRASE,
    PREFIX,
    Program,
    compile_query,
    evaluate,
    plan,
)
from bot.models import Paper
from bot.query.ast import Query

TITLE_WEIGHT, ABSTRACT_WEIGHT, AUTHOR_WEIGHT, FILTER_WEIGHT = 2.0, 1.0, 1.5, 0.5
UPVOTE_NUDGE = 0.1


@dataclass(frozen=True, slots=True)
class Match:
    """One subscription matching one paper.

    ``matched_words``: the words of the paper, as written in its LaTeX-folded title,
    abstract or author names (``Transformers``, ``LLMs``, ``Gödel``), that made the positive
    parts of the query true; highlight each as a whole word. Filters (``cat:``,
    ``source:``, ``upvotes:``) add no words. ``score``: 2 per matched part found in the
    title, 1.5 in author names, 1 in the abstract, 0.5 per filter, plus
    0.1·ln(1+upvotes); higher is a better match, for ordering a digest.
    """

    sub_id: int
    matched_words: tuple[str, ...]
    score: float


def _length_weight(key: Key) -> float:
    if isinstance(key, tuple):
        return 0.5 / (2 + len(key[0]) + len(key[1]))  # two words together: rare
    ns, _, body = key.rpartition(":")
    if ns in ("cat", "cat*", "src"):
        return 0.5  # few distinct values: assume common
    return 1.0 / (1 + len(body))


class Matcher:
    """Subscriptions compiled once and indexed by their terms; papers matched in bulk."""

    def __init__(self, key_weights: Mapping[Key, float] | None = None) -> None:
        self._programs: dict[int, Program] = {}
        self._index = PathIndex()
        weights = dict(key_weights) if key_weights is not None else None
        # Fixed for the matcher's life: remove() must retrace the paths add() took.
        self._weight = _length_weight if weights is None else lambda k: weights.get(k, 0.0)

    def __len__(self) -> int:
        return len(self._programs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._programs

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription; a ``sub_id`` already present is replaced."""
        self.remove(sub_id)
        program = compile_query(query)
        entries = plan(program, self._weight)
        for entry in entries:
            self._index.put(sub_id, entry, shared=len(entries) > 1)
        self._programs[sub_id] = program

    def remove(self, sub_id: int) -> bool:
        """Forget a subscription; False if it was not there."""
        program = self._programs.pop(sub_id, None)
        if program is None:
            return False
        entries = plan(program, self._weight)
        for entry in entries:
            self._index.drop(sub_id, entry, shared=len(entries) > 1)
        return True

    def match(self, paper: Paper) -> list[Match]:
        return self.match_terms(analyze_paper(paper))

    def match_terms(self, terms: PaperTerms) -> list[Match]:
        """Every subscription ``terms`` matches, by ``sub_id``, with words and score."""
        ids = self.match_ids(terms)
        if not ids:
            return []
        surfaces = _Surfaces(terms)
        return [_explain(sid, self._programs[sid], terms, surfaces) for sid in sorted(ids)]

    def match_ids(self, terms: PaperTerms) -> list[int]:
        """The ids of the subscriptions ``terms`` matches, each once: the fast path, in no
        particular order (sorting thousands of hits would cost more than finding them)."""
        return self._index.hits(terms)

    def explain(self, sub_id: int, terms: PaperTerms) -> Match | None:
        """The ``Match`` of one subscription, or None if it does not match."""
        program = self._programs[sub_id]
        if not evaluate(program, terms):
            return None
        return _explain(sub_id, program, terms, _Surfaces(terms))

    def programs(self) -> Iterable[tuple[int, Program]]:
        """Every compiled subscription (for checking them all, e.g. in a benchmark)."""
        return self._programs.items()


class _Surfaces:
    """Folded token → words as written, per field; built on first use for one paper."""

    def __init__(self, terms: PaperTerms) -> None:
        self.terms = terms
        self._maps: dict[int, dict[str, set[str]]] = {}

    def of(self, hay: int) -> dict[str, set[str]]:
        if hay not in self._maps:
            texts = {
                HAY_TITLE: [self.terms.title],
                HAY_ABSTRACT: [self.terms.abstract],
                HAY_AUTHOR: list(self.terms.authors),
            }.get(hay, [self.terms.title, self.terms.abstract])
            merged: dict[str, set[str]] = {}
            for text in texts:
                for tok, words in surface_forms(text).items():
                    merged.setdefault(tok, set()).update(words)
            self._maps[hay] = merged
        return self._maps[hay]


def _explain(sub_id: int, program: Program, terms: PaperTerms, surfaces: _Surfaces) -> Match:
    found: list[Program] = []
    _true_leaves(program, terms, found)
    words: set[str] = set()
    score = 0.0
    for leaf in dict.fromkeys(found):
        weight, leaf_words = _leaf_credit(leaf, terms, surfaces)
        score += weight
        words.update(leaf_words)
    score += UPVOTE_NUDGE * math.log1p(max(terms.upvotes or 0, 0))
    return Match(sub_id, tuple(sorted(words, key=lambda w: (fold(w), w))), round(score, 3))


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
        return not evaluate(p[1], terms)
    if evaluate(p, terms):
        out.append(p)
        return True
    return False


def _leaf_credit(leaf: Program, terms: PaperTerms, surfaces: _Surfaces) -> tuple[float, set[str]]:
    """Score and surface words of one true leaf."""
    if leaf[0] == KEY:
        return _key_credit(leaf[1], terms, surfaces)
    if leaf[0] == ABSTRACT_TERM:
        return _key_credit("ab:" + leaf[1], terms, surfaces)
    if leaf[0] not in (PHRASE, PREFIX):
        return FILTER_WEIGHT, set()  # upvotes
    hay, needle = leaf[1], leaf[2]
    forms = surfaces.of(hay)  # for title-or-abstract: words from both, all highlighted
    if hay == HAY_ANY:
        hay = HAY_TITLE if needle in terms.hays[HAY_TITLE] else HAY_ABSTRACT
    if leaf[0] == PHRASE:
        wanted = needle.split()
        words = {w for tok in wanted for w in forms.get(tok, ())}
    else:
        prefix = needle[1:]
        words = {w for tok, ws in forms.items() if tok.startswith(prefix) for w in ws}
    return _HAY_WEIGHT[hay], words


_HAY_WEIGHT = {HAY_TITLE: TITLE_WEIGHT, HAY_ABSTRACT: ABSTRACT_WEIGHT, HAY_AUTHOR: AUTHOR_WEIGHT}
_KEY_HAY = {"": HAY_ANY, "ti": HAY_TITLE, "ab": HAY_ABSTRACT}


def _key_credit(key: str, terms: PaperTerms, surfaces: _Surfaces) -> tuple[float, set[str]]:
    ns, sep, body = key.partition(":")
    if not sep:
        ns, body = "", key
    if ns == "au":
        return AUTHOR_WEIGHT, set(surfaces.of(HAY_AUTHOR).get(body, ()))
    if ns not in _KEY_HAY:
        return FILTER_WEIGHT, set()  # cat:, cat*:, src:
    hay = _KEY_HAY[ns]
    forms = surfaces.of(hay)
    words = {w for tok, ws in forms.items() if term_key(tok) == body for w in ws}
    if hay == HAY_ANY:
        hay = HAY_TITLE if TITLE_NS + body in terms.keys else HAY_ABSTRACT
    return _HAY_WEIGHT[hay], words
