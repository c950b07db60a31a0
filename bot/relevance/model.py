"""One user's relevance model: a linear SVM over paper vectors, as arxiv-sanity does.

Trained from the user's 👍 (positives), ``like:`` papers (positives too) and 👎 (hard
negatives, weighted ``HARD_NEGATIVE`` times) against the rest of the recent corpus (weak
negatives), with balanced class weights so three likes count against thousands of
others. A paper's relevance, what people see and what a subscription's ``min_relevance``
is compared with, is its rank among the recent papers the model was trained against: the
share of them it scores above (0.9: better than 90 % of recent papers), a scale that means
the same whatever the model's raw margins. Training and scoring 2,000 papers takes some
tens of milliseconds (``bench/relevance.py`` measures it).

``because`` says why in a few words: the liked paper a paper is closest to, when close
enough (``NEAR``), else the words that weighed most in its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

HARD_NEGATIVE = 3.0
# Cosine to a liked paper above which "close to <it>" explains better than words.
NEAR = 0.12
REGULARISATION = 0.01
TOP_WORDS = 3


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a paper ranks where it does: the nearest liked paper, else the top words."""

    nearest: str | None  # key of the liked paper it is closest to
    words: tuple[str, ...] = ()


class UserModel:
    """Fitted on one user's examples; scores and explains rows of the same vocabulary."""

    def __init__(
        self,
        classifier: LinearSVC | None,
        liked: sp.csr_matrix,
        liked_keys: Sequence[str],
        background: sp.csr_matrix | None = None,
    ) -> None:
        self._clf = classifier
        self._liked = liked
        self.liked_keys = tuple(liked_keys)
        empty = background is None or background.shape[0] == 0
        self._reference = np.sort(self.scores(background)) if not empty else np.zeros(0)

    def relevance(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores as the share of recent papers scored lower, in [0, 1]."""
        if self._reference.size == 0:
            return np.asarray(np.clip(raw, 0.0, 1.0), dtype=np.float64)
        below = np.searchsorted(self._reference, raw, side="left")
        return np.asarray(below / self._reference.size, dtype=np.float64)

    def scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Raw scores of each row: higher is more relevant (compare only with each other)."""
        if rows.shape[0] == 0:
            return np.zeros(0)
        if self._clf is None:  # no negatives at all: closeness to the liked papers
            near = (_fit(rows, self._liked.shape[1]) @ self._liked.T).toarray()
            return np.asarray(near.max(axis=1), dtype=np.float64)
        margins = self._clf.decision_function(_fit(rows, self._clf.coef_.shape[1]))
        return np.asarray(margins, dtype=np.float64)

    def reasons(self, rows: sp.csr_matrix, names: Sequence[str]) -> list[Reason]:
        rows = _fit(rows, self._liked.shape[1])
        near = (rows @ self._liked.T).toarray() if self._liked.shape[0] else None
        out = []
        for i in range(rows.shape[0]):
            if near is not None and near.shape[1] and near[i].max() >= NEAR:
                out.append(Reason(self.liked_keys[int(near[i].argmax())]))
            else:
                out.append(Reason(None, self._words(rows.getrow(i), names)))
        return out

    def _words(self, row: sp.csr_matrix, names: Sequence[str]) -> tuple[str, ...]:
        if self._clf is None or row.nnz == 0:
            return ()
        weights = row.data * self._clf.coef_[0][row.indices]
        order = np.argsort(-weights)[:TOP_WORDS]
        return tuple(names[row.indices[j]] for j in order if weights[j] > 0)


def train(
    liked: sp.csr_matrix,
    liked_keys: Sequence[str],
    disliked: sp.csr_matrix,
    background: sp.csr_matrix,
) -> UserModel:
    """A model from liked rows (at least one), disliked rows and the rest of the corpus."""
    import scipy.sparse as sp  # here, as the matrices are: the match step never needs it

    negatives = sp.vstack([disliked, background], format="csr")
    if negatives.shape[0] == 0:
        return UserModel(None, liked, liked_keys)
    x = sp.vstack([liked, negatives], format="csr")
    y = np.r_[np.ones(liked.shape[0]), np.zeros(negatives.shape[0])]
    weight = np.r_[
        np.ones(liked.shape[0]),
        np.full(disliked.shape[0], HARD_NEGATIVE),
        np.ones(background.shape[0]),
    ]
    # Imported here: only a reader with likes needs it, and it is heavy to hold.
    from sklearn.svm import LinearSVC

    clf = LinearSVC(C=REGULARISATION, class_weight="balanced")
    clf.fit(x, y, sample_weight=weight)
    return UserModel(clf, liked, liked_keys, background)


def _fit(rows: sp.csr_matrix, dim: int) -> sp.csr_matrix:
    """``rows`` with ``dim`` columns (all stored vectors share one vocabulary; a matrix
    stacked from few rows may just be narrower)."""
    if rows.shape[1] == dim:
        return rows
    import scipy.sparse as sp

    return sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(rows.shape[0], dim))
