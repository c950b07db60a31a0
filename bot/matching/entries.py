"""The matcher's per-entry columns, and the numbered tables they point into.

The presearcher's index holds one number per entry of a distinct program. What a paper
needs to know about the entries it reached (who holds the program, how to explain a
match, which OR sides to look up) lives in numpy columns indexed by that number, so the
match step reads hundreds of them with a few gathers instead of a Python loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set as AbstractSet
from typing import Any, Generic, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt

from bot.matching.analysis import Key

T = TypeVar("T")
Ints: TypeAlias = "npt.NDArray[Any]"


class Column:
    """A growable column of numbers per entry (``width`` of them, or one), numpy-read.
    Rows past the last one set read as ``fill``."""

    __slots__ = ("fill", "values")

    def __init__(self, fill: int, dtype: type, width: int = 0) -> None:
        self.fill = fill
        self.values: Ints = np.full((64, width) if width else 64, fill, dtype)

    def set(self, row: int, value: int | tuple[int, ...]) -> None:
        if row >= len(self.values):  # by half: less room unused than doubling leaves
            size = max(row + 1, len(self.values) * 3 // 2)
            grown = np.full((size, *self.values.shape[1:]), self.fill, self.values.dtype)
            grown[: len(self.values)] = self.values
            self.values = grown
        self.values[row] = value


class Numbers(Generic[T]):
    """Objects under small numbers, for a column to point at; freed numbers are reused,
    so the numbers stay dense however long the daemon edits subscriptions."""

    __slots__ = ("_free", "items")

    def __init__(self) -> None:
        self.items: list[T | None] = []  # by number; None: free
        self._free: list[int] = []

    def add(self, item: T) -> int:
        number = self._free.pop() if self._free else len(self.items)
        if number == len(self.items):
            self.items.append(item)
        self.items[number] = item
        return number

    def free(self, number: int) -> None:
        self.items[number] = None
        self._free.append(number)


class KeyNumbers:
    """Keys numbered from 1 (0 stands for none), counted by their users, and marked for
    one paper at a time: ``held`` tells which rows of numbers name a key the paper has."""

    __slots__ = ("_ids", "_keyset", "_marks", "_numbers", "_uses")

    def __init__(self) -> None:
        self._ids: dict[Key, int] = {}
        self._uses: Counter[Key] = Counter()
        self._numbers: Numbers[Key] = Numbers()
        self._numbers.add("")  # number 0: none
        self._marks = np.zeros(64, dtype=bool)
        # The keys as a set, built on first use after a change: a set intersection
        # reuses the hashes both sets keep (a paper's two-word keys are tuples, whose
        # hash is not cached).
        self._keyset: frozenset[Key] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def number(self, key: Key) -> int:
        """The number of ``key``, counting one more user."""
        number = self._ids.get(key)
        if number is None:
            number = self._ids[key] = self._numbers.add(key)
            self._keyset = None
            if number >= len(self._marks):
                self._marks = np.zeros(2 * number, dtype=bool)
        self._uses[key] += 1
        return number

    def drop(self, key: Key) -> None:
        """One user fewer; the last one frees the number."""
        self._uses[key] -= 1
        if not self._uses[key]:
            del self._uses[key]
            self._numbers.free(self._ids.pop(key))
            self._keyset = None

    def held(self, keys: AbstractSet[Key], rows: Ints) -> Ints | None:
        """Per row of key numbers, whether ``keys`` holds one of them; None if none does."""
        keyset = self._keyset
        if keyset is None:
            keyset = self._keyset = frozenset(self._ids)
        present = keyset & keys  # iterates the smaller side
        if not present:
            return None
        ids, marks = self._ids, self._marks
        numbers = [ids[k] for k in present]
        marks[numbers] = True
        found = cast(Ints, marks[rows].any(axis=1))
        marks[numbers] = False
        return found if found.any() else None
