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
in place; the numpy snapshot the walk reads is retaken only after many changes.

Equal subscriptions (many people follow ``diffusion`` or ``cat:cs.LG``) share one compiled
program, indexed once. The index hands back the numbers of the entries a paper reached;
numpy columns (``bot.matching.entries``) give each entry's holders and its recipe, how a
match through it is explained (``bot.matching.explain``): the leaves its conjunction
proved, shared by every entry that proved the same ones (``diffusion``, and the last
side of ``flow OR diffusion``), unless another side of an OR holds too. ``match_groups``
sorts the reached entries by recipe and explains each recipe once, for all its
subscriptions: at 100k subscriptions a paper reaches some 600 programs, which come to
some 250 recipes.

Which key is "rarest" comes from ``key_weights`` (share of papers holding each key, e.g.
``bot.matching.analysis.key_frequencies`` over recent papers), else from word length. It changes
speed, never results.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from typing import TypeAlias, TypeVar

import numpy as np

from bot.matching.analysis import Key, PaperTerms, analyze_paper, with_likes
from bot.matching.entries import Column, Ints, KeyNumbers, Numbers
from bot.matching.explain import (
    Explainer,
    Fixed,
    Match,
    Recipe,
    Sides,
    StaticLeaves,
    Whole,
    new_match,
    static_leaves,
)
from bot.matching.presearcher import IDS, PathIndex
from bot.matching.program import (
    KEY,
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

_R = TypeVar("_R", Fixed, Sides, Whole)

_NO_HOLDER = np.iinfo(np.int64).min  # an entry number not in use
_SIDE_KEYS = 2  # OR sides settled by numpy, per entry: most have one


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

    __slots__ = ("eids", "ids", "program", "recipes", "slot", "whole")

    def __init__(self, program: Program) -> None:
        self.program = program
        self.slot = -1  # its place in Matcher._slots while two or more hold it
        # The subscriptions holding it: the one holder's id (it is in the entries'
        # holder column, so no array is kept), else an array (match_ids copies it by
        # memcpy), replaced on each change and never edited, as match_groups hands it out.
        self.ids: int | array[int] = _NO_IDS
        # The numbers of its index entries, and how each explains a match: for one
        # entry (most programs), the number and the recipe themselves, not in a tuple.
        self.eids: int | tuple[int, ...] = ()
        self.recipes: Recipe | tuple[Recipe, ...] = ()
        self.whole: Whole | None = None  # the program as a whole, if a recipe uses it


_VACANT = _Compiled((KEY, ""))  # a freed slot


# Subscriptions one paper matched that share one explanation (one query, or queries
# proving the same words, as ``diffusion`` and ``flow OR diffusion``), with its words
# and score (as in ``Match``). The ids may be the matcher's own array: do not edit.
Group: TypeAlias = "tuple[Sequence[int], tuple[str, ...], float]"


def _eids_of(compiled: _Compiled) -> tuple[int, ...]:
    eids = compiled.eids
    return eids if isinstance(eids, tuple) else (eids,)


def _recipes_of(compiled: _Compiled) -> tuple[Recipe, ...]:
    recipes = compiled.recipes
    return recipes if isinstance(recipes, tuple) else (recipes,)


def _holder_code(compiled: _Compiled) -> int:
    """What the holder column says of an entry of ``compiled``: its one holder's id, or
    ``~slot``."""
    return compiled.ids if isinstance(compiled.ids, int) else ~compiled.slot


def _holders(compiled: _Compiled) -> tuple[int, ...]:
    ids = compiled.ids
    return (ids,) if isinstance(ids, int) else tuple(ids)


class Matcher:
    """Subscriptions compiled once and indexed by their terms; papers matched in bulk.

    The index holds one number per entry of a distinct program (``eid``). Columns give,
    per entry, who holds the program (a subscription's id, or ``~slot`` when two or
    more do: ``_slots`` keeps their array) and how a match through it is explained (a
    recipe's number). A paper's reached entries are then read by gathers, grouped by
    recipe with one sort, and explained once per recipe, with no Python work per
    program reached. Holders come and go without touching the index."""

    def __init__(self, key_weights: Mapping[Key, float] | None = None) -> None:
        """``key_weights``: share of papers holding each key; keys it lacks count as rare.
        It must not change while the matcher lives: ``remove`` retraces ``add``'s paths."""
        self._subs: dict[int, _Compiled] = {}
        self._shared: dict[Program, _Compiled] = {}  # one object per distinct program
        self._slots: list[_Compiled] = []  # programs two or more subscriptions hold
        self._free_slots: list[int] = []
        self._fixed: dict[StaticLeaves, Fixed] = {}  # one per distinct set of proved leaves
        self._recipes: Numbers[Recipe] = Numbers()
        self._holder = Column(_NO_HOLDER, np.int64)  # per entry: the holder, or ~slot
        self._recipe = Column(-1, np.int32)  # per entry: its recipe's number
        # Per entry whose OR sides are a few plain keys: the numbers of those keys (0:
        # none), and the recipe to use instead if the paper holds one of them (Whole).
        self._side_keys = Column(0, np.int32, _SIDE_KEYS)
        self._alt = Column(-1, np.int32)
        self._keys = KeyNumbers()
        self._free_eids: list[int] = []
        self._next_eid = 0
        self._index = PathIndex()
        weights = key_weights
        self._weight = _length_weight if weights is None else lambda k: weights.get(k, 0.0)

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription; a ``sub_id`` already present is replaced. A query
        others hold already costs its id and nothing in the index."""
        self.remove(sub_id)
        program = compile_query(query)
        compiled = self._shared.get(program)
        if compiled is None:
            compiled = self._shared[program] = _Compiled(program)
            self._hold(compiled, (sub_id,))
            self._put(compiled)
        else:
            self._hold(compiled, (*_holders(compiled), sub_id))
        self._subs[sub_id] = compiled

    def remove(self, sub_id: int) -> bool:
        """Forget a subscription; False if it was not there."""
        compiled = self._subs.pop(sub_id, None)
        if compiled is None:
            return False
        holders = tuple(s for s in _holders(compiled) if s != sub_id)
        if holders:
            self._hold(compiled, holders)
            return True
        self._hold(compiled, ())
        self._drop(compiled)  # its last holder: forget the program
        del self._shared[compiled.program]
        return True

    def _hold(self, compiled: _Compiled, holders: tuple[int, ...]) -> None:
        """Give ``compiled`` these holders: one is written in its entries' holder
        column, so ``match_ids`` reads most ids with one gather; more get a slot."""
        if len(holders) == 1 and holders[0] >= 0:
            compiled.ids = holders[0]
            self._free_slot(compiled)
        elif holders:
            compiled.ids = array(IDS, holders)
            if compiled.slot < 0:
                compiled.slot = self._free_slots.pop() if self._free_slots else len(self._slots)
                if compiled.slot == len(self._slots):
                    self._slots.append(compiled)
                self._slots[compiled.slot] = compiled
        else:
            compiled.ids = _NO_IDS
            self._free_slot(compiled)
            return
        for eid in _eids_of(compiled):
            self._holder.set(eid, _holder_code(compiled))

    def _free_slot(self, compiled: _Compiled) -> None:
        if compiled.slot >= 0:
            self._slots[compiled.slot] = _VACANT
            self._free_slots.append(compiled.slot)
            compiled.slot = -1

    def _put(self, compiled: _Compiled) -> None:
        """Index a new program: its entries, each with its recipe and holder."""
        entries, recipes, compiled.whole = self._plan(compiled.program)
        code = _holder_code(compiled)
        eids = []
        for entry, recipe in zip(entries, recipes, strict=True):
            eid = self._free_eids.pop() if self._free_eids else self._next_eid
            self._next_eid = max(self._next_eid, eid + 1)
            self._holder.set(eid, code)
            keys: tuple[int, ...] = ()
            if isinstance(recipe, Sides) and recipe.rid < 0:  # its sides are plain keys
                assert compiled.whole is not None
                keys = tuple(self._keys.number(side[1]) for side in recipe.sides)
                self._recipe.set(eid, recipe.fixed.rid)
                self._alt.set(eid, compiled.whole.rid)
            else:
                self._recipe.set(eid, recipe.rid)
            self._side_keys.set(eid, (*keys, *(0,) * (_SIDE_KEYS - len(keys))))
            self._index.put(eid, entry)
            eids.append(eid)
        compiled.eids = eids[0] if len(eids) == 1 else tuple(eids)
        compiled.recipes = recipes[0] if len(recipes) == 1 else recipes

    def _drop(self, compiled: _Compiled) -> None:
        entries = plan(compiled.program, self._weight)  # as _put planned it
        for eid, entry in zip(_eids_of(compiled), entries, strict=True):
            self._index.drop(eid, entry)
            self._holder.set(eid, _NO_HOLDER)
            self._free_eids.append(eid)
        for recipe in _recipes_of(compiled):
            if isinstance(recipe, Whole):
                continue  # compiled.whole, below
            fixed = recipe.fixed if isinstance(recipe, Sides) else recipe
            if isinstance(recipe, Sides) and recipe.rid >= 0:  # explained one by one
                self._free_recipe(recipe)
            elif isinstance(recipe, Sides):  # settled by its side keys
                for side in recipe.sides:
                    self._keys.drop(side[1])
            fixed.users -= 1
            if not fixed.users:
                del self._fixed[fixed.leaves]
                self._free_recipe(fixed)
        if compiled.whole is not None:
            self._free_recipe(compiled.whole)
        compiled.eids, compiled.recipes, compiled.whole = (), (), None

    def _plan(self, program: Program) -> tuple[list[Entry], tuple[Recipe, ...], Whole | None]:
        """The program's index entries and, for each, how to explain a match through
        it: the leaves it proved (shared), and the OR sides that may hold as well. A
        side found in no later conjunction does not: the paper failed the earlier
        ones, and this entry proves the rest of them. Sides that are a few plain keys
        are settled by numpy in ``match_groups`` (the program's ``Whole`` if the paper
        holds one); other ``Sides`` are explained one by one."""
        leaves = static_leaves(program)
        entries, proved = plan_with_leaves(program, self._weight)
        if leaves is None or proved is None:
            only = self._number(Whole(program, leaves))
            return entries, (only,) * len(entries), only
        sides = [leaf for leaf, check in zip(leaves[::2], leaves[1::2], strict=True) if check]
        out: list[Recipe] = []
        whole: Whole | None = None
        for mine, later in proved:
            fixed = Fixed(mine, leaves)
            fixed = self._fixed.setdefault(fixed.leaves, fixed)
            if not fixed.users:
                self._number(fixed)
            fixed.users += 1
            maybe = tuple(s for s in sides if s in later and s not in mine)
            if not maybe:
                out.append(fixed)
                continue
            entry = Sides(fixed, maybe, leaves)
            if len(maybe) <= _SIDE_KEYS and all(s[0] == KEY for s in maybe):
                whole = whole or self._number(Whole(program, leaves))
            else:
                self._number(entry)
            out.append(entry)
        return entries, tuple(out), whole

    def _number(self, recipe: _R) -> _R:
        recipe.rid = self._recipes.add(recipe)
        return recipe

    def _free_recipe(self, recipe: Recipe) -> None:
        self._recipes.free(recipe.rid)

    def match(self, paper: Paper, likes: Collection[str] = ()) -> list[Match]:
        """``likes``: the stored papers ``paper`` is similar to (for ``like:``)."""
        return self.match_terms(with_likes(analyze_paper(paper), likes))

    def match_groups(self, terms: PaperTerms, only: Container[int] | None = None) -> list[Group]:
        """Every subscription ``terms`` matches, with words and score, grouped by how
        they are explained: the match step's path. The reached entries' recipes are
        gathered and sorted (numpy), and each recipe is explained once, for all its
        subscriptions, so the cost follows a paper's distinct explanations (some 170
        at 100k subscriptions), not the queries it reached (600) or their holders.
        ``only``: just these subscriptions; a group with none of them is not explained
        (an updated paper concerns the few ``upvotes:`` subscriptions)."""
        eids = self._index.hits(terms)
        if not len(eids):
            return []
        rids = self._settle_sides(eids, terms)
        order = np.argsort(rids, kind="stable")
        rids = rids[order]
        holders = self._holder.values[eids[order]]
        starts = np.flatnonzero(np.concatenate(([True], rids[1:] != rids[:-1])))
        lows = np.minimum.reduceat(holders, starts).tolist()
        ends = [*starts[1:].tolist(), len(eids)]
        ids_of, recipes = holders.tolist(), self._recipes.items
        explain = Explainer(terms).explain_recipe
        out: list[Group] = []
        firsts = zip(rids[starts].tolist(), starts.tolist(), ends, lows, strict=True)
        for rid, start, end, low in firsts:
            recipe = recipes[rid]
            assert recipe is not None
            ids = ids_of[start:end] if low >= 0 else self._ids(ids_of[start:end])
            if only is not None and not (ids := [sid for sid in ids if sid in only]):
                continue
            out.append((ids, *explain(recipe)))
        return out

    def _settle_sides(self, eids: Ints, terms: PaperTerms) -> Ints:
        """Each reached entry's recipe: its own, or its program's ``Whole`` where the
        paper holds one of the entry's side keys (rare: a few in 600)."""
        rids = self._recipe.values[eids]
        held = self._keys.held(terms.keys, self._side_keys.values[eids])
        if held is None:
            return rids
        found: Ints = np.where(held, self._alt.values[eids], rids)
        return found

    def _ids(self, codes: list[int]) -> Sequence[int]:
        """Holders of entries when some are shared (``~slot``): the slots' arrays."""
        slots = self._slots
        if len(codes) == 1:
            return slots[~codes[0]].ids  # type: ignore[return-value]  # a slot's array
        found = array(IDS, (c for c in codes if c >= 0))
        for c in codes:
            if c < 0:
                found.extend(slots[~c].ids)  # type: ignore[arg-type]
        return found

    def match_terms(self, terms: PaperTerms, only: Container[int] | None = None) -> list[Match]:
        """Every subscription ``terms`` matches, by ``sub_id``, with words and score;
        ``only``: just these."""
        out = [
            new_match(sid, words, score)
            for ids, words, score in self.match_groups(terms, only)
            for sid in ids
        ]
        out.sort()  # by sub_id: ids are unique, so words and scores are never compared
        return out

    def match_ids(self, terms: PaperTerms) -> array[int]:
        """The ids of the subscriptions ``terms`` matches, each once: the fast path, in no
        particular order (sorting thousands of hits would cost more than finding them)."""
        eids = self._index.hits(terms)
        holders = self._holder.values[eids]
        shared = holders < 0  # the rest are a holder's id: one gather
        found = array(IDS, holders[~shared].tobytes())
        if shared.any():
            slots = self._slots
            for slot in (~holders[shared]).tolist():
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
