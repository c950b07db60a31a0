"""The presearcher's trie laid out flat in numpy arrays, for walking it per paper.

``PathIndex`` edits a trie of Python nodes in place as subscriptions come and go; a
paper's walk in Python paid some 2 µs per node it reached (150-200 at 100k
subscriptions). ``FlatIndex`` is a snapshot of that trie (``PathIndex`` takes one at
the first paper and again after many changes): nodes numbered level by level, the root
first, and per node two runs of rows, its entries and its edges, so one level of the
walk is a handful of gathers for every node of the level at once. The root's children
are found by key number instead: it has thousands.

An entry row is a unit of one or more rows: the token, and a key that must be absent.
A node's proven tokens (``done``) have the key ``never``, which no paper holds; ``a -b``
is one row with ``b``; an entry proven when several keys are all absent is one row per
key. A unit whose keys the paper holds none of is proven; an upvote threshold is a unit of
one row with ``never`` and the threshold. Residual programs (a few in 100,000) are
settled in Python, by the node's ``_Checks``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence, Set
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from bot.matching.analysis import Key, PaperTerms
from bot.matching.entries import Ints

if TYPE_CHECKING:
    from bot.matching.presearcher import _Checks, _Node

_EMPTY: Ints = np.zeros(0, dtype=np.int64)
_NO_THRESHOLD = int(np.iinfo(np.int64).min)  # also the upvotes of a paper without a count
_MOST_UPVOTES = int(np.iinfo(np.int64).max)


# Per entry row: its unit's token, the key that must be absent, whether it starts its
# unit, the upvotes needed.
_Columns: TypeAlias = "tuple[array[int], array[int], array[int], array[int]]"


class _Runs:
    """Rows grouped in runs, one run per node, built node by node in level order."""

    def __init__(self) -> None:
        self.starts = array("q")
        self.rows = 0

    def close(self) -> None:
        """The run of the next node starts here."""
        self.starts.append(self.rows)

    def arrays(self) -> tuple[Ints, Ints]:
        self.starts.append(self.rows)
        starts = np.array(self.starts, dtype=np.int64)
        return starts[:-1], starts[1:]


def _gather(starts: Ints, ends: Ints, nodes: Ints) -> Ints:
    """The rows of every run of ``nodes``, one run after the other: a concatenation of
    ranges without a Python loop."""
    first, last = starts[nodes], ends[nodes]
    lengths = last - first
    total = int(lengths.sum())
    if not total:
        return _EMPTY
    offsets = np.cumsum(lengths) - lengths
    found: Ints = np.arange(total, dtype=np.int64) + np.repeat(first - offsets, lengths)
    return found


class FlatIndex:
    """A snapshot of a ``PathIndex`` trie, walked one level at a time by numpy."""

    def __init__(self, root: _Node) -> None:
        self._ids: dict[Key, int] = {}
        self._python: dict[int, _Checks] = {}  # nodes with checks numpy cannot settle
        # Built in arrays, not lists: 100k subscriptions' rows as int objects would
        # take some 15 MB more at the peak.
        unit_token, row_key, row_first = array("q"), array("q"), array("b")
        row_least = array("q")  # upvotes the paper needs
        edge_key, edge_node = array("q"), array("q")
        rows, edges = _Runs(), _Runs()
        columns = (unit_token, row_key, row_first, row_least)
        top: list[tuple[int, int]] = []  # the root's children: key number, node number
        level, numbered = [root], 0
        while level:  # the root is node 0; then each level's nodes, numbered in turn
            numbered += len(level)
            deeper: list[_Node] = []
            for number, node in enumerate(level, numbered - len(level)):
                rows.close()
                edges.close()
                rows.rows += self._units(node, number, columns)
                below = node.next or {}
                first = numbered + len(deeper)
                if node is root:  # its children are found by key, not by edge
                    top = [(self._id(k), first + i) for i, k in enumerate(below)]
                else:
                    edge_key.extend(self._id(k) for k in below)
                    edge_node.extend(range(first, first + len(below)))
                deeper.extend(below.values())
                edges.rows = len(edge_key)
            level = deeper
        # The keys again as a set: intersecting two sets reuses the hashes they keep,
        # where the dict's keys would hash each key of the paper again, and a two-word
        # key is a tuple, whose hash is not cached (0.044 against 0.067 ms a paper).
        self._keyset = frozenset(self._ids)
        self._never = len(self._ids)  # a key number no paper holds
        self._always = self._never + 1  # one every paper holds: it reaches the root
        self._marks = np.zeros(self._always + 1, dtype=bool)
        self._top: Ints = np.full(self._always + 1, -1, dtype=np.int64)
        self._top[[k for k, _ in top]] = [n for _, n in top]
        self._top[self._always] = 0
        self._row_starts, self._row_ends = rows.arrays()
        self._edge_starts, self._edge_ends = edges.arrays()
        keys = np.array(row_key, dtype=np.int64)
        self._row_key: Ints = np.where(keys < 0, self._never, keys)
        self._row_first: Ints = np.array(row_first, dtype=bool)
        self._row_least: Ints = np.array(row_least, dtype=np.int64)
        self._thresholds = bool((self._row_least != _NO_THRESHOLD).any())
        self._unit_token: Ints = np.array(unit_token, dtype=np.int64)
        self.tokens = int(self._row_first.sum())  # entries, whether proven or checked
        checked = [t for c in self._python.values() for t in c.ids]
        self.bound = 1 + max(max(unit_token, default=-1), max(checked, default=-1))  # > tokens
        self._edge_key: Ints = np.array(edge_key, dtype=np.int64)
        self._edge_node: Ints = np.array(edge_node, dtype=np.int64)
        self._has_python: Ints = np.zeros(numbered, dtype=bool)
        self._has_python[list(self._python)] = True

    def _id(self, key: Key) -> int:
        return self._ids.setdefault(key, len(self._ids))

    def _units(self, node: _Node, number: int, columns: _Columns) -> int:
        """Append the node's entry rows to ``columns`` (token, key, first of its unit,
        upvotes needed); how many."""
        tokens, keys, first, least = columns
        units: list[tuple[int, int, Sequence[int]]] = [(-1, _NO_THRESHOLD, node.done or ())]
        checks = node.checks
        if checks is not None:
            units += [(self._id(k), _NO_THRESHOLD, ids) for k, ids in checks.absent.items()]
            units += [(-1, n, ids) for n, ids in checks.upvotes.items()]
            if checks.ids:  # residual programs: evaluated in Python
                self._python[number] = checks
        added = 0
        for key, threshold, ids in units:
            tokens.extend(ids)
            keys.extend([key] * len(ids))
            first.extend([1] * len(ids))
            least.extend([threshold] * len(ids))
            added += len(ids)
        for absent_all, ids in checks.without.items() if checks is not None else ():
            named = [self._id(k) for k in absent_all]
            for token in ids:
                tokens.extend([token] * len(named))
                keys.extend(named)
                first.extend([1] + [0] * (len(named) - 1))
                least.extend([_NO_THRESHOLD] * len(named))
                added += len(named)
        return added

    def hits(self, terms: PaperTerms, extra: Set[Key]) -> list[Ints]:
        """The tokens of the entries the paper's keys and ``extra`` (its prefix keys)
        reach, in arrays."""
        ids = self._ids
        named = self._keyset & terms.keys  # by the hashes both sets keep: see __init__
        present = np.array(
            [self._always, *(ids[k] for k in named), *(ids[k] for k in extra if k in ids)],
            dtype=np.int64,
        )
        marks = self._marks
        marks[present] = True
        try:
            nodes = self._top[present]
            return self._walk(nodes[nodes >= 0], terms, extra)
        finally:
            marks[present] = False

    def _walk(self, nodes: Ints, terms: PaperTerms, extra: Set[Key]) -> list[Ints]:
        found: list[Ints] = []
        more = array("q")
        keys: Set[Key] | None = None  # every key of the paper, for a Python check
        marks = self._marks
        while len(nodes):
            rows = _gather(self._row_starts, self._row_ends, nodes)
            if len(rows):
                found.append(self._proven(rows, terms.upvotes))
            for number in nodes[self._has_python[nodes]].tolist() if self._python else ():
                keys = keys if keys is not None else terms.keys | extra
                self._python[number].settle(terms, keys, more)
            edges = _gather(self._edge_starts, self._edge_ends, nodes)
            nodes = self._edge_node[edges[marks[self._edge_key[edges]]]]
        if more:
            found.append(np.frombuffer(more, dtype=np.int64))
        return found

    def _proven(self, rows: Ints, upvotes: int | None) -> Ints:
        """The tokens of the units in ``rows`` whose keys the paper holds none of and
        whose upvote thresholds it reaches."""
        held = self._marks[self._row_key[rows]]
        if self._thresholds:
            count = _NO_THRESHOLD if upvotes is None else min(upvotes, _MOST_UPVOTES)
            held |= self._row_least[rows] > count
        first = self._row_first[rows]
        if not held.any():
            proven: Ints = self._unit_token[rows[first]]
            return proven
        starts = np.flatnonzero(first)
        failed = np.logical_or.reduceat(held, starts)
        found: Ints = self._unit_token[rows[starts[~failed]]]
        return found


def flat_tokens(parts: list[Ints]) -> Ints:
    """One array of the tokens ``FlatIndex.hits`` found."""
    if len(parts) < 2:
        return parts[0] if parts else _EMPTY
    joined: Ints = np.concatenate(parts)
    return joined
