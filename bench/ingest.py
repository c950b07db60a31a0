"""How fast paperbell stores papers: SqliteStore.ingest against plain sqlite3 executemany.

    python bench/ingest.py [--n 5000] [--batch 500] [--repeat 3] [--json]

Builds N papers deterministically from tests/data/papers.jsonl (real titles and abstracts,
synthetic arXiv ids, authors, categories and dates), then times, each into a fresh
temporary database and in batches like a real source:

* plain sqlite3 executemany of pre-encoded rows into the same papers table without the
  FTS index, and with it (our migration's triggers) — the floor SQLite itself sets;
* paperbell's path: ``SqliteStore.ingest`` (read existing keys, merge, encode, write, FTS,
  save source state) — every paper new;
* the same batches again — every paper unchanged, the steady state of a source polled often;
* the same papers from HF with new upvote counts — every row updated, no text re-indexed.

Each figure is the best of ``--repeat`` runs. Target: >= 3,000 papers/s on paperbell's path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _corpus import CORPUS
from bot.models import Links, Paper, Sighting, SourceState
from bot.store.sqlite import _codec as codec
from bot.store.sqlite.schema import load_migrations
from bot.store.sqlite.store import open_sqlite_store

TARGET = 3000.0
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIRST_NAMES = ["Ada", "Jürgen", "Przemysław", "Stéphan", "Mei", "Olu", "Björn", "Ana", "Kenji"]
LAST_NAMES = ["Lovelace", "Müller", "Nowak", "Dubois", "Wang", "Adeyemi", "Lütjens", "Araujo"]
CATEGORIES = ["cs.LG", "cs.CL", "cs.AI", "cs.CV", "stat.ML", "cs.IR", "math.OC", "q-bio.NC"]


@dataclass(frozen=True)
class Figure:
    name: str
    seconds: float
    papers: int

    @property
    def rate(self) -> float:
        return self.papers / self.seconds if self.seconds else float("inf")


# --- the papers -------------------------------------------------------------------------------


def load_corpus(path: Path = CORPUS) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def build_papers(n: int, seed: int = 2026) -> list[Paper]:
    """N distinct, realistic papers; the same N and seed always give the same papers."""
    corpus, rng = load_corpus(), random.Random(seed)
    return [_paper(i, corpus[i % len(corpus)], rng) for i in range(n)]


def _paper(i: int, item: dict[str, str], rng: random.Random) -> Paper:
    key = f"26{1 + i % 12:02d}.{i:05d}"
    round_ = i // 213  # past the corpus, vary the title so rows are not identical
    title = item["title"] + (f" (study {round_})" if round_ else "")
    authors = tuple(
        f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" for _ in range(rng.randint(1, 12))
    )
    published = NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
    return Paper(
        key=key,
        title=title,
        abstract=item["abstract"],
        version=rng.randint(1, 3),
        authors=authors,
        categories=tuple(rng.sample(CATEGORIES, rng.randint(1, 3))),
        published=published,
        updated=published,
        links=Links(abs=f"https://arxiv.org/abs/{key}", pdf=f"https://arxiv.org/pdf/{key}"),
        sources=("arxiv",),
        first_seen=NOW,
    )


def batches(items: list[Paper], size: int) -> Iterator[list[Paper]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the measurements -------------------------------------------------------------------------


@contextmanager
def fresh_db() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="paperbell-bench-") as tmp:
        yield Path(tmp) / "bench.db"


def plain_executemany(papers: list[Paper], batch: int, *, fts: bool) -> float:
    """Seconds for sqlite3 executemany of pre-encoded rows, one transaction per batch."""
    columns = ", ".join(codec.PAPER_COLUMNS)
    sql = f"INSERT INTO papers ({columns}, updated_at) VALUES ({', '.join('?' * 18)})"
    stamp = codec.iso(NOW)
    rows = [(p.key, *codec.paper_values(p), stamp) for p in papers]
    with fresh_db() as path:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            _plain_schema(db, fts=fts)
            started = time.perf_counter()
            for start in range(0, len(rows), batch):
                db.execute("BEGIN IMMEDIATE")
                db.executemany(sql, rows[start : start + batch])
                db.execute("COMMIT")
            return time.perf_counter() - started
        finally:
            db.close()


def _plain_schema(db: sqlite3.Connection, *, fts: bool) -> None:
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    for migration in load_migrations():
        db.executescript(migration.sql)
    if not fts:
        for trigger in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER papers_fts_after_{trigger}")


async def paperbell_ingest(papers: list[Paper], batch: int) -> tuple[float, ...]:
    """Seconds for SqliteStore.ingest of every paper: as new, again unchanged, then with
    new upvote counts (updated rows whose text, and so whose FTS entry, stays put)."""
    voted = [replace(p, upvotes=i % 97, sources=("hf",)) for i, p in enumerate(papers)]
    with fresh_db() as path:
        store = await open_sqlite_store(path)
        try:
            timings = []
            for run in (papers, papers, voted):
                started = time.perf_counter()
                for chunk in batches(run, batch):
                    await store.ingest([Sighting(p) for p in chunk], SourceState("bench"), NOW)
                timings.append(time.perf_counter() - started)
            return tuple(timings)
        finally:
            await store.close()


def best_of(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def measure(n: int, batch: int, repeat: int) -> list[Figure]:
    papers = build_papers(n)
    plain = best_of(repeat, lambda: plain_executemany(papers, batch, fts=False))
    plain_fts = best_of(repeat, lambda: plain_executemany(papers, batch, fts=True))
    runs = [asyncio.run(paperbell_ingest(papers, batch)) for _ in range(repeat)]
    return [
        Figure("plain sqlite3 executemany, no FTS", plain, n),
        Figure("plain sqlite3 executemany, with FTS", plain_fts, n),
        Figure("paperbell SqliteStore.ingest, all new", min(r[0] for r in runs), n),
        Figure("paperbell SqliteStore.ingest, all unchanged", min(r[1] for r in runs), n),
        Figure("paperbell SqliteStore.ingest, upvotes changed", min(r[2] for r in runs), n),
    ]


# --- output -----------------------------------------------------------------------------------


def as_json(figures: list[Figure], n: int, batch: int, repeat: int) -> str:
    new = figures[2].rate
    return json.dumps(
        {
            "n": n,
            "batch": batch,
            "repeat": repeat,
            "sqlite_version": sqlite3.sqlite_version,
            "python": sys.version.split()[0],
            "results": [
                {"name": f.name, "seconds": round(f.seconds, 4), "papers_per_s": round(f.rate)}
                for f in figures
            ],
            "target_papers_per_s": TARGET,
            "meets_target": new >= TARGET,
        }
    )


def as_table(figures: list[Figure], n: int, batch: int) -> str:
    width = max(len(f.name) for f in figures)
    lines = [
        f"{n} papers in batches of {batch}, SQLite {sqlite3.sqlite_version}, "
        f"Python {sys.version.split()[0]}",
        f"{'path':<{width}}  {'seconds':>8}  {'papers/s':>9}",
    ]
    lines += [f"{f.name:<{width}}  {f.seconds:>8.3f}  {f.rate:>9,.0f}" for f in figures]
    new = figures[2].rate
    verdict = "meets" if new >= TARGET else "MISSES"
    lines.append(f"paperbell's path {verdict} the target of {TARGET:,.0f} papers/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000, help="papers to store (default 5000)")
    parser.add_argument("--batch", type=int, default=500, help="papers per ingest (500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best kept")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if min(args.n, args.batch, args.repeat) < 1:
        parser.error("--n, --batch and --repeat must be at least 1")
    figures = measure(args.n, args.batch, args.repeat)
    if args.json:
        print(as_json(figures, args.n, args.batch, args.repeat))
    else:
        print(as_table(figures, args.n, args.batch))
    return 0 if figures[2].rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
