"""The presearcher's index: a trie of key paths, edited in place, walked per paper.

``plan`` gives each distinct program entries ``(path, residual)``; the matcher puts each
under an int token, the entry's number. The node at the end of the path keeps the token
in ``done`` when the path proves the match, else in ``checks``, sorted by what is left:
keys that must all be absent (``a -b``, or a later branch of an OR), an upvote
threshold, or a residual program to evaluate. A paper's walk intersects its keys with
the root's children, then with each visited node's children, so the work follows the
paper's keys and its hits, not the number of subscriptions. Entries never overlap, so
each program is reached once.

The walk is numpy's, over a flat snapshot of the trie (``bot.matching.flat``) taken at
the first paper. Changes after it do not retake it: an overlay holds them (the entries
put since, in a small snapshot of their own, and the tokens dropped since, whose hits
are thrown away) until they pass a 32nd of the snapshot's entries.
"""

from __future__ import annotations

import sys
from array import array
from collections import Counter
from collections.abc import Set as AbstractSet
from typing import TypeVar

import numpy as np

from bot.matching.analysis import AUTHOR_PREFIX_NS, PREFIX_NS, Key, PaperTerms
from bot.matching.entries import Ints
from bot.matching.flat import FlatIndex, flat_tokens
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
_MEMO_LIMIT = 1 << 17
# A new snapshot once the changes since the last one pass 1/_RETAKE of its entries: the
# overlay's walk grows with them, and a snapshot costs about as much as a thousand
# papers' walks (0.2-0.3 s at 100k subscriptions).
_RETAKE = 32


class _Checks:
    """What a node's entries leave to check once their path is held, by kind: most are
    settled by ``FlatIndex`` in numpy; residual programs by ``settle``."""

    __slots__ = ("absent", "ids", "progs", "upvotes", "without")

    def __init__(self) -> None:
        self.absent: dict[Key, array[int]] = {}  # proven if this key is absent
        self.without: dict[tuple[Key, ...], array[int]] = {}  # proven if all are absent
        self.upvotes: dict[int, array[int]] = {}  # proven at this many upvotes or more
        self.ids: list[int] = []  # still to evaluate, with ...
        self.progs: list[Program] = []  # ... their residual programs

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

    def settle(self, terms: PaperTerms, keys: AbstractSet[Key], found: array[int]) -> None:
        """Append the ids whose residual programs the paper's ``keys`` make true."""
        for sid, prog in zip(self.ids, self.progs, strict=True):
            if evaluate(prog, keys, terms):
                found.append(sid)


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


class _PrefixMemo:
    """The prefix keys of words seen before, in one namespace: words recur from paper to
    paper. Cleared when an indexed prefix comes or goes."""

    __slots__ = ("keys_of", "seen")

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.keys_of: dict[str, tuple[str, ...]] = {}  # the words of ``seen`` with any

    def clear(self) -> None:
        self.seen.clear()
        self.keys_of.clear()


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
        self._memo: dict[str, _PrefixMemo] = {ns: _PrefixMemo() for ns in namespaces}
        self._snapshot: _Snapshot | None = None  # taken at the first paper

    def put(self, token: int, entry: Entry) -> None:
        for key in _key_refs(entry):
            self._count_prefix(key, +1)
        _insert(self._root, token, entry)
        if self._snapshot is not None:
            self._snapshot.put(token, entry)

    def drop(self, token: int, entry: Entry) -> None:
        for key in _key_refs(entry):
            self._count_prefix(key, -1)
        _delete(self._root, token, entry)
        if self._snapshot is not None:
            self._snapshot.drop(token, entry)

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

    def hits(self, terms: PaperTerms) -> Ints:
        """The token of every entry ``terms`` matches, in no order: a program at most
        once, as its entries never overlap. The walk is the trie's flat snapshot's,
        taken again once the changes since pass a 32nd of its entries."""
        snapshot = self._snapshot
        if snapshot is None or snapshot.stale():
            snapshot = self._snapshot = _Snapshot(self._root)  # some 0.2 s at 100k
        return flat_tokens(snapshot.hits(terms, self._prefix_keys_of(terms)))

    def _prefix_keys_of(self, terms: PaperTerms) -> set[Key]:
        """``pre:<p>`` for each indexed prefix ``p`` that starts a word of the paper (and
        ``au*:`` for author names): the paper's words are compared with the words seen
        before as sets, so only new words are looked at one by one."""
        found: set[Key] = set()
        for ns, words in ((PREFIX_NS, terms.words), (AUTHOR_PREFIX_NS, terms.author_words)):
            if not self._prefixes[ns]:
                continue
            memo = self._memo[ns]
            if len(memo.seen) > _MEMO_LIMIT:
                memo.clear()
            for word in words - memo.seen:
                keys = self._prefix_keys(ns, word)
                if keys:
                    memo.keys_of[word] = keys
                memo.seen.add(word)
            for word in memo.keys_of.keys() & words:
                found.update(memo.keys_of[word])
        return found

    def _prefix_keys(self, ns: str, word: str) -> tuple[str, ...]:
        prefixes = self._prefixes[ns]
        lengths = self._lengths[ns].get(word[:MIN_PREFIX], ())
        return tuple(sys.intern(ns + word[:n]) for n in lengths if word[:n] in prefixes)


class _Snapshot:
    """The trie as numpy walks it, and an overlay of the changes since it was taken: the
    entries put since (a small trie and its own snapshot) and the tokens dropped since,
    whose hits are thrown away, until they are many enough to take a new one."""

    def __init__(self, root: _Node) -> None:
        self._flat = FlatIndex(root)
        self._fresh = _Node()
        self._fresh_tokens: set[int] = set()
        self._fresh_flat: FlatIndex | None = None  # built at the next paper
        self._gone: set[int] = set()
        self._gone_marks: Ints | None = None  # _gone by token, built at the next paper

    def stale(self) -> bool:
        changes = len(self._fresh_tokens) + len(self._gone)
        return changes > self._flat.tokens // _RETAKE

    def put(self, token: int, entry: Entry) -> None:
        _insert(self._fresh, token, entry)
        self._fresh_tokens.add(token)
        self._fresh_flat = None

    def drop(self, token: int, entry: Entry) -> None:
        if token in self._fresh_tokens:  # put since the snapshot: only the overlay has it
            _delete(self._fresh, token, entry)
            self._fresh_tokens.discard(token)
            self._fresh_flat = None
        else:  # the snapshot's: its hits there are thrown away (if reused, put() adds it)
            self._gone.add(token)
            self._gone_marks = None

    def hits(self, terms: PaperTerms, extra: AbstractSet[Key]) -> list[Ints]:
        parts = self._flat.hits(terms, extra)
        if self._gone:
            marks = self._gone_marks
            if marks is None:
                marks = self._gone_marks = np.zeros(self._flat.bound, dtype=bool)
                marks[list(self._gone)] = True
            parts = [tokens[~marks[tokens]] for tokens in parts]
        if self._fresh_tokens:
            if self._fresh_flat is None:
                self._fresh_flat = FlatIndex(self._fresh)
            parts += self._fresh_flat.hits(terms, extra)
        return parts


def _insert(root: _Node, token: int, entry: Entry) -> None:
    path, residual = entry
    node = root
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


def _delete(root: _Node, token: int, entry: Entry) -> None:
    path, residual = entry
    trail = [root]
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
