"""Match papers against many subscriptions at once: a presearcher, as in Lucene's Monitor.

Each subscription is compiled once (``bot.matching.program``) into a small program and
planned into index entries: for each conjunction of its disjunctive normal form, a path
of at most three keys every match must hold, rarest first, and what is left to verify.
``bot.matching.presearcher`` keeps the paths in a trie and walks it per paper: a paper is
analysed once, its keys are intersected with the trie's, and only the programs at the
nodes reached are settled, most by the path alone. So the cost follows the paper's
words and its hits, not the number of subscriptions. A query whose only positive part is
a filter (``cat:cs.LG``, ``source:hf``) is indexed by that value; one with nothing to
index (``upvotes:>=50``) is checked for every paper. ``add`` and ``remove`` edit the trie
in place; no rebuild.

Equal subscriptions (many people follow ``diffusion`` or ``cat:cs.LG``) share one compiled
program, indexed once: the index finds distinct programs, each with the entry it was
reached through, and ``match_groups`` hands back each program's subscriptions as one
tuple with their words and score (``bot.matching.explain``). The entry tells which
leaves hold: those its conjunction proved, plus any other side of an OR that holds too.
Entries that proved the same leaves (``diffusion``, and the last side of ``flow OR
diffusion``) share one explanation per paper, so the cost per program reached is a dict
lookup or two, and a paper's hundreds of programs come to some 120 distinct results.

Which key is "rarest" comes from ``key_weights`` (share of papers holding each key, e.g.
``bot.matching.analysis.key_frequencies`` over recent papers), else from word length. It changes
speed, never results.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from typing import TypeAlias

import numpy as np

from bot.matching.analysis import Key, PaperTerms, analyze_paper, with_likes
from bot.matching.explain import (
    Explainer,
    Fixed,
    Match,
    Sides,
    StaticLeaves,
    new_match,
    static_leaves,
)
from bot.matching.presearcher import IDS, PathIndex
from bot.matching.program import (
    KEY,
    MAX_CONJUNCTIONS,
    Entry,
    Program,
    compile_query,
    evaluate,
    plan,
    plan_with_leaves,
)
from bot.matching.query.ast import Query
from bot.models import Paper

__all__ = ["Group", "Match", "Matcher"]

# The index holds one int token per entry of a distinct program: the entry's place among
# the program's entries, and who holds it. A program with one holder is indexed by
# ``holder << _ENTRY_BITS | place``, one with more by ``~(slot << _ENTRY_BITS | place)``
# (negative: told apart by the sign). Places past the last bit pattern share it: only
# programs too big to split into conjunctions have that many entries.
_ENTRY_BITS = (MAX_CONJUNCTIONS - 1).bit_length()
_LAST_ENTRY = (1 << _ENTRY_BITS) - 1
_SOLE_LIMIT = 1 << (62 - _ENTRY_BITS)


def _length_weight(key: Key) -> float:
    if isinstance(key, tuple):
        return 0.5 / (2 + len(key[0]) + len(key[1]))  # two words together: rare
    ns, _, body = key.rpartition(":")
    if ns in ("cat", "cat*", "src"):
        return 0.5  # few distinct values: assume common
    return 1.0 / (1 + len(body))


_NO_IDS = array(IDS)  # held by no one (never edited)


class _Compiled:
    """One distinct compiled query, shared by every subscription that compiles to it
    (many people subscribe to ``diffusion`` or ``cat:cs.LG``): a paper reaches it once,
    whoever holds it."""

    __slots__ = ("ids", "leaves", "program", "recipes", "slot")

    def __init__(self, program: Program) -> None:
        self.program = program
        self.leaves = static_leaves(program)  # what explaining a match needs, if fixed
        self.slot = -1  # its place in Matcher._slots while indexed by slot
        # The subscriptions holding it: the one holder's id (it is in the tokens, so
        # no array is kept), else an array (match_ids copies it by memcpy), replaced
        # on each change and never edited, as match_groups hands it out.
        self.ids: int | array[int] = _NO_IDS
        # How to explain a match through its index entry, or each of them (see
        # ``_explain_entries``); None: from ``leaves``, or by a walk.
        self.recipes: Fixed | tuple[Fixed | Sides, ...] | None = None


_VACANT = _Compiled((KEY, ""))  # a freed slot: the index holds it no more


# Subscriptions one paper matched through the same query, with its words and score
# (as in ``Match``). The ids may be the matcher's own array: read them, do not edit.
Group: TypeAlias = "tuple[Sequence[int], tuple[str, ...], float]"


def _holders(compiled: _Compiled) -> tuple[int, ...]:
    ids = compiled.ids
    return (ids,) if isinstance(ids, int) else tuple(ids)


class Matcher:
    """Subscriptions compiled once and indexed by their terms; papers matched in bulk."""

    def __init__(self, key_weights: Mapping[Key, float] | None = None) -> None:
        """``key_weights``: share of papers holding each key; keys it lacks count as rare.
        It must not change while the matcher lives: ``remove`` retraces ``add``'s paths."""
        self._subs: dict[int, _Compiled] = {}
        self._shared: dict[Program, _Compiled] = {}  # one object per distinct program
        self._slots: list[_Compiled] = []  # programs two or more subscriptions hold
        self._free: list[int] = []  # slots to reuse
        self._fixed: dict[StaticLeaves, Fixed] = {}  # one per distinct set of proved leaves
        self._index = PathIndex()
        weights = key_weights
        self._weight = _length_weight if weights is None else lambda k: weights.get(k, 0.0)

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription; a ``sub_id`` already present is replaced. A query two
        others hold already costs an id in its array, nothing in the index."""
        self.remove(sub_id)
        program = compile_query(query)
        compiled = self._shared.get(program)
        entries = None
        if compiled is None:
            compiled = self._shared[program] = _Compiled(program)
            entries = self._explain_entries(compiled)
        self._hold(compiled, (*_holders(compiled), sub_id), entries)
        self._subs[sub_id] = compiled

    def remove(self, sub_id: int) -> bool:
        """Forget a subscription; False if it was not there."""
        compiled = self._subs.pop(sub_id, None)
        if compiled is None:
            return False
        self._hold(compiled, tuple(s for s in _holders(compiled) if s != sub_id))
        if compiled.ids is _NO_IDS:  # its last holder: forget the program
            del self._shared[compiled.program]
            recipes = compiled.recipes
            for recipe in (recipes,) if isinstance(recipes, Fixed) else recipes or ():
                fixed = recipe.fixed if isinstance(recipe, Sides) else recipe
                fixed.users -= 1
                if not fixed.users:
                    del self._fixed[fixed.leaves]
        return True

    def _hold(
        self, compiled: _Compiled, holders: tuple[int, ...], entries: list[Entry] | None = None
    ) -> None:
        """Give ``compiled`` these holders, re-indexing it if its tokens change: a
        program with one holder is indexed by the holder's id, so ``match_ids`` reads
        most ids straight from the index; one with more, by a slot. ``entries``: its
        plan, when the caller has it."""
        sole = len(holders) == 1 and 0 <= holders[0] < _SOLE_LIMIT
        ids = holders[0] if sole else array(IDS, holders) if holders else _NO_IDS
        was = compiled.ids
        if compiled.slot >= 0 and not sole and ids is not _NO_IDS:
            compiled.ids = ids  # still under the same slot
            return
        if entries is None:  # one plan for taking it out and putting it back
            entries = plan(compiled.program, self._weight)
        if was is not _NO_IDS:
            self._place(compiled, put=False, entries=entries)
        compiled.ids = ids
        if ids is not _NO_IDS:
            self._place(compiled, put=True, entries=entries)

    def _place(self, compiled: _Compiled, *, put: bool, entries: list[Entry]) -> None:
        sole = compiled.ids if isinstance(compiled.ids, int) else None
        if sole is None and put:
            compiled.slot = self._free.pop() if self._free else len(self._slots)
            if compiled.slot == len(self._slots):
                self._slots.append(compiled)
            else:
                self._slots[compiled.slot] = compiled
        for i, entry in enumerate(entries):
            place = min(i, _LAST_ENTRY)
            token = (
                sole << _ENTRY_BITS | place
                if sole is not None
                else ~(compiled.slot << _ENTRY_BITS | place)
            )
            (self._index.put if put else self._index.drop)(token, entry)
        if sole is None and not put:
            self._slots[compiled.slot] = _VACANT
            self._free.append(compiled.slot)
            compiled.slot = -1

    def _explain_entries(self, compiled: _Compiled) -> list[Entry]:
        """How to explain a match through each entry: the leaves it proved, shared, and
        the OR sides that may hold as well. A side found in no later conjunction does
        not: the paper failed the earlier ones, and this entry proves the rest of them.
        Returns the plan, for indexing."""
        leaves = compiled.leaves
        entries, proved = plan_with_leaves(compiled.program, self._weight)
        if leaves is None or proved is None:
            return entries
        sides = [leaf for leaf, check in zip(leaves[::2], leaves[1::2], strict=True) if check]
        out: list[Fixed | Sides] = []
        for mine, later in proved:
            fixed = Fixed(mine, leaves)
            fixed = self._fixed.setdefault(fixed.leaves, fixed)
            fixed.users += 1
            maybe = tuple(s for s in sides if s in later and s not in mine)
            out.append(Sides(fixed, maybe, leaves) if maybe else fixed)
        # Most programs have one entry, that proves all they hold: no tuple for them.
        compiled.recipes = out[0] if len(out) == 1 and isinstance(out[0], Fixed) else tuple(out)
        return entries

    def match(self, paper: Paper, likes: Collection[str] = ()) -> list[Match]:
        """``likes``: the stored papers ``paper`` is similar to (for ``like:``)."""
        return self.match_terms(with_likes(analyze_paper(paper), likes))

    def match_groups(self, terms: PaperTerms) -> list[Group]:
        """Every subscription ``terms`` matches, with words and score, grouped by query:
        the match step's path. Each distinct query is reached once and explained once,
        and its subscriptions come as one array, so the cost follows the distinct
        queries a paper matches, not the people who hold them."""
        reached = self._index.hits(terms)
        if not reached:
            return []
        explainer = Explainer(terms)
        known = explainer.by_entry
        subs, slots = self._subs, self._slots
        out: list[Group] = []
        for reached_as in reached:  # a plain loop: a microsecond a query is the budget
            if reached_as >= 0:
                token = reached_as
                ids: Sequence[int] = (token >> _ENTRY_BITS,)
                c = subs[ids[0]]
            else:
                token = ~reached_as
                c = slots[token >> _ENTRY_BITS]
                ids = c.ids  # type: ignore[assignment]  # an array when in a slot
            recipes = c.recipes
            if recipes is not None:
                entry = recipes if isinstance(recipes, Fixed) else recipes[token & _LAST_ENTRY]
                result = known.get(entry) or explainer.explain_entry(entry)
            elif c.leaves is not None:
                result = explainer.explain_static(c.leaves)
            else:
                result = explainer.explain_walk(c.program)
            out.append((ids, *result))
        return out

    def match_terms(self, terms: PaperTerms, only: Container[int] | None = None) -> list[Match]:
        """Every subscription ``terms`` matches, by ``sub_id``, with words and score;
        ``only``: just these."""
        out = [
            new_match(sid, words, score)
            for ids, words, score in self.match_groups(terms)
            for sid in ids
            if only is None or sid in only
        ]
        out.sort()  # by sub_id: ids are unique, so words and scores are never compared
        return out

    def match_ids(self, terms: PaperTerms) -> array[int]:
        """The ids of the subscriptions ``terms`` matches, each once: the fast path, in no
        particular order (sorting thousands of hits would cost more than finding them)."""
        tokens = np.frombuffer(self._index.hits(terms), dtype=np.int64)
        shared = tokens < 0  # the rest are a holder's id, shifted: one vector op
        found = array(IDS, (tokens[~shared] >> _ENTRY_BITS).tobytes())
        if shared.any():
            slots = self._slots
            for slot in (~tokens[shared] >> _ENTRY_BITS).tolist():
                found.extend(slots[slot].ids)  # a slot's program has an array
        return found

    def explain(self, sub_id: int, terms: PaperTerms) -> Match | None:
        """The ``Match`` of one subscription, or None if it does not match."""
        program = self._subs[sub_id].program
        if not evaluate(program, terms.keys, terms):
            return None
        return Explainer(terms).match(sub_id, program)

    def programs(self) -> Iterable[tuple[int, Program]]:
        """Every compiled subscription (for checking them all, e.g. in a benchmark)."""
        return ((sid, compiled.program) for sid, compiled in self._subs.items())
