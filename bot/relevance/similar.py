"""Which papers are "like" a stored one: the cosine of their vectors, for ``like:``.

``LIKE_THRESHOLD``: a paper is like another when the cosine of their TF-IDF vectors
(title twice + abstract, word 1-2-grams) is at least 0.15. On the 213 real listings in
``tests/data`` the 99th percentile of all pairs is about 0.13 and the median paper's
closest neighbour about 0.18: so ``like:X`` alone matches the few papers on X's topic,
around 1 % of a day's listings, and ``test-query`` shows the exact hit rate.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bot.relevance.vectors import stack
from bot.store.protocols import Store

if TYPE_CHECKING:  # loaded only once a like: atom has a target to compare with
    import scipy.sparse as sp

LIKE_THRESHOLD = 0.15


class LikeTargets:
    """The vectors of the papers ``like:`` atoms name; papers compared against them."""

    def __init__(self, keys: Sequence[str], matrix: sp.csr_matrix | None) -> None:
        self.keys = tuple(keys)
        self._matrix = matrix

    @classmethod
    async def load(cls, store: Store, targets: Collection[str]) -> LikeTargets:
        """Targets without a vector (not stored, or not vectorized yet) match nothing."""
        if not targets:
            return cls((), None)
        found = await store.get_vectors(targets)  # none before the first fit
        if not found:
            return cls((), None)
        keys = sorted(found)
        return cls(keys, stack([found[k] for k in keys], _dimension(found.values())))

    async def similar(self, store: Store, papers: Sequence[str]) -> dict[str, frozenset[str]]:
        """For each paper (by key), the targets it is like; papers like none are left out."""
        if self._matrix is None or not papers:
            return {}
        found = await store.get_vectors(papers)
        if not found:
            return {}
        keys = list(found)
        dim = max(self._matrix.shape[1], _dimension(found.values()))
        rows = stack([found[k] for k in keys], dim)
        targets = _widen(self._matrix, dim)
        sims = (rows @ targets.T).toarray()
        out: dict[str, frozenset[str]] = {}
        for i, key in enumerate(keys):
            hit = np.nonzero(sims[i] >= LIKE_THRESHOLD)[0]
            if hit.size:
                out[key] = frozenset(self.keys[j] for j in hit)
        return out


def _dimension(blobs: Collection[bytes]) -> int:
    """Columns enough for every index in ``blobs`` (all share one vocabulary)."""
    top = 0
    for blob in blobs:
        n = len(blob) // 8
        if n:
            top = max(top, int(np.frombuffer(blob, dtype="<i4", count=n).max()) + 1)
    return top


def _widen(matrix: sp.csr_matrix, dim: int) -> sp.csr_matrix:
    if matrix.shape[1] == dim:
        return matrix
    import scipy.sparse as sp

    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], dim))
