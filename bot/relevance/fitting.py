"""Fitting TF-IDF with scikit-learn, in a worker process of its own.

scikit-learn and what it pulls in hold some 70 MB that a process never gives back, and
the daemon needs it only to learn a vocabulary, now and then: ``bot.relevance.corpus``
runs this module as a fresh process (``python -m bot.relevance.fitting``) that ends with
the fit, and takes back what it learnt (the vectorizer's dump) and the corpus's vectors;
the daemon never imports this module.
The daemon then transforms with ``bot.relevance.vectors.TfidfBackend`` in NumPy alone.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from bot.relevance.vectors import TfidfBackend

# Enough features for tens of thousands of abstracts' words and word pairs.
MAX_FEATURES = 1 << 18


def english_stop_words() -> frozenset[str]:
    return frozenset(ENGLISH_STOP_WORDS)


def _tfidf(*, min_df: int) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        stop_words="english",
        strip_accents="unicode",
        min_df=min_df,
        max_df=0.5,
        max_features=MAX_FEATURES,
        dtype=np.float32,
    )


def backend_of(vectorizer: TfidfVectorizer) -> TfidfBackend:
    """The NumPy transform of a fitted ``vectorizer``: same vocabulary, idf, stop words."""
    stop = vectorizer.get_stop_words() or ()
    terms = [str(n) for n in vectorizer.get_feature_names_out()]
    return TfidfBackend(terms, np.asarray(vectorizer.idf_, dtype=np.float64), stop)


def fit_sklearn(texts: Sequence[str]) -> tuple[TfidfVectorizer, sp.csr_matrix]:
    """scikit-learn's vectorizer fitted on ``texts``, and their vectors. Words seen once
    are noise once there is enough text."""
    vectorizer = _tfidf(min_df=2 if len(texts) >= 200 else 1)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no word at all (every paper empty or only stop words)
        vectorizer = _tfidf(min_df=1)
        vectorizer.stop_words = None
        vectorizer.max_df = 1.0
        vectorizer.fit([*texts, "paper"])
        matrix = vectorizer.transform(texts)
    return vectorizer, sp.csr_matrix(matrix, dtype=np.float32)


def fit_transform_tfidf(texts: Sequence[str]) -> tuple[TfidfBackend, sp.csr_matrix]:
    """Fit on ``texts`` (the corpus) and give their vectors, in one pass over the text."""
    vectorizer, matrix = fit_sklearn(texts)
    return backend_of(vectorizer), matrix


def fit_tfidf(texts: Sequence[str]) -> TfidfBackend:
    return fit_transform_tfidf(texts)[0]


def fit_job(texts: Sequence[str]) -> bytes:
    """The worker's job: the fitted vectorizer's dump and the texts' vectors, as one npz."""
    backend, matrix = fit_transform_tfidf(texts)
    matrix.sort_indices()
    buf = io.BytesIO()
    dump = np.frombuffer(backend.dump(), dtype=np.uint8)
    np.savez(buf, dump=dump, indptr=matrix.indptr, indices=matrix.indices, data=matrix.data)
    return buf.getvalue()


def main() -> None:
    """``python -m bot.relevance.fitting``: texts as a JSON list on stdin, npz on stdout."""
    texts = json.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(fit_job(texts))


if __name__ == "__main__":
    main()
