"""One user's relevance model: a linear classifier over paper vectors, as arxiv-sanity does.

Trained from the user's 👍 (positives), ``like:`` papers (positives too) and 👎 (hard
negatives, weighted ``HARD_NEGATIVE`` times) against the rest of the recent corpus (weak
negatives), with balanced class weights so three likes count against thousands of
others. Logistic regression rather than an SVM so that a score is a probability in
[0, 1]: what a subscription's ``min_relevance`` is compared with. Training and scoring
2,000 papers takes a few milliseconds (``bench/relevance.py`` measures it).

``because`` says why in a few words: the liked paper a paper is closest to, when close
enough (``NEAR``), else the words that weighed most in its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

HARD_NEGATIVE = 3.0
# Cosine to a liked paper above which "close to <it>" explains better than words.
NEAR = 0.12
REGULARISATION = 1.0
TOP_WORDS = 3


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a paper ranks where it does: the nearest liked paper, else the top words."""

    nearest: str | None  # key of the liked paper it is closest to
    words: tuple[str, ...] = ()


class UserModel:
    """Fitted on one user's examples; scores and explains rows of the same vocabulary."""

    def __init__(
        self, classifier: LogisticRegression | None, liked: sp.csr_matrix, liked_keys: Sequence[str]
    ) -> None:
        self._clf = classifier
        self._liked = liked
        self.liked_keys = tuple(liked_keys)

    def scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Relevance in [0, 1] of each row."""
        if rows.shape[0] == 0:
            return np.zeros(0)
        if self._clf is None:  # no negatives at all: closeness to the liked papers
            near = (_fit(rows, self._liked.shape[1]) @ self._liked.T).toarray()
            return np.asarray(near.max(axis=1), dtype=np.float64)
        return np.asarray(self._clf.predict_proba(_fit(rows, self._clf.coef_.shape[1]))[:, 1])

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
    clf = LogisticRegression(C=REGULARISATION, class_weight="balanced", solver="liblinear")
    clf.fit(x, y, sample_weight=weight)
    return UserModel(clf, liked, liked_keys)


def _fit(rows: sp.csr_matrix, dim: int) -> sp.csr_matrix:
    """``rows`` with ``dim`` columns (all stored vectors share one vocabulary; a matrix
    stacked from few rows may just be narrower)."""
    if rows.shape[1] == dim:
        return rows
    return sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(rows.shape[0], dim))
