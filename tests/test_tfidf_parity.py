"""The NumPy TF-IDF transform gives scikit-learn's vectors to the bit, for what it fitted."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import InternalError
from bot.relevance.corpus import fit_in_worker
from bot.relevance.fitting import backend_of, fit_sklearn, fit_transform_tfidf
from bot.relevance.vectors import load_vectorizer, pack_rows, vector_text
from tests.support_outbox import NOW
from tests.support_relevance import dated_corpus

# Topic words, stop words, accents, digits, one-letter words and odd spacing.
WORDS = [
    "diffusion", "models", "graph", "neural", "the", "of", "and", "is", "a", "x",
    "café", "Café", "naïve", "Über", "ﬁne", "résumé", "2024", "x2", "GPU", "gpu",
    "self-supervised", "learning", "über", "Ångström", "ω", "under_score", "it's",
]  # fmt: skip
SEPARATORS = [" ", ", ", ".\n", "  ", "-"]
piece = st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)).map("".join)
text = st.lists(piece, max_size=40).map("".join)


def assert_same(ours: sp.csr_matrix, theirs: sp.csr_matrix) -> None:
    theirs = sp.csr_matrix(theirs, dtype=np.float32)
    theirs.sort_indices()
    assert ours.shape == theirs.shape
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert ours.data.dtype == np.float32
    assert np.array_equal(ours.data.view(np.uint32), theirs.data.view(np.uint32))  # bits


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus=st.lists(text, min_size=1, max_size=30), later=st.lists(text, max_size=10))
def test_numpy_transform_is_scikit_learns_to_the_bit(corpus: list[str], later: list[str]) -> None:
    vectorizer, _ = fit_sklearn(corpus)
    ours = backend_of(vectorizer)
    loaded = load_vectorizer(ours.kind, ours.dump())
    assert ours.transform([]).shape == (0, ours.dimension)
    for texts in (corpus, later) if later else (corpus,):
        theirs = vectorizer.transform(texts)
        assert_same(ours.transform(texts), theirs)
        assert_same(loaded.transform(texts), theirs)
        assert ours.transform_packed(texts) == pack_rows(ours.transform(texts))


def test_real_listings_and_the_fit_agree() -> None:
    texts = [vector_text(p) for p in dated_corpus(NOW)]
    vectorizer, fitted = fit_sklearn(texts)
    assert_same(backend_of(vectorizer).transform(texts), fitted)
    assert vectorizer.get_stop_words()  # the English stop words are in the dump too


async def test_the_worker_process_fits_as_in_process() -> None:
    texts = [vector_text(p) for p in dated_corpus(NOW)[:80]]
    dump, packed = await fit_in_worker(texts)
    backend, matrix = fit_transform_tfidf(texts)
    assert dump == backend.dump()
    assert packed == pack_rows(matrix)


@pytest.mark.parametrize("output", ["not a zip", ""])
async def test_a_fit_whose_output_is_spoilt_fails_in_one_clear_line(output: str) -> None:
    """A worker that exits 0 yet writes something else (a hook printing to stdout)."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import sys; sys.stdin.read(); print({output!r}, end='')",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    with pytest.raises(InternalError, match=r"output is unreadable .*; the next match step fits"):
        await fit_in_worker(["a text"], worker)


def test_the_daemon_never_imports_scikit_learn() -> None:
    code = (
        "import sys, bot.daemon.run, bot.matching.step, bot.delivery.dispatcher, "
        "handlers.email.smtp; print(sorted(m for m in sys.modules if m.startswith('sklearn')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# The match step of a daemon whose readers have no like: targets: new papers get their
# vectors, the next get theirs from the stored vocabulary, and nothing loads SciPy (8 MB
# of the daemon's memory; only ranking and like: comparisons need sparse products).
_MATCH_PATH = """
import asyncio, sys, tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from bot.matching.step import SubscriptionIndex, match_cycle
from bot.delivery.planning import plan_matches
from bot.models import Sighting, SourceState
from bot.store.sqlite.store import open_sqlite_store
from tests.support_relevance import dated_corpus

async def main() -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    papers = dated_corpus(now)
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_sqlite_store(Path(tmp) / "p.db")
        index = SubscriptionIndex()
        for day, batch in enumerate((papers[:190], papers[190:])):
            at = now + timedelta(days=day)
            await store.ingest([Sighting(p) for p in batch], SourceState("hf"), at)
            await match_cycle(index, store, at, plan_matches)
        missing = await store.get_vectors([p.key for p in papers])
        await store.close()
    print(len(missing), sorted(m for m in sys.modules if m.startswith("scipy"))[:3])

asyncio.run(main())
"""


def test_the_match_step_vectorizes_without_scipy() -> None:
    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-c", _MATCH_PATH]
    done = subprocess.run(run, capture_output=True, text=True, check=False, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split(" ", 1) == [str(len(dated_corpus(NOW))), "[]\n"]
