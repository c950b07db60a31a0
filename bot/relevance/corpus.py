"""Every stored paper gets its vector once: ``vectorize_new`` runs before each match step.

The vocabulary is fitted on the stored corpus and refitted when the corpus has grown by
``REFIT_GROWTH`` since the last fit (so refits get rarer as it grows: their cost stays a
small share of ingest); a refit re-vectorizes every paper in the same transaction, so all
stored vectors always share one vocabulary. Otherwise only papers without a vector are
transformed. A fit runs in a process of its own (``bot.relevance.fitting``: scikit-learn's
memory leaves with it), a transform in a worker thread, both off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

import numpy as np

from bot.errors import InternalError
from bot.relevance.vectors import TFIDF, Vectorizer, load_vectorizer, pack_arrays, paper_text
from bot.store.protocols import Store, VectorizerInfo, VectorizerState

REFIT_GROWTH = 1.25
# Papers transformed per store round trip, and at most in one fit (newest first).
PAGE = 5000
MAX_FIT = 50_000


@dataclass(frozen=True, slots=True)
class VectorReport:
    vectorized: int
    refitted: bool


# The vectorizer last loaded from each store, with the fit it is: rankings need it for
# every message, and loading it means reading and parsing a large blob.
_LOADED: WeakKeyDictionary[Store, tuple[VectorizerInfo, Vectorizer]] = WeakKeyDictionary()


async def loaded_vectorizer(store: Store, info: VectorizerInfo) -> Vectorizer | None:
    """The fitted vectorizer ``info`` describes, read from ``store`` once per fit (None
    before the first fit). After a refit elsewhere, the newer one is loaded."""
    cached = _LOADED.get(store)
    if cached is not None and cached[0] == info:
        return cached[1]
    state = await store.vectorizer_state()
    if state is None:
        return None
    vectorizer = await asyncio.to_thread(load_vectorizer, state.kind, state.state)
    _LOADED[store] = (state.info, vectorizer)
    return vectorizer


async def vectorize_new(store: Store, now: datetime) -> VectorReport:
    """Vectors for every paper that lacks one; refit first if the corpus outgrew the fit.
    With nothing to do, two small reads: the fitted vectorizer's state is not read."""
    info = await store.vectorizer_info()
    total = await store.count_papers()
    done, refitted = 0, False
    if total and (info is None or total >= info.n_docs * REFIT_GROWTH):
        version = 1 if info is None else info.version + 1
        done, refitted = await refit(store, now, version, total), True
        if done >= total:
            return VectorReport(done, refitted)  # every paper has its vector already
        info = await store.vectorizer_info()
    rows = await store.paper_texts(missing_vectors=True, limit=PAGE) if info else []
    vectorizer = await loaded_vectorizer(store, info) if info and rows else None
    while vectorizer is not None and info is not None and rows:
        vectors = await asyncio.to_thread(_vectors, vectorizer, rows)
        if not await store.save_vectors(info.version, vectors):
            break  # another process refitted meanwhile: it vectorized these too
        done += len(vectors)
        if len(rows) < PAGE:
            break
        rows = await store.paper_texts(missing_vectors=True, limit=PAGE)
    return VectorReport(done, refitted)


async def refit(store: Store, now: datetime, version: int, corpus: int) -> int:
    """Fit on the newest ``MAX_FIT`` papers and vectorize them; older ones follow in
    ``vectorize_new``'s pages. ``corpus``: how many are stored, what the next refit is
    measured against."""
    worker = await start_fit()
    try:
        rows = await store.paper_texts(missing_vectors=False, limit=MAX_FIT)
    except BaseException:
        await _stop(worker)
        raise
    texts = [paper_text(title, abstract) for _, title, abstract in rows]
    dump, packed = await fit_in_worker(texts, worker)
    vectors = dict(zip((key for key, _, _ in rows), packed, strict=True))
    state = VectorizerState(version, TFIDF, corpus, now, dump)
    await store.replace_vectorizer(state, vectors)
    return len(vectors)


def _vectors(vectorizer: Vectorizer, rows: list[tuple[str, str, str]]) -> dict[str, bytes]:
    packed = vectorizer.transform_packed([paper_text(t, a) for _, t, a in rows])
    return dict(zip((key for key, _, _ in rows), packed, strict=True))


async def start_fit() -> asyncio.subprocess.Process:
    """The fitting process (``bot.relevance.fitting``), started early: it imports
    scikit-learn while the texts are read."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.relevance.fitting",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def fit_in_worker(
    texts: list[str], worker: asyncio.subprocess.Process | None = None
) -> tuple[bytes, list[bytes]]:
    """The fit in a process of its own, so scikit-learn's memory leaves with it: the
    fitted vectorizer's dump and each text's stored vector."""
    worker = worker or await start_fit()
    try:
        out, err = await worker.communicate(json.dumps(texts).encode())
    except BaseException:  # cancelled (the daemon stopping): no orphan left fitting
        await _stop(worker)
        raise
    if worker.returncode:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise InternalError(f"the TF-IDF fit failed (exit {worker.returncode}): {last[0]}")
    try:
        with np.load(io.BytesIO(out), allow_pickle=False) as data:
            dump = data["dump"].tobytes()
            indptr, indices, weights = data["indptr"], data["indices"], data["data"]
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError) as exc:
        # Its stdout is ours alone, but something in its way (a debugger, a site hook
        # printing) can still spoil it: one clear line, not numpy's traceback.
        why = f"the TF-IDF fit's output is unreadable ({exc}); the next match step fits again"
        raise InternalError(why) from exc
    return dump, pack_arrays(indptr, indices, weights)  # the fit sorted each row's indices


async def _stop(worker: asyncio.subprocess.Process) -> None:
    if worker.returncode is None:
        worker.kill()
        await worker.wait()
