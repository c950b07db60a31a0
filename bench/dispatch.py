"""Messages per second with 1, 2 and 4 dispatcher processes on PostgreSQL, and SQLite's one.

    python bench/dispatch.py [--n 2000] [--sink-ms 20] [--json]

N people each have one instant alert waiting in the outbox. K processes (each its own
store, ``Dispatcher`` and ``SmtpNotifier`` with its default connections) are started,
opened, and then released at once; the time from release until the last one has found
nothing more to claim is the figure. The sink is aiosmtpd in its own process, taking
``--sink-ms`` per message (as a relay on a network does), counting each recipient so a
message sent twice shows. PostgreSQL runs from Debian's binaries in a temp directory with
its default durability. Targets: 2 processes >= 1.5x 1 process, 4 >= 2x 1, no duplicates.
Exit status 1 if any message was missing or sent twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP as SinkProtocol
from aiosmtpd.smtp import Envelope, Session

from _pg import postgres
from bot.accounts.addresses import LinkBuilder
from bot.accounts.tokens import Signer
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.planning import record_matches
from bot.messages import Channel
from bot.models import DeliveryMode, MatchRecord, Paper, Sighting, SourceState
from bot.settings import EmailSettings, SmtpSettings
from bot.store.postgres.store import PostgresStore
from bot.store.protocols import Store
from bot.store.sqlite.store import open_sqlite_store
from bot.store.transfer import copy_store
from handlers.email.smtp import SmtpNotifier

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LINKS = LinkBuilder(Signer(b"bench-dispatch-key-" * 2), "https://bell.example.org")
PROCESSES = (1, 2, 4)
SPEEDUP = {2: 1.5, 4: 2.0}


# --- the sink ---------------------------------------------------------------------------


class _Counting:
    def __init__(self, delay: float) -> None:
        self.delay, self.seen = delay, Counter[str]()

    async def handle_DATA(self, server: SinkProtocol, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        self.seen.update(envelope.rcpt_tos)
        return "250 OK"


async def _serve(conn: Connection, delay: float) -> None:
    loop, handler = asyncio.get_running_loop(), _Counting(delay)
    server = await loop.create_server(
        lambda: SinkProtocol(handler, hostname="sink.bench", loop=loop), "127.0.0.1", 0
    )
    conn.send(server.sockets[0].getsockname()[1])
    while await loop.run_in_executor(None, conn.recv) == "count":
        conn.send(dict(handler.seen))
        handler.seen.clear()
    server.close()


def _sink_main(conn: Connection, delay: float) -> None:
    asyncio.run(_serve(conn, delay))


# --- the workload -------------------------------------------------------------------------


async def seed(path: Path, n: int) -> None:
    """N confirmed people, one instant alert each (their confirmations already settled)."""
    store = await open_sqlite_store(path)
    try:
        paper = Paper(key="bench:1", title="A paper", abstract="About graphs.", first_seen=NOW)
        await store.ingest([Sighting(paper)], SourceState("bench"), NOW)
        records = []
        for i in range(n):
            user = await store.get_or_create_user(discord_id=f"d{i}", now=NOW)
            await store.set_email(user.id, f"u{i}@example.org", NOW)
            await store.verify_email(user.id, f"u{i}@example.org", NOW)
            sub = await store.add_subscription(
                user.owner, "g", "graph", frozenset({DeliveryMode.EMAIL_INSTANT}), NOW, limit=5
            )
            records.append(MatchRecord(user.owner, paper.key, (sub.id,), ("graph",), 1.0, NOW))
        confirmations = [d.id for d in await store.list_deliveries()]
        await store.settle(confirmations, {}, NOW)
        await record_matches(store, records, NOW)
    finally:
        await store.close()


async def _open(target: str) -> Store:
    if target.startswith("postgresql://"):
        return await PostgresStore.open(target)
    return await open_sqlite_store(Path(target))


async def _work(target: str, port: int, ready: Any, go: Event) -> None:
    store = await _open(target)
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", ehlo_name="bench.local")
    notifier = SmtpNotifier(smtp, EmailSettings())
    clock = lambda: datetime.now(UTC)  # noqa: E731
    dispatcher = Dispatcher(store, {Channel.EMAIL: notifier}, LINKS, clock, random.Random(1))
    ready.release()
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    try:
        await dispatcher.run_once()
    finally:
        await notifier.close()
        await store.close()


def _worker_main(target: str, port: int, ready: Any, go: Event) -> None:
    asyncio.run(_work(target, port, ready, go))


@dataclass(frozen=True)
class Result:
    name: str
    processes: int
    per_second: float
    missing: int
    duplicates: int


def measure(name: str, target: str, k: int, *, n: int, sink: Connection, port: int) -> Result:
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    workers = [ctx.Process(target=_worker_main, args=(target, port, ready, go)) for _ in range(k)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    sink.send("count")
    seen: dict[str, int] = sink.recv()
    missing = n - len(seen)
    duplicates = sum(c - 1 for c in seen.values())
    return Result(name, k, n / elapsed, missing, duplicates)


async def _fresh_pg(base: str, seed_db: str, name: str) -> str:
    admin = await asyncpg.connect(base + "postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {seed_db}")
    finally:
        await admin.close()
    return base + name


async def _seed_pg(base: str, sqlite_seed: Path) -> str:
    admin = await asyncpg.connect(base + "postgres")
    try:
        await admin.execute("CREATE DATABASE seed")
    finally:
        await admin.close()
    await copy_store(sqlite_seed, base + "seed", lambda *_: None)
    return "seed"


def run(n: int, sink_ms: float) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    conn, child = multiprocessing.Pipe()
    sink = multiprocessing.get_context("spawn").Process(
        target=_sink_main, args=(child, sink_ms / 1000), daemon=True
    )
    sink.start()
    port: int = conn.recv()
    try:
        asyncio.run(seed(work / "seed.db", n))
        shutil.copy(work / "seed.db", work / "sqlite.db")
        results = [measure("sqlite", str(work / "sqlite.db"), 1, n=n, sink=conn, port=port)]
        with postgres() as base:
            seed_db = asyncio.run(_seed_pg(base, work / "seed.db"))
            for k in PROCESSES:
                url = asyncio.run(_fresh_pg(base, seed_db, f"run{k}"))
                results.append(measure("postgresql", url, k, n=n, sink=conn, port=port))
        return results
    finally:
        conn.send("stop")
        sink.join(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def targets(results: list[Result]) -> dict[str, dict[str, Any]]:
    pg = {r.processes: r.per_second for r in results if r.name == "postgresql"}
    out: dict[str, dict[str, Any]] = {}
    for k, want in SPEEDUP.items():
        value = round(pg[k] / pg[1], 2)
        out[f"postgresql_{k}_processes_vs_1"] = {
            "value": value,
            "target": want,
            "met": value >= want,
        }
    dupes = sum(r.duplicates for r in results)
    missing = sum(r.missing for r in results)
    out["duplicates"] = {"value": dupes, "target": 0, "met": dupes == 0}
    out["missing"] = {"value": missing, "target": 0, "met": missing == 0}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per run")
    parser.add_argument("--sink-ms", type=float, default=20.0, help="sink's time per message")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.n, args.sink_ms)
    met = targets(results)
    if args.json:
        rows = [r.__dict__ | {"per_second": round(r.per_second, 1)} for r in results]
        print(
            json.dumps(
                {"n": args.n, "sink_ms": args.sink_ms, "results": rows, "targets": met}, indent=2
            )
        )
    else:
        for r in results:
            print(f"{r.name:<11} {r.processes} process(es): {r.per_second:7.1f} msg/s"
                  f"  missing {r.missing}  duplicates {r.duplicates}")  # fmt: skip
        for name, t in met.items():
            print(f"{name}: {t['value']} (target {t['target']}) {'met' if t['met'] else 'NOT met'}")
    bad = any(r.missing or r.duplicates for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
