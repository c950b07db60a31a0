"""Short write transactions: people are not kept waiting behind a large match step.

The daemon runs the match step and the web endpoint in one process, on one event loop and
one store (``bot/daemon/run.py``); the CLI is another process with its own connections to
the same file. Here a ``match_cycle`` that writes over 300,000 match records (and as many
outbox rows) runs as a task while, spread over it, a one-click unsubscribe (RFC 8058 POST
to the real web app over loopback HTTP) and a CLI-style subscribe (a second
``open_sqlite_store`` on the same file) are made. Each request's latency is the wait
behind the writer: the step's chunk transactions hold the store's write lock (the web
request, same store) or SQLite's (the second connection, ``busy_timeout``), and its
matching holds the event loop between awaits. Speed targets live in ``bench/``; the
bound here is generous (see ``WAIT_BOUND``), and the figures are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.accounts.addresses import LinkBuilder
from bot.daemon.resources import build_service
from bot.delivery.planning import SubscriptionLookup, plan_matches
from bot.delivery.policy import alert_hold
from bot.matching.query import parse_query, render
from bot.matching.step import CHUNK, MatchSummary, match_cycle
from bot.messages import SUBSCRIPTION_REMOVED, Channel, PlannedMatch
from bot.models import DeliveryMode, MatchRecord, Owner, Sighting, SourceState
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import Store
from bot.store.records import DeliveryState
from bot.store.sqlite._accounts_codec import deliver_json
from bot.store.sqlite._codec import iso
from bot.store.sqlite.store import SqliteStore, open_sqlite_store
from handlers.web import build_web_app, serve_web
from tests.support_papers import arxiv_paper

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CORPUS = Path(__file__).parent / "data" / "papers.jsonl"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
# Broad: ~99 % of the corpus's papers mention one of these words, so nearly every user
# matches nearly every paper: 300 users x 1,050 papers is over 300,000 (owner, paper) records.
BROAD = "models OR model OR language OR data"
USERS = 300
PAPERS = 1050
RECORDS = 300_000
# Requests fired once this many records went to the planner: spread over the step.
ROUNDS = (30_000, 80_000, 130_000, 180_000, 230_000)
# The issue asks for "within 1 s". A request meets at most the chunk transaction in
# progress (5,000 records and their outbox rows: 0.3 s median, 0.4 s at worst measured on
# this 2-core box under a load of 4) and the other request's short ones; under heavier
# load it measured up to 2 s. The bound is generous, as tests assert no speed: it fails
# when a request waits behind many chunks or the whole step (one to two minutes).
WAIT_BOUND = 5.0


def address(user_id: int) -> str:
    return f"reader{user_id}@example.org"


async def build_store(path: Path) -> None:
    """Papers queued for matching through the store; users and subscriptions in bulk, in
    the store's schema (thousands of single-row transactions would take far longer)."""
    await _queue_papers(path)
    stamp, normalized = iso(NOW), render(parse_query(BROAD))
    users = [(address(u), stamp, stamp) for u in range(1, USERS + 1)]
    subs = [
        (str(Owner.user(u)), BROAD, normalized, deliver_json(INSTANT), stamp)
        for u in range(1, USERS + 1)
    ]
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO users (email, email_verified, created_at, updated_at) VALUES (?, 1, ?, ?)",
            users,
        )
        db.executemany(
            "INSERT INTO subscriptions (owner, query, normalized, deliver, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            subs,
        )
        db.execute("COMMIT")


async def _queue_papers(path: Path) -> None:
    """The corpus's real listings, repeated under distinct keys, published today."""
    listings = [json.loads(line) for line in CORPUS.read_text().splitlines() if line]
    papers = [
        arxiv_paper(
            f"2611.{n:05d}",
            title=listings[n % len(listings)]["title"],
            abstract=listings[n % len(listings)]["abstract"],
            published=NOW,
            updated=NOW,
        )
        for n in range(PAPERS)
    ]
    store = await open_sqlite_store(path)
    try:
        await store.ingest([Sighting(p) for p in papers], SourceState("feed:today"), NOW)
    finally:
        await store.close()


@dataclass
class Chunk:
    """One call of the planner: when it started, how many records it planned per owner.
    The step plans a chunk, writes it, then plans the next: a chunk's write ends before
    the next one's planning starts."""

    started: float
    owners: Counter[Owner] = field(default_factory=Counter)


@dataclass
class Observed:
    """``plan_matches``, watched: records seen so far, and a signal at each round's mark."""

    rounds: list[asyncio.Event]
    records: int = 0
    chunks: list[Chunk] = field(default_factory=list)

    async def plan(
        self, store: Store, records: Sequence[MatchRecord], lookup: SubscriptionLookup
    ) -> Sequence[PlannedMatch]:
        chunk = Chunk(time.monotonic())
        self.chunks.append(chunk)
        planned = await plan_matches(store, records, lookup)
        chunk.owners.update(p.record.owner for p in planned)
        self.records += len(records)
        for mark, event in zip(ROUNDS, self.rounds, strict=True):
            if self.records >= mark:
                event.set()
        return planned


@dataclass(frozen=True)
class Request:
    what: str
    seconds: float
    done_at: float
    step_running: bool


def matches_written(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM matches").fetchone()[0])


async def unsubscribe_by_link(
    http: aiohttp.ClientSession,
    base: str,
    links: LinkBuilder,
    user_id: int,
    step: asyncio.Task[object],
) -> Request:
    """The one-click POST a mail client makes from the List-Unsubscribe header."""
    url = links.stop_subscription_url(address(user_id), user_id)  # user n owns subscription n
    path = "/" + url.split("/", 3)[3]
    start = time.monotonic()
    async with http.post(base + path, data=ONE_CLICK, allow_redirects=False) as response:
        assert response.status == 200, await response.text()
        assert "will get no more email from this subscription" in await response.text()
    done = time.monotonic()
    return Request(f"web unsubscribe #{user_id}", done - start, done, not step.done())


async def subscribe_from_cli(cli: SqliteStore, n: int, step: asyncio.Task[MatchSummary]) -> Request:
    """The writes ``paperbell subscribe`` makes, from its own connections to the file."""
    start = time.monotonic()
    user = await cli.get_or_create_user(email=f"newcomer{n}@example.org", now=NOW)
    text = f"circuit{n} OR sparse"
    sub = await cli.add_subscription(
        user.owner, text, render(parse_query(text)), INSTANT, NOW, limit=50
    )
    done = time.monotonic()
    assert await cli.get_subscription(sub.id) == sub
    return Request(f"cli subscribe {n}", done - start, done, not step.done())


@pytest.mark.slow
async def test_unsubscribe_and_subscribe_wait_little_behind_a_300k_match_step(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path)
    began = time.monotonic()
    await build_store(settings.database_path)
    set_up = time.monotonic() - began
    store = await open_sqlite_store(settings.database_path)
    cli = await open_sqlite_store(settings.database_path)  # as `paperbell subscribe` opens it
    try:
        service = await build_service(settings, store, clock=lambda: NOW)
        observed = Observed([asyncio.Event() for _ in ROUNDS])
        began = time.monotonic()
        step = asyncio.create_task(match_cycle(service.index, store, NOW, observed.plan))
        requests = await requests_during(step, service, cli, observed, settings.database_path)
        summary = await step
        step_took = time.monotonic() - began
        stale = [
            await check_nothing_new_after(store, observed.chunks, Owner.user(n), r.done_at)
            for n, r in enumerate(requests[::2], start=1)
        ]
        report(set_up, step_took, summary.matched, requests, sum(stale))
        assert summary.matched >= RECORDS
        assert matches_written(settings.database_path) >= RECORDS
        assert len(observed.chunks) >= RECORDS // CHUNK  # many short transactions, not one
        for request in requests:
            assert request.step_running, f"{request.what} came after the step ended"
            assert request.seconds < WAIT_BOUND, f"{request.what} waited {request.seconds:.2f} s"
    finally:
        await cli.close()
        await store.close()


async def requests_during(
    step: asyncio.Task[MatchSummary],
    service: Paperbell,
    cli: SqliteStore,
    observed: Observed,
    path: Path,
) -> list[Request]:
    """At each round's mark, together: user n unsubscribes by link, newcomer n subscribes.

    The mark is reached as the planner returns a chunk, so both requests meet the step's
    write of that chunk starting: each measures the worst wait, one whole chunk
    transaction (plus its own work on a busy event loop)."""
    links = LinkBuilder(service.signer, "https://bell.example.org")
    requests: list[Request] = []
    async with (
        serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        # A connection per request, as a mail client's one-click POST makes: a pooled one
        # idle past the server's keep-alive (10 s) may be closed as it is reused.
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
    ):
        for n, event in enumerate(observed.rounds, start=1):
            await until(event, step)  # set as a chunk is planned: its write is about to start
            assert matches_written(path) < RECORDS  # the step is mid-way, not near its end
            web, subscribed = await asyncio.gather(
                unsubscribe_by_link(http, f"http://{host}:{port}", links, n, step),
                subscribe_from_cli(cli, n, step),
            )
            assert await service.store.get_subscription(n) is None
            requests += [web, subscribed]
    return requests


async def until(event: asyncio.Event, step: asyncio.Task[MatchSummary]) -> None:
    """Wait for ``event``; if the step ends first (or fails), say so instead of hanging."""
    waiting = asyncio.ensure_future(event.wait())
    await asyncio.wait([waiting, step], return_when=asyncio.FIRST_COMPLETED)
    if not event.is_set():
        waiting.cancel()
        summary = await step  # raises the step's own error, if it failed
        pytest.fail(f"the step ended before its mark: {summary}")


async def check_nothing_new_after(
    store: Store, chunks: Sequence[Chunk], owner: Owner, done_at: float
) -> int:
    """No chunk planned after the unsubscribe committed plans anything for its owner (whose
    one subscription it was). The one chunk planned before and written after may still
    add alerts (planning reads subscriptions outside the write transaction, see
    ``bot/delivery/planning.py``): those must be what send time suppresses. Returns how
    many such alerts there were."""
    later = [c for c in chunks if c.started > done_at]
    assert later, "no chunk was planned after the unsubscribe"
    assert not [c for c in later if c.owners[owner]]
    pending = await store.list_deliveries(owner, DeliveryState.PENDING)
    in_flight = [c for c in chunks if c.started <= done_at][-1]  # planned, maybe unwritten
    assert len(pending) <= in_flight.owners[owner], f"{owner}: alerts pending from older chunks"
    live = await store.list_subscriptions(owner)
    matches = await store.get_matches(owner, [d.paper_key or "" for d in pending])
    for row in pending:  # the rule bot/delivery/messages.py applies to a claimed alert
        wanted = matches[row.paper_key or ""].sub_ids
        subs = [s for s in live if s.id in wanted]
        assert alert_hold(subs, Channel.EMAIL, fallback=False) == SUBSCRIPTION_REMOVED
    return len(pending)


def report(
    set_up: float, step: float, records: int, requests: Sequence[Request], stale: int
) -> None:
    """Printed for the issue's figures (``pytest -s``); nothing here is asserted."""
    for kind in ("web unsubscribe", "cli subscribe"):
        waits = [r.seconds for r in requests if r.what.startswith(kind)]
        print(
            f"{kind}: max {max(waits):.3f} s, median {statistics.median(waits):.3f} s "
            f"over {len(waits)} requests"
        )
    print(f"set-up {set_up:.1f} s; match step {step:.1f} s, {records} records")
    print(f"alerts planned before an unsubscribe, written after it (suppressed at send): {stale}")
