"""Paper vectors: the ``Vectorizer`` interface, TF-IDF behind it, and the stored byte form.

TF-IDF follows arxiv-sanity's recipe: word 1-2-grams, sublinear tf, English stop words,
rows L2-normalised (so a dot product is the cosine). A vectorizer is fitted on the stored
corpus (``bot.relevance.corpus`` refits it as the corpus grows) and saved with
``dump``; ``load`` gives back one that transforms exactly as the fitted one did.

A stored vector is its non-zero entries: int32 feature indices then float32 weights, 8
bytes each (a typical abstract has 100-200), about 1 KB per paper.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import pairwise
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.errors import StoreError
from bot.models import Paper

TFIDF = "tfidf"
# Enough features for tens of thousands of abstracts' words and word pairs.
MAX_FEATURES = 1 << 18
_ITEM = np.dtype("<i4").itemsize + np.dtype("<f4").itemsize


class Vectorizer(Protocol):
    """Text to L2-normalised sparse rows. A second backend (sentence embeddings) would
    implement the same four members."""

    kind: str

    @property
    def dimension(self) -> int: ...

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix: ...

    def feature_names(self) -> Sequence[str]: ...

    def dump(self) -> bytes: ...


def paper_text(title: str, abstract: str) -> str:
    """What a paper's vector is made of: the title counts twice, as it says most."""
    return f"{title}. {title}. {abstract}"


def vector_text(paper: Paper) -> str:
    return paper_text(paper.title, paper.abstract)


class TfidfBackend:
    """scikit-learn's ``TfidfVectorizer``, fitted."""

    kind = TFIDF

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self._v = vectorizer
        self._names: Sequence[str] | None = None

    @property
    def dimension(self) -> int:
        return len(self._v.vocabulary_)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.csr_matrix(self._v.transform(texts), dtype=np.float32)

    def feature_names(self) -> Sequence[str]:
        if self._names is None:
            self._names = [str(n) for n in self._v.get_feature_names_out()]
        return self._names

    def dump(self) -> bytes:
        buf = io.BytesIO()
        terms = np.array(self.feature_names(), dtype=np.str_)
        np.savez_compressed(buf, terms=terms, idf=np.asarray(self._v.idf_, dtype=np.float64))
        return buf.getvalue()


def _tfidf(vocabulary: dict[str, int] | None = None, *, min_df: int = 1) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        stop_words="english",
        strip_accents="unicode",
        min_df=min_df,
        max_df=0.5 if vocabulary is None else 1.0,
        max_features=MAX_FEATURES,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def fit_tfidf(texts: Sequence[str]) -> TfidfBackend:
    """Fit on ``texts`` (the corpus)."""
    return fit_transform_tfidf(texts)[0]


def fit_transform_tfidf(texts: Sequence[str]) -> tuple[TfidfBackend, sp.csr_matrix]:
    """Fit on ``texts`` and give their vectors, in one pass over the text. Words seen
    once are noise once there is enough text."""
    min_df = 2 if len(texts) >= 200 else 1
    vectorizer = _tfidf(min_df=min_df)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no word at all (every paper empty or only stop words)
        vectorizer = _tfidf(min_df=1)
        vectorizer.stop_words = None
        vectorizer.max_df = 1.0
        vectorizer.fit([*texts, "paper"])
        matrix = vectorizer.transform(texts)
    return TfidfBackend(vectorizer), sp.csr_matrix(matrix, dtype=np.float32)


def load_vectorizer(kind: str, state: bytes) -> Vectorizer:
    if kind != TFIDF:
        raise StoreError(f"stored vectorizer of unknown kind {kind!r}")
    with np.load(io.BytesIO(state), allow_pickle=False) as data:
        terms = [str(t) for t in data["terms"]]
        idf = data["idf"]
    vectorizer = _tfidf({t: i for i, t in enumerate(terms)})
    vectorizer.idf_ = idf
    return TfidfBackend(vectorizer)


def pack_rows(matrix: sp.csr_matrix) -> list[bytes]:
    """Each row's non-zero entries as bytes (indices in order, then weights)."""
    matrix.sort_indices()  # stored sorted, so a stacked matrix needs no sorting pass
    indices = np.asarray(matrix.indices, dtype="<i4")
    weights = np.asarray(matrix.data, dtype="<f4")
    return [indices[a:b].tobytes() + weights[a:b].tobytes() for a, b in pairwise(matrix.indptr)]


def stack(blobs: Sequence[bytes], dimension: int) -> sp.csr_matrix:
    """Stored vectors as the rows of one matrix (``dimension`` columns)."""
    indptr = np.zeros(len(blobs) + 1, dtype=np.int64)
    indices: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for i, blob in enumerate(blobs):
        n = len(blob) // _ITEM
        indices.append(np.frombuffer(blob, dtype="<i4", count=n))
        weights.append(np.frombuffer(blob, dtype="<f4", count=n, offset=4 * n))
        indptr[i + 1] = indptr[i] + n
    if not blobs:
        return sp.csr_matrix((0, dimension), dtype=np.float64)
    # float64: what liblinear and sparse products want, so neither copies the matrix.
    data = np.concatenate(weights).astype(np.float64)
    matrix = sp.csr_matrix((data, np.concatenate(indices), indptr), shape=(len(blobs), dimension))
    matrix.has_sorted_indices = True  # as pack_rows stored them
    return matrix
