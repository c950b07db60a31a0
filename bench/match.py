"""Benchmark the subscription matcher against its peers at 1k, 10k and 100k subscriptions.

    python bench/match.py           # full run, a few minutes on 2 cores
    python bench/match.py --quick   # smoke run: fewer papers, 1k and 10k subscriptions
    python bench/match.py --json    # one JSON object on stdout instead of the table

Workload: see bench/match_workload.py (real text recombined, seeded subscriptions).
Every method starts from the ``Paper`` and pays for its own analysis. Figures are papers
per CPU second (``time.process_time``), each the best of up to three runs: other work on
a shared machine only ever adds time.

- paperbell: ``analyze_paper`` + ``Matcher.match_ids``; "with words and score" is the
  daemon's path (``match_groups``): every subscription matched, as one list of ids per
  explanation (the queries that proved the same words) with its words and score, which
  the match step sorts by owner; "a Match per hit" adds one ``Match`` per subscription,
  sorted by id (``match_terms``, for callers that want a flat list).
- check every subscription: analyse the paper, evaluate every compiled subscription.
- SQLite FTS5 / Tantivy: index the batch, then one query per subscription.
- Hyperscan: every subscription's words in one pattern database, each paper scanned once
  (no query logic: the multi-pattern speed limit).
- floor: fold, tokenize and stem title and abstract (the analysis any matcher of this
  language needs), then walk the paper's known hits (a Python loop over them): what any
  matcher must at least do.

Slow methods run on a sample (labelled): check-every on some papers, FTS5 and Tantivy on
some subscriptions with the query time scaled to all of them. Memory is the growth of
traced allocations (tracemalloc) while adding the subscriptions and matching a first
paper (the index's numpy snapshot), per subscription. The cyclic GC is frozen after
set-up (the daemon freezes what it loads, ``bot/memory.py``) and off while a method runs,
as in the daemon's match step (``bot/matching/step.py``), for every method alike: else
collections over the results gathered so far, which the daemon writes away chunk by
chunk, would land inside the timing. The bench asserts that paperbell, check-every, FTS5
and Tantivy return the same hits.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _corpus import load_corpus
from bot.matching.analysis import (
    PaperTerms,
    analyze_paper,
    key_frequencies,
    term_key,
    text_tokens,
)
from bot.matching.matcher import Matcher
from bot.matching.program import evaluate
from bot.matching.query import Query
from bot.memory import cyclic_gc_off
from bot.models import Paper
from match_peers import Fts5, Hyperscan, Tantivy
from match_workload import SEED, mid_frequency, recombined_papers, subscriptions

METHODS = {
    "paperbell": "paperbell matcher",
    "paperbell_full": "paperbell with words and score",
    "paperbell_matches": "paperbell, a Match per hit",
    "check_every": "check every subscription",
    "fts5": "SQLite FTS5, a query per sub",
    "tantivy": "Tantivy, a query per sub",
    "hyperscan": "Hyperscan, all words at once",
    "floor": "floor: tokenize, stem, walk hits",
}


@dataclass(frozen=True)
class Config:
    papers: int
    sizes: tuple[int, ...]
    evaluations: int  # check-every budget: papers x subscriptions
    peer_subs: int  # FTS5/Tantivy: subscriptions actually run


FULL = Config(
    papers=1200,
    sizes=(1_000, 10_000, 100_000),
    evaluations=3_000_000,
    peer_subs=10_000,
)
QUICK = Config(papers=300, sizes=(1_000, 10_000), evaluations=300_000, peer_subs=1_000)


@dataclass
class Figures:
    subscriptions: int
    papers_per_second: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    hits_per_paper: float = 0.0
    bytes_per_subscription: float = 0.0
    build_seconds: float = 0.0


def cpu_seconds(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of ``fn()``, the cyclic GC off as in the daemon's match step."""
    with cyclic_gc_off():
        start = time.process_time()
        result = fn()
        return time.process_time() - start, result


RUNS = 3
BUDGET = 6.0  # seconds per measurement, beyond which it is not repeated


def best(fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of up to ``RUNS`` runs (one, if a run takes ``BUDGET``): other work on
    the machine only ever adds time. Every method is measured this way."""
    times: list[float] = []
    result: Any = None
    while len(times) < RUNS and sum(times) < BUDGET:
        secs, result = cpu_seconds(fn)
        times.append(secs)
    return min(times), result


def build(
    queries: Sequence[Query], weights: dict[Any, float], first: PaperTerms
) -> tuple[Matcher, float, float]:
    """The matcher, its build time, and bytes per subscription (a second, traced build).
    Both include matching ``first``: the index lays itself out for its walk (a numpy
    snapshot) at the first paper, and that is part of what it costs."""
    matcher = Matcher(weights)

    def add_all() -> None:
        for i, q in enumerate(queries):
            matcher.add(i, q)
        matcher.match_ids(first)

    seconds, _ = cpu_seconds(add_all)
    traced = Matcher(weights)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, q in enumerate(queries):
        traced.add(i, q)
    traced.match_ids(first)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del traced
    return matcher, seconds, grown / len(queries)


def run_size(
    n: int, queries: list[Query], papers: list[Paper], weights: dict[Any, float], cfg: Config
) -> Figures:
    fig = Figures(n)
    first = analyze_paper(papers[0])
    matcher, fig.build_seconds, fig.bytes_per_subscription = build(queries, weights, first)
    programs = list(matcher.programs())
    hs = Hyperscan(queries)
    gc.collect()
    gc.freeze()
    rate = fig.papers_per_second
    secs, found = best(lambda: [matcher.match_ids(analyze_paper(p)) for p in papers])
    rate["paperbell"] = len(papers) / secs
    hits = [set(ids) for ids in found]
    del found
    fig.hits_per_paper = sum(map(len, hits)) / len(papers)
    _full(matcher, papers, hits, fig)
    _floor(papers, hits, fig)
    _check_every(programs, papers, hits, cfg, fig)
    picked = _spread(n, cfg.peer_subs)
    by_sub = {i: {j for j, h in enumerate(hits) if i in h} for i in picked}
    for name, peer in (("fts5", Fts5), ("tantivy", Tantivy)):
        sample = [queries[i] for i in picked]
        _peer(name, peer, queries=sample, papers=papers, by_sub=by_sub, n=n, fig=fig)
    secs, _ = best(lambda: [hs.scan(f"{p.title}\n{p.abstract}".encode()) for p in papers])
    rate["hyperscan"] = len(papers) / secs
    fig.notes["hyperscan"] = f"{hs.patterns:,} patterns"
    gc.unfreeze()
    return fig


def _full(matcher: Matcher, papers: list[Paper], hits: list[set[int]], fig: Figures) -> None:
    """The daemon's path: ``match_groups`` per paper, every subscription matched with
    words and score; then the same as one ``Match`` per hit (``match_terms``)."""
    secs, found = best(lambda: [matcher.match_groups(analyze_paper(p)) for p in papers])
    assert [{s for ids, _, _ in f for s in ids} for f in found] == hits, "match_groups differs"
    fig.papers_per_second["paperbell_full"] = len(papers) / secs
    del found
    secs, listed = best(lambda: [matcher.match_terms(analyze_paper(p)) for p in papers])
    assert [{m.sub_id for m in f} for f in listed] == hits, "match_terms differs"
    fig.papers_per_second["paperbell_matches"] = len(papers) / secs


def _floor(papers: list[Paper], hits: list[set[int]], fig: Figures) -> None:
    lists = [list(h) for h in hits]

    def walk() -> None:
        for paper, found in zip(papers, lists, strict=True):
            {term_key(t) for t in text_tokens(paper.title)}
            {term_key(t) for t in text_tokens(paper.abstract)}
            out = []
            for sid in found:
                out.append(sid)  # the walk is what is measured

    secs, _ = best(walk)
    fig.papers_per_second["floor"] = len(papers) / secs


def _check_every(
    programs: list[Any], papers: list[Paper], hits: list[set[int]], cfg: Config, fig: Figures
) -> None:
    k = max(3, min(len(papers), cfg.evaluations // len(programs)))

    def check() -> list[set[int]]:
        out = []
        for p in papers[:k]:
            terms = analyze_paper(p)
            out.append({sid for sid, prog in programs if evaluate(prog, terms.keys, terms)})
        return out

    secs, found = best(check)
    assert found == hits[:k], "check-every differs from paperbell"
    fig.papers_per_second["check_every"] = k / secs
    if k < len(papers):
        fig.notes["check_every"] = f"measured on {k} papers"


def _peer(
    name: str,
    make: Callable[[], Any],
    *,
    queries: list[Query],
    papers: list[Paper],
    by_sub: dict[int, set[int]],
    n: int,
    fig: Figures,
) -> None:
    def index() -> Any:
        fresh = make()
        fresh.index(papers)
        return fresh

    index_secs, peer = best(index)
    compiled = [peer.compile(q) for q in queries]  # once per subscription: not timed
    query_secs, found = best(lambda: [peer.run(c) for c in compiled])
    for (sub_id, expected), got in zip(by_sub.items(), found, strict=True):
        assert got == expected, (
            f"{name} differs on subscription {sub_id}: {queries[list(by_sub).index(sub_id)]}"
        )
    total = index_secs + query_secs * n / len(queries)
    fig.papers_per_second[name] = len(papers) / total
    if len(queries) < n:
        fig.notes[name] = f"queries timed on {len(queries):,} subs, scaled to {n:,}"


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when k >= n)."""
    return list(range(n)) if k >= n else [i * n // k for i in range(k)]


def targets(fig: Figures) -> dict[str, dict[str, Any]]:
    rate = fig.papers_per_second
    return {
        "vs_check_every": _target(rate["paperbell"] / rate["check_every"], 100, "≥ 100×"),
        "vs_fts5": _target(rate["paperbell"] / rate["fts5"], 5, "≥ 5×"),
        # The daemon's path, words and score included, against one Tantivy query per sub.
        "words_and_score_vs_tantivy": _target(rate["paperbell_full"] / rate["tantivy"], 1, "≥ 1×"),
        "floor_over_paperbell": _target(rate["floor"] / rate["paperbell"], 3, "≤ 3×", lower=True),
        "bytes_per_subscription": _target(fig.bytes_per_subscription, 1024, "≤ 1 KB", lower=True),
    }


def _target(value: float, goal: float, text: str, lower: bool = False) -> dict[str, Any]:
    met = value <= goal if lower else value >= goal
    return {"value": round(value, 2), "target": text, "met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    papers = recombined_papers(cfg.papers)
    subs = subscriptions(max(cfg.sizes), mid_frequency(papers))
    queries = [q for _, q in subs]
    history = key_frequencies(analyze_paper(p) for p in load_corpus())
    for p in papers:  # warm the stem cache once, for every method alike
        analyze_paper(p)
    figures = []
    for n in cfg.sizes:
        figures.append(run_size(n, queries[:n], papers, history, cfg))
        if not args.json:
            print(f"  … {n:,} subscriptions done", file=sys.stderr)
    report = {
        "papers": len(papers),
        "seed": SEED,
        "examples": [text for text, _ in subs[:8]],
        "sizes": [vars(f) for f in figures],
        "targets_at": figures[-1].subscriptions,
        "targets": targets(figures[-1]),
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    sizes = report["sizes"]
    lines = [
        f"paperbell match bench: {report['papers']:,} papers, seed {report['seed']}; "
        "papers per CPU second",
        "subscriptions like: " + " | ".join(report["examples"]),
        f"{'':34}" + "".join(f"{s['subscriptions']:>12,}" for s in sizes),
    ]
    for key, label in METHODS.items():
        row = "".join(f"{s['papers_per_second'].get(key, 0):>12,.0f}" for s in sizes)
        notes = "; ".join(
            f"{s['subscriptions']:,}: {s['notes'][key]}" for s in sizes if key in s["notes"]
        )
        lines.append(f"{label:34}{row}" + (f"   ({notes})" if notes else ""))
    for key, label, fmt in (
        ("hits_per_paper", "hits per paper", ",.1f"),
        ("bytes_per_subscription", "bytes per subscription", ",.0f"),
        ("build_seconds", "build seconds (CPU)", ",.2f"),
    ):
        lines.append(f"{label:34}" + "".join(f"{s[key]:>12{fmt}}" for s in sizes))
    at = report["targets_at"]
    note = "" if at == 100_000 else " (the issue sets them at 100,000: run without --quick)"
    lines.append(f"targets at {at:,} subscriptions{note}:")
    for name, t in report["targets"].items():
        verdict = "met" if t["met"] else "MISSED"
        lines.append(f"  {name:28}{t['value']:>10,}  target {t['target']:8} {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
