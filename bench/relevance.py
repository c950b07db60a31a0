"""Benchmark learned relevance: ranking quality on labelled papers, and its speed.

    python bench/relevance.py           # full run (about half a minute)
    python bench/relevance.py --json    # one JSON object on stdout, with ``targets``

Quality. ``bench/data/topics.jsonl`` labels each of the 213 real listings of
tests/data/papers.jsonl with a topic, by hand from its title (interpretability,
reasoning, generative models, reinforcement learning, neuroscience, efficiency, physics,
architectures, emergence; "other" when none fits). The listings are stored in a SQLite
store the way the daemon stores them (vectors at ingest). Simulated readers, seeded: each
likes 3 papers of one topic and dislikes 3 of other topics through the store, then
``recommend`` (``load_ranker`` → ``Ranker.recommend``, the path of ``paperbell
recommend``) orders every paper they did not rate. Precision@k is the share of the top k
on the reader's topic. Compared with:

- random order: the expected precision of a shuffle (the topic's share of the unrated);
- keyword-only: the subscription a reader would type from the liked titles (their three
  commonest distinctive words, ORed), ordered by the matcher's score, the rest shuffled;
- reference: arxiv-sanity's recipe, a linear SVM (C=0.01, balanced) over the same stored
  TF-IDF vectors, liked papers against all others.

Speed (the issue's targets), on 2,000 recombined papers (bench/match_workload.py):
vectors for 2,000 new papers through ``vectorize_new`` into SQLite (a first fit: the
slowest case, as it fits the vocabulary too; wall time), training + scoring 2,000 papers
for one user (the model alone: ``train`` then ``scores``, in CPU time, the median of six
readers; also the whole ``load_ranker`` + ``rank`` with its SQLite reads, wall time, no
target; and ``load_ranker`` for a reader without feedback, what every message of such a
reader costs the dispatcher), and the bytes of a stored vector.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.svm import LinearSVC

from _corpus import corpus
from bot.matching.analysis import text_tokens
from bot.matching.matcher import Matcher
from bot.matching.query import parse_query
from bot.models import Paper, Sighting, SourceState
from bot.relevance.corpus import vectorize_new
from bot.relevance.model import train
from bot.relevance.ranking import load_ranker
from bot.relevance.vectors import stack
from bot.store.protocols import Rating, Store
from bot.store.sqlite.store import open_sqlite_store
from match_workload import recombined_papers

SEED = 20241113
TOPICS = Path(__file__).resolve().parent / "data" / "topics.jsonl"
READERS_PER_TOPIC = 6
MIN_TOPIC = 8  # 3 liked and at least 5 left to find
KS = (5, 10)
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SPEED_PAPERS = 2000


def labelled() -> tuple[list[Paper], dict[str, str]]:
    papers = [replace(p, published=NOW, first_seen=NOW) for p in corpus()]
    rows = [json.loads(line) for line in TOPICS.read_text(encoding="utf-8").splitlines()]
    topic = {papers[row["index"]].key: row["topic"] for row in rows}
    return papers, topic


def readers(topic: dict[str, str]) -> list[tuple[str, list[str], list[str]]]:
    """(topic, 3 liked, 3 disliked) per simulated reader, seeded."""
    rng = random.Random(SEED)
    by_topic: dict[str, list[str]] = {}
    for key, name in sorted(topic.items()):
        by_topic.setdefault(name, []).append(key)
    out = []
    for name, keys in sorted(by_topic.items()):
        if name == "other" or len(keys) < MIN_TOPIC:
            continue
        others = [k for k, t in sorted(topic.items()) if t not in (name, "other")]
        for _ in range(READERS_PER_TOPIC):
            out.append((name, rng.sample(keys, 3), rng.sample(others, 3)))
    return out


def precision(order: list[str], wanted: set[str], k: int) -> float:
    return sum(1 for key in order[:k] if key in wanted) / k


def keyword_order(
    papers: list[Paper], liked: list[str], rated: set[str], rng: random.Random
) -> list[str]:
    """What a keyword subscription built from the liked titles would rank."""
    titles = {p.key: p.title for p in papers}
    df = Counter(w for p in papers for w in set(text_tokens(p.title + " " + p.abstract)))
    counts = Counter(w for k in liked for w in set(text_tokens(titles[k])))
    usable = [
        w for w in counts if w not in ENGLISH_STOP_WORDS and len(w) > 2 and df[w] < len(papers) / 10
    ]
    words = sorted(usable, key=lambda w: (-counts[w], df[w], w))[:3] or ["model"]
    matcher = Matcher()
    matcher.add(0, parse_query(" OR ".join(words)))
    scored, rest = [], []
    for p in papers:
        if p.key in rated:
            continue
        found = matcher.match(p)
        (scored if found else rest).append((-(found[0].score if found else 0.0), p.key))
    rng.shuffle(rest)
    return [k for _, k in sorted(scored)] + [k for _, k in rest]


def svm_order(vectors: dict[str, bytes], dim: int, liked: list[str], rated: set[str]) -> list[str]:
    keys = list(vectors)
    x = stack([vectors[k] for k in keys], dim)
    y = np.array([1 if k in liked else 0 for k in keys])
    clf = LinearSVC(C=0.01, class_weight="balanced", max_iter=10_000).fit(x, y)
    scores = clf.decision_function(x)
    order = sorted(range(len(keys)), key=lambda i: (-scores[i], keys[i]))
    return [keys[i] for i in order if keys[i] not in rated]


async def quality(store: Store, papers: list[Paper], topic: dict[str, str]) -> dict[str, Any]:
    await store.ingest([Sighting(p) for p in papers], SourceState("hf"), NOW)
    await vectorize_new(store, NOW)
    vectors = await store.recent_vectors()
    dim = 1 + max(int(np.frombuffer(b, "<i4", len(b) // 8).max()) for b in vectors.values())
    rng = random.Random(SEED)
    scores: dict[str, dict[int, list[float]]] = {
        m: {k: [] for k in KS} for m in ("recommend", "random", "keyword", "svm_reference")
    }
    for n, (name, liked, disliked) in enumerate(readers(topic)):
        user = await store.get_or_create_user(discord_id=f"reader-{n}", now=NOW)
        ratings = dict.fromkeys(liked, Rating.LIKE) | dict.fromkeys(disliked, Rating.DISLIKE)
        await store.rate(user.id, ratings, NOW)
        ranker = await load_ranker(store, user.id)
        assert ranker is not None
        order = [r.key for r in await ranker.recommend(NOW - timedelta(days=7), len(papers))]
        rated = set(ratings)
        wanted = {k for k, t in topic.items() if t == name} - rated
        orders = {
            "recommend": order,
            "keyword": keyword_order(papers, liked, rated, rng),
            "svm_reference": svm_order(vectors, dim, liked, rated),
        }
        for k in KS:
            for method, o in orders.items():
                scores[method][k].append(precision(o, wanted, k))
            scores["random"][k].append(len(wanted) / (len(papers) - len(rated)))
    return {
        "readers": len(readers(topic)),
        "topics": sorted({t for t, _, _ in readers(topic)}),
        "precision": {
            m: {f"at_{k}": round(statistics.fmean(v), 3) for k, v in by_k.items()}
            for m, by_k in scores.items()
        },
    }


async def speed(folder: Path) -> dict[str, Any]:
    store = await open_sqlite_store(folder / "speed.db")
    try:
        papers = [
            replace(p, published=NOW, first_seen=NOW) for p in recombined_papers(SPEED_PAPERS)
        ]
        await store.ingest([Sighting(p) for p in papers], SourceState("hf"), NOW)
        start = time.perf_counter()
        done = await vectorize_new(store, NOW)
        vector_seconds = time.perf_counter() - start
        assert done.vectorized == SPEED_PAPERS
        vectors = await store.recent_vectors()
        blobs = list(vectors.values())
        model_ms, whole_ms = await _train_and_score(store, vectors, papers)
        nothing_ms = await _nothing_to_learn(store)
    finally:
        await store.close()
    nnz = [len(b) // 8 for b in blobs]
    return {
        "papers": SPEED_PAPERS,
        "vectorize_seconds": round(vector_seconds, 3),
        "train_and_score_ms": round(statistics.median(model_ms), 2),
        "load_rank_with_sqlite_ms": round(statistics.median(whole_ms), 1),
        "load_ranker_no_feedback_ms": round(statistics.median(nothing_ms), 3),
        "bytes_per_vector": round(statistics.fmean(len(b) for b in blobs), 1),
        "entries_per_vector": round(statistics.fmean(nnz), 1),
    }


async def _train_and_score(
    store: Store, vectors: dict[str, bytes], papers: list[Paper]
) -> tuple[list[float], list[float]]:
    keys = list(vectors)
    dim = 1 + max(int(np.frombuffer(b, "<i4", len(b) // 8).max()) for b in vectors.values())
    rows = stack([vectors[k] for k in keys], dim)
    rng = random.Random(SEED)
    model_ms, whole_ms = [], []
    for n in range(7):
        picks = rng.sample(range(len(keys)), 6)
        liked, disliked = picks[:3], picks[3:]
        rest = [i for i in range(len(keys)) if i not in picks]
        start = time.process_time()  # CPU time: other work on the machine adds none
        model = train(rows[liked], [keys[i] for i in liked], rows[disliked], rows[rest])
        model.relevance(model.scores(rows))
        model_ms.append((time.process_time() - start) * 1000)
        user = await store.get_or_create_user(discord_id=f"speed-{n}", now=NOW)
        ratings = {keys[i]: Rating.LIKE for i in liked} | {
            keys[i]: Rating.DISLIKE for i in disliked
        }
        await store.rate(user.id, ratings, NOW)
        start = time.perf_counter()
        ranker = await load_ranker(store, user.id)
        assert ranker is not None
        await ranker.rank([p.key for p in papers])
        whole_ms.append((time.perf_counter() - start) * 1000)
    return model_ms[1:], whole_ms[1:]  # the first pays for imports and caches


async def _nothing_to_learn(store: Store) -> list[float]:
    """What the dispatcher pays per message for a reader without 👍 or ``like:``."""
    user = await store.get_or_create_user(discord_id="speed-none", now=NOW)
    times = []
    for _ in range(21):
        start = time.perf_counter()
        assert await load_ranker(store, user.id) is None
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]


def targets(q: dict[str, Any], s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    p = q["precision"]
    rec, rand, kw, ref = (
        p[m]["at_10"] for m in ("recommend", "random", "keyword", "svm_reference")
    )
    return {
        "vectorize_2000_seconds": _target(s["vectorize_seconds"], 2.0, "< 2 s", lower=True),
        "train_and_score_2000_ms": _target(s["train_and_score_ms"], 50, "< 50 ms", lower=True),
        "precision_at_10_over_random": _target(rec / rand, 2.0, "≥ 2×"),
        "precision_at_10_over_keyword": _target(rec / kw if kw else float("inf"), 1.0, "≥ 1×"),
        "precision_at_10_over_svm_reference": _target(rec / ref, 0.95, "≥ 0.95×"),
    }


def _target(value: float, goal: float, text: str, lower: bool = False) -> dict[str, Any]:
    met = value < goal if lower else value >= goal
    return {"value": round(value, 3), "target": text, "met": met}


async def run() -> dict[str, Any]:
    papers, topic = labelled()
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_sqlite_store(Path(tmp) / "quality.db")
        try:
            q = await quality(store, papers, topic)
        finally:
            await store.close()
        s = await speed(Path(tmp))
    return {"seed": SEED, "quality": q, "speed": s, "targets": targets(q, s)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    report = asyncio.run(run())
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    q, s = report["quality"], report["speed"]
    lines = [
        f"paperbell relevance bench: {q['readers']} simulated readers over "
        f"{len(q['topics'])} topics, seed {report['seed']}",
        f"{'precision':18}{'@5':>8}{'@10':>8}",
    ]
    for method, by_k in q["precision"].items():
        lines.append(f"{method:18}{by_k['at_5']:>8.3f}{by_k['at_10']:>8.3f}")
    lines += [
        f"vectors for {s['papers']:,} new papers: {s['vectorize_seconds']:.2f} s (with a fit)",
        f"train + score {s['papers']:,} papers: {s['train_and_score_ms']:.1f} ms "
        f"(with SQLite reads: {s['load_rank_with_sqlite_ms']:.0f} ms)",
        f"a reader with nothing to learn from: {s['load_ranker_no_feedback_ms']:.2f} ms a message",
        f"stored vector: {s['bytes_per_vector']:.0f} bytes ({s['entries_per_vector']:.0f} entries)",
        "targets:",
    ]
    for name, t in report["targets"].items():
        verdict = "met" if t["met"] else "MISSED"
        lines.append(f"  {name:36}{t['value']:>10}  target {t['target']:9} {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
