"""Match papers against many subscriptions at once: a presearcher, as in Lucene's Monitor.

Each subscription is compiled once (``bot.matching.program``) into a small program and
planned into index entries: for each conjunction of its disjunctive normal form, a path
of at most three keys every match must hold, rarest first, and what is left to verify.
``bot.matching.presearcher`` keeps the paths in a trie and walks it per paper: a paper is
analysed once, its keys are intersected with the trie's, and only the subscriptions at
the nodes reached are settled, most by the path alone. So the cost follows the paper's
words and its hits, not the number of subscriptions. A query whose only positive part is
a filter (``cat:cs.LG``, ``source:hf``) is indexed by that value; one with nothing to
index (``upvotes:>=50``) is checked for every paper. ``add`` and ``remove`` edit the trie
in place; no rebuild.

Equal subscriptions (many people follow ``diffusion`` or ``cat:cs.LG``) share one compiled
program, so ``match_terms`` explains (words and score, ``bot.matching.explain``) each
distinct program once per paper.

Which key is "rarest" comes from ``key_weights`` (share of papers holding each key, e.g.
``bot.matching.analysis.key_frequencies`` over recent papers), else from word length. It changes
speed, never results.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Container, Iterable, Mapping
from typing import Any

from bot.matching.analysis import Key, PaperTerms, analyze_paper, with_likes
from bot.matching.explain import Explainer, Match, static_leaves
from bot.matching.presearcher import PathIndex
from bot.matching.program import Program, compile_query, evaluate, plan
from bot.matching.query.ast import Query
from bot.models import Paper

__all__ = ["Match", "Matcher"]

_tuple_new: Any = tuple.__new__  # builds a Match (a named tuple) without its __new__


def _length_weight(key: Key) -> float:
    if isinstance(key, tuple):
        return 0.5 / (2 + len(key[0]) + len(key[1]))  # two words together: rare
    ns, _, body = key.rpartition(":")
    if ns in ("cat", "cat*", "src"):
        return 0.5  # few distinct values: assume common
    return 1.0 / (1 + len(body))


class _Compiled:
    """One distinct compiled query, shared by every subscription that compiles to it
    (many people subscribe to ``diffusion`` or ``cat:cs.LG``)."""

    __slots__ = ("leaves", "program", "users")

    def __init__(self, program: Program) -> None:
        self.program = program
        self.leaves = static_leaves(program)  # what explaining a match needs, if fixed
        self.users = 0


class Matcher:
    """Subscriptions compiled once and indexed by their terms; papers matched in bulk."""

    def __init__(self, key_weights: Mapping[Key, float] | None = None) -> None:
        """``key_weights``: share of papers holding each key; keys it lacks count as rare.
        It must not change while the matcher lives: ``remove`` retraces ``add``'s paths."""
        self._subs: dict[int, _Compiled] = {}
        # One shared object per distinct program: the index and the explainer see the
        # same one, so a paper explains each distinct query once.
        self._shared: dict[Program, _Compiled] = {}
        self._index = PathIndex()
        weights = key_weights
        self._weight = _length_weight if weights is None else lambda k: weights.get(k, 0.0)

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription; a ``sub_id`` already present is replaced."""
        self.remove(sub_id)
        program = compile_query(query)
        compiled = self._shared.get(program)
        if compiled is None:
            compiled = self._shared[program] = _Compiled(program)
        compiled.users += 1
        for entry in plan(compiled.program, self._weight):
            self._index.put(sub_id, entry)
        self._subs[sub_id] = compiled

    def remove(self, sub_id: int) -> bool:
        """Forget a subscription; False if it was not there."""
        compiled = self._subs.pop(sub_id, None)
        if compiled is None:
            return False
        for entry in plan(compiled.program, self._weight):
            self._index.drop(sub_id, entry)
        compiled.users -= 1
        if not compiled.users:
            del self._shared[compiled.program]
        return True

    def match(self, paper: Paper, likes: Collection[str] = ()) -> list[Match]:
        """``likes``: the stored papers ``paper`` is similar to (for ``like:``)."""
        return self.match_terms(with_likes(analyze_paper(paper), likes))

    def match_terms(self, terms: PaperTerms, only: Container[int] | None = None) -> list[Match]:
        """Every subscription ``terms`` matches, by ``sub_id``, with words and score;
        ``only``: just these. The match step's path: each distinct program is explained
        once, and each hit costs a dict lookup and a tuple."""
        found = self.match_ids(terms)
        ids = [sid for sid in found if sid in only] if only is not None else found
        if not ids:
            return []
        explainer = Explainer(terms)
        subs = self._subs
        done: dict[_Compiled, tuple[tuple[str, ...], float]] = {}
        out: list[Match] = []
        for sid in sorted(ids):  # a plain loop: about a microsecond a hit is the budget
            compiled = subs[sid]
            result = done.get(compiled)
            if result is None:
                leaves = compiled.leaves
                result = done[compiled] = (
                    explainer.explain_walk(compiled.program)
                    if leaves is None
                    else explainer.explain_static(leaves)
                )
            out.append(_tuple_new(Match, (sid, result[0], result[1])))
        return out

    def match_ids(self, terms: PaperTerms) -> array[int]:
        """The ids of the subscriptions ``terms`` matches, each once: the fast path, in no
        particular order (sorting thousands of hits would cost more than finding them)."""
        return self._index.hits(terms)

    def explain(self, sub_id: int, terms: PaperTerms) -> Match | None:
        """The ``Match`` of one subscription, or None if it does not match."""
        program = self._subs[sub_id].program
        if not evaluate(program, terms.keys, terms):
            return None
        return Explainer(terms).match(sub_id, program)

    def programs(self) -> Iterable[tuple[int, Program]]:
        """Every compiled subscription (for checking them all, e.g. in a benchmark)."""
        return ((sid, compiled.program) for sid, compiled in self._subs.items())
