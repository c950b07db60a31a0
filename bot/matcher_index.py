"""The presearcher's index: a trie of key paths, edited in place, walked per paper.

``plan`` gives each subscription entries ``(path, residual)``. A path of keys k1..kn with
nothing left to check lands in ``leaves`` of the node at k1..kn-1: the subscription is
proven as soon as the paper holds all n keys. Otherwise the node at k1..kn keeps it in
``checks``, sorted by what is left: a key that must be absent (``a -b``), an upvote
threshold, or a residual program to evaluate. A paper's walk intersects its key set with
each visited node's children, so the work follows the paper's keys and its hits, not the
number of subscriptions.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TypeVar

from bot.analysis import AUTHOR_PREFIX_NS, PREFIX_NS, Key, PaperTerms
from bot.matcher_program import NOT, UPVOTES, Entry, Program, evaluate, needed_keys
from bot.query.parser import MIN_PREFIX

T = TypeVar("T")


class _Checks:
    __slots__ = ("ids", "progs", "upvotes", "without")

    def __init__(self) -> None:
        self.without: dict[Key, list[int]] = {}  # proven when the key is absent
        self.upvotes: dict[int, list[int]] = {}  # proven at this many upvotes or more
        self.ids: list[int] = []  # still to evaluate, with ...
        self.progs: list[Program] = []  # ... their residual programs

    def __bool__(self) -> bool:
        return bool(self.without or self.upvotes or self.ids)

    def put(self, sub_id: int, residual: Program) -> None:
        absent, threshold = _absent_key(residual), _threshold(residual)
        if absent is not None:
            self.without.setdefault(absent, []).append(sub_id)
        elif threshold is not None:
            self.upvotes.setdefault(threshold, []).append(sub_id)
        else:
            self.ids.append(sub_id)
            self.progs.append(residual)

    def drop(self, sub_id: int, residual: Program) -> None:
        absent, threshold = _absent_key(residual), _threshold(residual)
        if absent is not None:
            _remove(self.without, absent, sub_id)
        elif threshold is not None:
            _remove(self.upvotes, threshold, sub_id)
        else:
            self._drop_program(sub_id, residual)

    def _drop_program(self, sub_id: int, residual: Program) -> None:
        i = next(i for i, s in enumerate(self.ids) if s == sub_id and self.progs[i] == residual)
        del self.ids[i], self.progs[i]

    def settle(self, terms: PaperTerms, keys: set[Key], hits: set[int]) -> None:
        for key, ids in self.without.items():
            if key not in keys:
                hits.update(ids)
        if self.upvotes and terms.upvotes is not None:
            for threshold, ids in self.upvotes.items():
                if terms.upvotes >= threshold:
                    hits.update(ids)
        for sid, prog in zip(self.ids, self.progs, strict=True):
            if sid not in hits and evaluate(prog, terms):
                hits.add(sid)


def _absent_key(residual: Program) -> Key | None:
    """The key whose absence alone proves ``residual`` (``NOT word``), if any."""
    if residual[0] != NOT:
        return None
    keys, sufficient = needed_keys(residual[1])
    return keys[0] if sufficient and len(keys) == 1 else None


def _threshold(residual: Program) -> int | None:
    return int(residual[1]) if residual[0] == UPVOTES else None


def _remove(table: dict[T, list[int]], key: T, sub_id: int) -> None:
    table[key].remove(sub_id)
    if not table[key]:
        del table[key]


def _bump(counter: Counter[T], item: T, delta: int) -> None:
    counter[item] += delta
    if not counter[item]:
        del counter[item]


class _Node:
    """``leaves``/``shared``: child key → ids proven by the path plus that key; ``shared``
    holds subscriptions with several entries (an OR), which a paper can reach twice."""

    __slots__ = ("checks", "leaves", "next", "shared")

    def __init__(self) -> None:
        self.leaves: dict[Key, list[int]] | None = None
        self.shared: dict[Key, list[int]] | None = None
        self.next: dict[Key, _Node] | None = None
        self.checks: _Checks | None = None

    def is_empty(self) -> bool:
        return not (self.leaves or self.shared or self.next or self.checks)

    def leaf_table(self, shared: bool) -> dict[Key, list[int]]:
        if shared:
            self.shared = self.shared if self.shared is not None else {}
            return self.shared
        self.leaves = self.leaves if self.leaves is not None else {}
        return self.leaves


class PathIndex:
    """Subscription ids indexed by their plan entries."""

    def __init__(self) -> None:
        self._root = _Node()
        # Prefixes on paths (``pre:``/``au*:`` keys), by namespace: how many paths use
        # each, and per first three letters the lengths in use, so a paper's words are
        # turned into just the prefix keys that can match.
        namespaces = (PREFIX_NS, AUTHOR_PREFIX_NS)
        self._prefixes: dict[str, Counter[str]] = {ns: Counter() for ns in namespaces}
        self._lengths: dict[str, dict[str, Counter[int]]] = {ns: {} for ns in namespaces}
        # word → its prefix keys in use; words recur from paper to paper. Cleared when
        # a prefix starts or stops being used.
        self._memo: dict[str, dict[str, tuple[str, ...]]] = {ns: {} for ns in namespaces}

    def put(self, sub_id: int, entry: Entry, *, shared: bool) -> None:
        """Index one entry; ``shared``: the subscription has other entries too."""
        path, residual = entry
        for key in path:
            self._count_prefix(key, +1)
        if residual is None:
            assert path, "a subscription needs a key or a check"
            table = self._node(path[:-1]).leaf_table(shared)
            table.setdefault(_intern(path[-1]), []).append(sub_id)
            return
        node = self._node(path)
        node.checks = node.checks or _Checks()
        node.checks.put(sub_id, residual)

    def drop(self, sub_id: int, entry: Entry, *, shared: bool) -> None:
        path, residual = entry
        for key in path:
            self._count_prefix(key, -1)
        trail = [self._root]
        for key in path if residual is not None else path[:-1]:
            assert trail[-1].next is not None
            trail.append(trail[-1].next[key])
        node = trail[-1]
        if residual is None:
            _remove(node.leaf_table(shared), path[-1], sub_id)
        else:
            assert node.checks is not None
            node.checks.drop(sub_id, residual)
        for depth in range(len(trail) - 1, 0, -1):  # prune emptied nodes, deepest first
            parent, child = trail[depth - 1], trail[depth]
            if child.is_empty():
                assert parent.next is not None
                del parent.next[path[depth - 1]]

    def _node(self, path: tuple[Key, ...]) -> _Node:
        node = self._root
        for key in path:
            if node.next is None:
                node.next = {}
            child = node.next.get(key)
            if child is None:
                child = node.next[_intern(key)] = _Node()
            node = child
        return node

    def _count_prefix(self, key: Key, delta: int) -> None:
        for ns, counts in self._prefixes.items():
            if isinstance(key, str) and key.startswith(ns):
                prefix = key[len(ns) :]
                lengths = self._lengths[ns].setdefault(prefix[:MIN_PREFIX], Counter())
                if counts[prefix] in (0, -delta):  # appears or disappears
                    self._memo[ns].clear()
                _bump(counts, prefix, delta)
                _bump(lengths, len(prefix), delta)
                if not lengths:
                    del self._lengths[ns][prefix[:MIN_PREFIX]]

    def hits(self, terms: PaperTerms) -> list[int]:
        """Ids of every subscription ``terms`` matches, each once, in no order."""
        keys: set[Key] = set(terms.keys)  # a set: `view & set` iterates the smaller side
        self._add_prefix_keys(terms, keys)
        # A subscription with one entry is reached at most once: a plain list will do,
        # extended in C without hashing. The others go through a set.
        found: list[int] = []
        seen: set[int] = set()
        level = [self._root]
        while level:  # breadth first; paths are at most MAX_PATH keys long
            deeper: list[_Node] = []
            for node in level:
                if node.leaves:
                    for ids in _present(node.leaves, keys):
                        found.extend(ids)
                if node.shared:
                    seen.update(*_present(node.shared, keys))
                if node.checks:
                    node.checks.settle(terms, keys, seen)
                if node.next:
                    deeper.extend(_present(node.next, keys))
            level = deeper
        found.extend(seen)
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


def _present(table: dict[Key, T], keys: set[Key]) -> list[T]:
    """Values of ``table`` whose key the paper holds."""
    if len(table) <= _SMALL:
        return [value for key, value in table.items() if key in keys]
    return [table[k] for k in table.keys() & keys]


# Up to this many children, testing each is faster than a set intersection.
_SMALL = 12
_MEMO_LIMIT = 1 << 17


def _intern(key: Key) -> Key:
    return sys.intern(key) if isinstance(key, str) else (sys.intern(key[0]), sys.intern(key[1]))
