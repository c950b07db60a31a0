"""The presearcher's index: a trie of key paths, edited in place, walked per paper.

``plan`` gives each distinct program entries ``(path, residual)``; the matcher puts each
under an int token, the entry's number. The node at the end of the path keeps the token
in ``done`` when the path proves the match, else in ``checks``, sorted by what is left:
keys that must all be absent (``a -b``, or a later branch of an OR), an upvote
threshold, or a residual program to evaluate. A paper's walk intersects its keys with
the root's children, then with each visited node's children, so the work follows the
paper's keys and its hits, not the number of subscriptions. Entries never overlap, so
each program is reached once and a plain array collects the tokens.
"""

from __future__ import annotations

import sys
from array import array
from collections import Counter
from typing import TypeVar

from bot.matching.analysis import AUTHOR_PREFIX_NS, PREFIX_NS, Key, PaperTerms
from bot.matching.program import (
    AND,
    KEY,
    NOT,
    OR,
    UPVOTES,
    Entry,
    Program,
    absent_keys,
    evaluate,
)
from bot.matching.query.parser import MIN_PREFIX

T = TypeVar("T")
# Tokens are kept in arrays of 64-bit ints: extending one array by another is a
# memory copy, where lists would touch every id object on the way.
IDS = "q"
# Up to this many children, testing each is faster than a set intersection.
_SMALL = 12
_MEMO_LIMIT = 1 << 17


class _Checks:
    __slots__ = ("_merged", "absent", "ids", "progs", "upvotes", "without")

    def __init__(self) -> None:
        self.absent: dict[Key, array[int]] = {}  # proven if this key is absent
        self.without: dict[tuple[Key, ...], array[int]] = {}  # proven if all are absent
        self.upvotes: dict[int, array[int]] = {}  # proven at this many upvotes or more
        self.ids: list[int] = []  # still to evaluate, with ...
        self.progs: list[Program] = []  # ... their residual programs
        # Every id of ``absent`` and ``without`` in one array, with every key they name:
        # most papers hold none of those keys, and then one extend settles them all.
        # Built on first use after a change (``_merge``).
        self._merged: tuple[tuple[Key, ...], array[int]] | None = None

    def is_empty(self) -> bool:
        return not (self.absent or self.without or self.upvotes or self.ids)

    def put(self, token: int, residual: Program) -> None:
        absent = absent_keys(residual)
        if absent is not None and len(absent) == 1:
            self.absent.setdefault(absent[0], array(IDS)).append(token)
        elif absent is not None:
            self.without.setdefault(absent, array(IDS)).append(token)
        elif residual[0] == UPVOTES:
            self.upvotes.setdefault(residual[1], array(IDS)).append(token)
        else:
            self.ids.append(token)
            self.progs.append(residual)
        self._merged = None

    def drop(self, token: int, residual: Program) -> None:
        absent = absent_keys(residual)
        if absent is not None and len(absent) == 1:
            _remove(self.absent, absent[0], token)
        elif absent is not None:
            _remove(self.without, absent, token)
        elif residual[0] == UPVOTES:
            _remove(self.upvotes, residual[1], token)
        else:
            i = next(i for i, s in enumerate(self.ids) if s == token and self.progs[i] == residual)
            del self.ids[i], self.progs[i]
        self._merged = None

    def settle(self, terms: PaperTerms, keys: set[Key], found: array[int]) -> None:
        if self.absent or self.without:
            merged = self._merged
            if merged is None:
                merged = self._merged = self._merge()
            if merged is not _UNMERGED and keys.isdisjoint(merged[0]):
                found.extend(merged[1])
            else:
                self._settle_absent(keys, found)
        upvotes = terms.upvotes
        if self.upvotes and upvotes is not None:
            for threshold, ids in self.upvotes.items():
                if upvotes >= threshold:
                    found.extend(ids)
        for sid, prog in zip(self.ids, self.progs, strict=True):
            if evaluate(prog, keys, terms):
                found.append(sid)

    def _settle_absent(self, keys: set[Key], found: array[int]) -> None:
        # Not `absent.keys() - keys`: that copies the dict's keys, then walks all of ours.
        for key, ids in self.absent.items():  # a -b, or b in b OR a
            if key not in keys:
                found.extend(ids)
        for absent_all, ids in self.without.items():
            if keys.isdisjoint(absent_all):
                found.extend(ids)

    def _merge(self) -> tuple[tuple[Key, ...], array[int]]:
        """Every key named and every id, when there are two groups or more (one is as
        fast to settle by itself). A tuple of keys, not a set: ``isdisjoint`` walks it
        all the same, and at 100k subscriptions sets would cost a megabyte more."""
        groups = [*self.absent.values(), *self.without.values()]
        if len(groups) < 2:
            return _UNMERGED
        ids = array(IDS)
        for group in groups:
            ids.extend(group)
        return tuple({*self.absent, *(k for keys in self.without for k in keys)}), ids


_UNMERGED: tuple[tuple[Key, ...], array[int]] = ((), array(IDS))  # by identity


def _remove(table: dict[T, array[int]], key: T, token: int) -> None:
    table[key].remove(token)
    if not table[key]:
        del table[key]


def _bump(counter: Counter[T], item: T, delta: int) -> None:
    counter[item] += delta
    if not counter[item]:
        del counter[item]


class _Node:
    __slots__ = ("checks", "done", "next")

    def __init__(self) -> None:
        self.done: array[int] | None = None
        self.checks: _Checks | None = None
        self.next: dict[Key, _Node] | None = None

    def is_empty(self) -> bool:
        return not (self.done or self.checks is not None or self.next)


class PathIndex:
    """Tokens indexed by their plan entries."""

    def __init__(self) -> None:
        self._root = _Node()
        # Prefixes on paths (``pre:``/``au*:`` keys), by namespace: how many paths use
        # each, and per first three letters the lengths in use, so that a paper's words
        # give just the prefix keys that can match; and word → those keys, remembered
        # (words recur from paper to paper) until a prefix comes or goes.
        namespaces = (PREFIX_NS, AUTHOR_PREFIX_NS)
        self._prefixes: dict[str, Counter[str]] = {ns: Counter() for ns in namespaces}
        self._lengths: dict[str, dict[str, Counter[int]]] = {ns: {} for ns in namespaces}
        self._memo: dict[str, dict[str, tuple[str, ...]]] = {ns: {} for ns in namespaces}

    def put(self, token: int, entry: Entry) -> None:
        path, residual = entry
        for key in _key_refs(entry):
            self._count_prefix(key, +1)
        node = self._root
        for key in path:
            if node.next is None:
                node.next = {}
            child = node.next.get(key)
            if child is None:
                child = node.next[_intern(key)] = _Node()
            node = child
        if residual is None:
            node.done = node.done if node.done is not None else array(IDS)
            node.done.append(token)
        else:
            node.checks = node.checks if node.checks is not None else _Checks()
            node.checks.put(token, residual)

    def drop(self, token: int, entry: Entry) -> None:
        path, residual = entry
        for key in _key_refs(entry):
            self._count_prefix(key, -1)
        trail = [self._root]
        for key in path:
            assert trail[-1].next is not None
            trail.append(trail[-1].next[key])
        node = trail[-1]
        if residual is None:
            assert node.done is not None
            node.done.remove(token)
        else:
            assert node.checks is not None
            node.checks.drop(token, residual)
            if node.checks.is_empty():
                node.checks = None
        for depth in range(len(path), 0, -1):  # prune emptied nodes, deepest first
            parent, child = trail[depth - 1], trail[depth]
            if child.is_empty():
                assert parent.next is not None
                del parent.next[path[depth - 1]]

    def _count_prefix(self, key: Key, delta: int) -> None:
        for ns, counts in self._prefixes.items():
            if isinstance(key, str) and key.startswith(ns):
                prefix = key[len(ns) :]
                if counts[prefix] in (0, -delta):  # appears or disappears
                    self._memo[ns].clear()
                lengths = self._lengths[ns].setdefault(prefix[:MIN_PREFIX], Counter())
                _bump(counts, prefix, delta)
                _bump(lengths, len(prefix), delta)
                if not lengths:
                    del self._lengths[ns][prefix[:MIN_PREFIX]]

    def hits(self, terms: PaperTerms) -> array[int]:
        """The token of every entry ``terms`` matches, in no order: a program at most
        once, as its entries never overlap."""
        keys: set[Key] = set(terms.keys)  # a set: `view & set` iterates the smaller side
        self._add_prefix_keys(terms, keys)
        found = array(IDS)
        root = self._root
        if root.checks is not None:
            root.checks.settle(terms, keys, found)
        below = root.next
        level = [below[k] for k in below.keys() & keys] if below else []
        while level:  # breadth first; paths are at most MAX_PATH keys long
            deeper: list[_Node] = []
            for node in level:
                if node.done:
                    found.extend(node.done)
                if node.checks is not None:
                    node.checks.settle(terms, keys, found)
                below = node.next
                if below:
                    if len(below) <= _SMALL:
                        deeper += [child for k, child in below.items() if k in keys]
                    else:
                        deeper += [below[k] for k in below.keys() & keys]
            level = deeper
        return found

    def _add_prefix_keys(self, terms: PaperTerms, keys: set[Key]) -> None:
        """Add ``pre:<p>`` for each indexed prefix ``p`` that starts a word of the paper."""
        for ns, words in ((PREFIX_NS, terms.words), (AUTHOR_PREFIX_NS, terms.author_words)):
            if not self._prefixes[ns]:
                continue
            memo = self._memo[ns]
            if len(memo) > _MEMO_LIMIT:
                memo.clear()
            for word in words:
                found = memo.get(word)
                if found is None:
                    found = memo[word] = self._prefix_keys(ns, word)
                if found:
                    keys.update(found)

    def _prefix_keys(self, ns: str, word: str) -> tuple[str, ...]:
        prefixes = self._prefixes[ns]
        lengths = self._lengths[ns].get(word[:MIN_PREFIX], ())
        return tuple(sys.intern(ns + word[:n]) for n in lengths if word[:n] in prefixes)


def _key_refs(entry: Entry) -> list[Key]:
    """Every key an entry tests: its path, and keys named in its residual (a prefix key
    among them must be derived from the paper's words even when on no path)."""
    path, residual = entry
    refs = list(path)
    stack = [residual] if residual is not None else []
    while stack:
        p = stack.pop()
        if p[0] == KEY:
            refs.append(p[1])
        elif p[0] in (AND, OR):
            stack.extend(p[1])
        elif p[0] == NOT:
            absent = absent_keys(p)
            if absent:
                refs.extend(absent)
            else:
                stack.append(p[1])
    return refs


def _intern(key: Key) -> Key:
    return sys.intern(key) if isinstance(key, str) else (sys.intern(key[0]), sys.intern(key[1]))
