"""Every stored paper gets its vector once: ``vectorize_new`` runs before each match step.

The vocabulary is fitted on the stored corpus and refitted when the corpus has grown by
``REFIT_GROWTH`` since the last fit (so refits get rarer as it grows: their cost stays a
small share of ingest); a refit re-vectorizes every paper in the same transaction, so all
stored vectors always share one vocabulary. Otherwise only papers without a vector are
transformed. The CPU work runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import scipy.sparse as sp

from bot.relevance.vectors import (
    Vectorizer,
    fit_transform_tfidf,
    load_vectorizer,
    pack_rows,
    paper_text,
)
from bot.store.protocols import Store, VectorizerState

REFIT_GROWTH = 1.25
# Papers transformed per store round trip, and at most in one fit (newest first).
PAGE = 5000
MAX_FIT = 50_000


@dataclass(frozen=True, slots=True)
class VectorReport:
    vectorized: int
    refitted: bool


async def current_vectorizer(store: Store) -> tuple[VectorizerState, Vectorizer] | None:
    state = await store.vectorizer_state()
    if state is None:
        return None
    return state, load_vectorizer(state.kind, state.state)


async def vectorize_new(store: Store, now: datetime) -> VectorReport:
    """Vectors for every paper that lacks one; refit first if the corpus outgrew the fit."""
    state = await store.vectorizer_state()
    total = await store.count_papers()
    done, refitted = 0, False
    if total and (state is None or total >= state.n_docs * REFIT_GROWTH):
        version = 1 if state is None else state.version + 1
        done, refitted = await refit(store, now, version, total), True
        if done >= total:
            return VectorReport(done, refitted)  # every paper has its vector already
        state = await store.vectorizer_state()
    if state is None:
        return VectorReport(0, False)
    vectorizer = await asyncio.to_thread(load_vectorizer, state.kind, state.state)
    while rows := await store.paper_texts(missing_vectors=True, limit=PAGE):
        vectors = await asyncio.to_thread(_vectors, vectorizer, rows)
        if not await store.save_vectors(state.version, vectors):
            break  # another process refitted meanwhile: it vectorized these too
        done += len(vectors)
        if len(rows) < PAGE:
            break
    return VectorReport(done, refitted)


async def refit(store: Store, now: datetime, version: int, corpus: int) -> int:
    """Fit on the newest ``MAX_FIT`` papers and vectorize them; older ones follow in
    ``vectorize_new``'s pages. ``corpus``: how many are stored, what the next refit is
    measured against."""
    rows = await store.paper_texts(missing_vectors=False, limit=MAX_FIT)
    texts = [paper_text(title, abstract) for _, title, abstract in rows]
    vectorizer, matrix = await asyncio.to_thread(fit_transform_tfidf, texts)
    vectors = dict(zip((key for key, _, _ in rows), pack_rows(matrix), strict=True))
    dump = await asyncio.to_thread(vectorizer.dump)
    state = VectorizerState(version, vectorizer.kind, corpus, now, dump)
    await store.replace_vectorizer(state, vectors)
    return len(vectors)


def _vectors(vectorizer: Vectorizer, rows: list[tuple[str, str, str]]) -> dict[str, bytes]:
    matrix: sp.csr_matrix = vectorizer.transform([paper_text(t, a) for _, t, a in rows])
    return dict(zip((key for key, _, _ in rows), pack_rows(matrix), strict=True))
