"""Paper vectors: the ``Vectorizer`` interface, TF-IDF behind it, and the stored byte form.

TF-IDF follows arxiv-sanity's recipe: word 1-2-grams, sublinear tf, English stop words,
rows L2-normalised (so a dot product is the cosine). scikit-learn fits it on the stored
corpus, in a worker process (``bot.relevance.fitting``; ``bot.relevance.corpus`` refits
as the corpus grows); what it learnt is saved with ``dump``, and ``load_vectorizer`` gives
back a NumPy transform that gives the very same vectors.

A stored vector is its non-zero entries: int32 feature indices then float32 weights, 8
bytes each (a typical abstract has 100-200), about 1 KB per paper.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, pairwise
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # imported where a matrix is built: SciPy adds 8 MB to the daemon
    import scipy.sparse as sp

from bot.errors import StoreError
from bot.models import Paper

TFIDF = "tfidf"
_ITEM = np.dtype("<i4").itemsize + np.dtype("<f4").itemsize


class Vectorizer(Protocol):
    """Text to L2-normalised sparse rows. A second backend (sentence embeddings) would
    implement the same five members."""

    kind: str

    @property
    def dimension(self) -> int: ...

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix: ...

    def transform_packed(self, texts: Sequence[str]) -> list[bytes]:
        """``pack_rows(transform(texts))``, as stored (without building the matrix)."""
        ...

    def feature_names(self) -> Sequence[str]: ...

    def dump(self) -> bytes: ...


def paper_text(title: str, abstract: str) -> str:
    """What a paper's vector is made of: the title counts twice, as it says most."""
    return f"{title}. {title}. {abstract}"


def vector_text(paper: Paper) -> str:
    return paper_text(paper.title, paper.abstract)


class TfidfBackend:
    """A fitted TF-IDF transform in NumPy: the vocabulary, idf and stop words that
    scikit-learn's ``TfidfVectorizer`` learnt (``bot.relevance.fitting``), applied as it
    applies them, to the bit (tests/test_tfidf_parity.py), without importing it: the
    daemon's match path stays clear of scikit-learn's memory."""

    kind = TFIDF

    def __init__(self, terms: Sequence[str], idf: np.ndarray, stop_words: Iterable[str]) -> None:
        self._names = [str(t) for t in terms]
        self._vocabulary = {t: i for i, t in enumerate(self._names)}
        self._idf = np.asarray(idf, dtype=np.float64)
        self._stop = frozenset(stop_words)

    @property
    def dimension(self) -> int:
        return len(self._names)

    def feature_names(self) -> Sequence[str]:
        return self._names

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        import scipy.sparse as sp

        data, columns, indptr = self._rows(texts)
        shape = (len(texts), self.dimension)
        matrix = sp.csr_matrix((data, columns, np.asarray(indptr, dtype=np.int32)), shape=shape)
        matrix.has_sorted_indices = True
        return matrix

    def transform_packed(self, texts: Sequence[str]) -> list[bytes]:
        """What the match step stores for each new paper; SciPy stays unloaded."""
        data, columns, indptr = self._rows(texts)
        return pack_arrays(indptr, columns, data)

    def _rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """The weights, column indices (sorted in each row) and row bounds."""
        indptr, indices, counts = [0], [], []
        for text in texts:
            found = Counter(self._features(text))
            for index in sorted(found):
                indices.append(index)
                counts.append(found[index])
            indptr.append(len(indices))
        data = np.asarray(counts, dtype=np.float32)
        columns = np.asarray(indices, dtype=np.int32)
        np.log(data, data)  # sublinear tf, in float32 as scikit-learn computes it
        data += 1.0
        data *= self._idf[columns]
        _normalise_rows(data, indptr)
        return data, columns, indptr

    def _features(self, text: str) -> Iterator[int]:
        """Vocabulary indices of the words and word pairs (stop words dropped first)."""
        words = [w for w in _TOKEN.findall(_fold(text)) if w not in self._stop]
        vocabulary = self._vocabulary
        for term in chain(words, map(" ".join, pairwise(words))):
            index = vocabulary.get(term)
            if index is not None:
                yield index

    def dump(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            terms=np.array(self._names, dtype=np.str_),
            idf=self._idf,
            stop_words=np.array(sorted(self._stop), dtype=np.str_),
        )
        return buf.getvalue()


_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _fold(text: str) -> str:
    """Lower case without accents, as ``strip_accents="unicode"`` folds."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    if decomposed == text:
        return text
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _normalise_rows(data: np.ndarray, indptr: Sequence[int]) -> None:
    """Each row to unit L2 norm in place: float32 squares summed in order in float64,
    each weight divided in float64, as scikit-learn's ``normalize`` does."""
    squares = (data * data).astype(np.float64)
    for a, b in pairwise(indptr):
        if a == b:
            continue
        total = float(np.cumsum(squares[a:b])[-1])  # a running sum: the order counts
        if total != 0.0:
            data[a:b] = data[a:b].astype(np.float64) / math.sqrt(total)


def load_vectorizer(kind: str, state: bytes) -> Vectorizer:
    if kind != TFIDF:
        raise StoreError(f"stored vectorizer of unknown kind {kind!r}")
    with np.load(io.BytesIO(state), allow_pickle=False) as data:
        terms = [str(t) for t in data["terms"]]
        idf = data["idf"]
        stop = [str(w) for w in data["stop_words"]] if "stop_words" in data else None
    if stop is None:  # saved before the stop words were: they were always English then
        from bot.relevance.fitting import english_stop_words

        stop = list(english_stop_words())
    return TfidfBackend(terms, idf, stop)


def pack_rows(matrix: sp.csr_matrix) -> list[bytes]:
    """Each row's non-zero entries as bytes (indices in order, then weights)."""
    matrix.sort_indices()  # stored sorted, so a stacked matrix needs no sorting pass
    return pack_arrays(matrix.indptr, matrix.indices, matrix.data)


def pack_arrays(indptr: Sequence[int], indices: np.ndarray, weights: np.ndarray) -> list[bytes]:
    """``pack_rows`` of a CSR matrix given as its arrays (indices sorted in each row)."""
    ints = np.asarray(indices, dtype="<i4")
    floats = np.asarray(weights, dtype="<f4")
    return [ints[a:b].tobytes() + floats[a:b].tobytes() for a, b in pairwise(indptr)]


def stack(blobs: Sequence[bytes], dimension: int) -> sp.csr_matrix:
    """Stored vectors as the rows of one matrix (``dimension`` columns)."""
    import scipy.sparse as sp

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
