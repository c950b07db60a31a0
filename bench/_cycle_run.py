"""One size of the cycle bench, in a fresh process: the daemon's path, phase by phase.

Opened as ``paperbell run`` opens it (``open_resources``, then ``keep_long_lived``), then what
``Worker.ingest`` does for one source: ``run_cycle`` over a feed served by a loopback
aiohttp server, ``match_cycle`` (match records and outbox rows), and the dispatcher; the
instant alerts are sent once to the file outbox (``FileNotifier``) and once more,
requeued, to a loopback SMTP sink (``SmtpNotifier``); then what ``Worker.digests`` does a
day later: ``DigestPlanner.tick`` and the dispatcher sending the digests to the sink.

Each phase prints one JSON line: wall and CPU seconds, rows, and the peak RSS of this
process during the phase (a thread samples /proc/self/statm). Delivery phases stop after
``budget`` seconds (the notifier then reports its channel down, so the dispatcher puts
its claimed rows back and returns) and report how far they got and the time all would
have taken at that rate. A phase with helpers ends when their last claim is sent too,
not when the daemon's own dispatcher finds nothing left to claim. Between phases the
bench only moves rows it must (alert rows back to pending for the second notifier, what
a cut phase left to sent before the digests), with plain SQL, untimed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from bot.accounts.addresses import LinkBuilder
from bot.daemon.helpers import EmailHelpers
from bot.daemon.resources import Resources, open_resources
from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher
from bot.delivery.notifier import AlertMessage, Channel, DigestMessage, Notifier
from bot.delivery.planning import plan_matches
from bot.errors import ChannelDownError
from bot.matching.step import match_cycle
from bot.memory import keep_long_lived, release_free_memory
from bot.models import SourceKind
from bot.settings import EmailSettings, Settings, SmtpSettings, SourceConfig, WebSettings
from bot.sources.ingest import run_cycle
from handlers.email.files import FileNotifier
from handlers.email.smtp import SmtpNotifier

CYCLE_AT = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
DIGEST_AT = CYCLE_AT + timedelta(days=1)  # past everyone's 08:00 UTC digest hour
FEED_NAME = "bench"
MB = 1024 * 1024


class RssSampler(threading.Thread):
    """The process's resident set size every ``interval`` seconds; ``peak`` since reset."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._statm = os.open("/proc/self/statm", os.O_RDONLY)  # read until exit
        self.peak = self.now()

    def now(self) -> int:
        return int(os.pread(self._statm, 200, 0).split()[1]) * self._page

    def reset(self) -> None:
        self.peak = self.now()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(self.interval)


class Clock:
    """The daemon's clock, set by the bench: the cycle at CYCLE_AT, digests a day later."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


class Phases:
    def __init__(self, sampler: RssSampler) -> None:
        self.sampler = sampler

    @asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[dict[str, Any]]:
        gc.collect()
        self.sampler.reset()
        record: dict[str, Any] = {"phase": name}
        wall, cpu = time.perf_counter(), time.process_time()
        yield record
        record["seconds"] = round(time.perf_counter() - wall, 3)
        record["cpu_seconds"] = round(time.process_time() - cpu, 3)
        self.sampler.peak = max(self.sampler.peak, self.sampler.now())
        record["peak_rss_mb"] = round(self.sampler.peak / MB, 1)


def settings(data_dir: Path, feed_url: str, smtp_port: int, processes: int = 1) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        sources=[SourceConfig(kind=SourceKind.FEED, url=feed_url, name=FEED_NAME)],
        smtp=smtp_settings(smtp_port),
        email=EmailSettings(processes=processes),
        web=WebSettings(enabled=False),
        public_url="https://paperbell.example.org",
        secret_key=SecretStr("cycle-bench-secret-key-not-for-production"),
    )


def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        security="none",
        ehlo_name="bench.example.org",
        from_address="paperbell@example.org",
    )


@asynccontextmanager
async def feed_server(body: bytes) -> AsyncIterator[str]:
    """The feed on a loopback aiohttp server; yields its URL."""

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/atom+xml")

    app = web.Application()
    app.router.add_get("/feed.xml", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/feed.xml"
    finally:
        await runner.cleanup()


class Books:
    """The bench's own look at the outbox (plain SQL, outside any measured phase)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=60)

    def count(self, kind: str, state: str) -> tuple[int, int]:
        sql = "SELECT count(*), count(DISTINCT owner) FROM deliveries WHERE kind = ? AND state = ?"
        rows, owners = self.db.execute(sql, (kind, state)).fetchone()
        return int(rows), int(owners)

    def set_alerts(self, state: str, only: str = "") -> None:
        where = f" AND state IN ({only})" if only else ""
        self.db.execute(
            f"UPDATE deliveries SET state = ?, attempts = 0, sent_at = NULL "
            f"WHERE kind = 'alert'{where}",
            (state,),
        )
        # Moving every alert row at once leaves a WAL the size of the outbox, which the
        # daemon never makes (its writes are small, checkpointed as they go): the next
        # phase would pay for checkpointing it and for reading through it.
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Budgeted:
    """The notifier until ``budget`` seconds have passed, then a channel that is down.

    The dispatcher then puts back what it claimed and returns, as it does for a real
    outage: cancelling it instead could leave the store's writer inside a transaction.
    """

    def __init__(self, notifier: Notifier, budget: float) -> None:
        self.channel = notifier.channel
        self._notifier = notifier
        self._deadline = time.perf_counter() + budget
        self.cut = False

    def _check(self) -> None:
        if time.perf_counter() > self._deadline:
            self.cut = True
            raise ChannelDownError("the bench's budget for this phase is spent")

    async def send_alerts(self, message: AlertMessage) -> None:
        self._check()
        await self._notifier.send_alerts(message)

    async def send_digest(self, message: DigestMessage) -> None:
        self._check()
        await self._notifier.send_digest(message)

    async def close(self) -> None:
        """The wrapped notifier is closed by its owner."""


def finish(
    record: dict[str, Any], seconds: float, done: int, total: int, *, finished: bool
) -> None:
    """``all_seconds``: measured, or (cut short) the time all would take at this rate."""
    record.update(done=done, total=total, finished=finished)
    if finished or done >= total:
        record["all_seconds"] = round(seconds, 3)
    else:
        record["all_seconds"] = round(seconds * total / done, 1) if done else None


async def cycle(data_dir: Path, feed: bytes, smtp_port: int, budget: float, processes: int) -> None:
    sampler = RssSampler()
    sampler.start()
    phases, clock = Phases(sampler), Clock(CYCLE_AT)
    books = Books(data_dir / "paperbell.db")
    async with feed_server(feed) as url, AsyncExitStack() as stack:
        config = settings(data_dir, url, smtp_port, processes)
        async with phases.phase("startup") as rec:
            res = await stack.enter_async_context(open_resources(config, clock))
            keep_long_lived()  # as run_daemon does after loading subscriptions
            rec["rows"] = len(res.service.index)
        emit(rec)
        await _cycle(res, config, clock, phases=phases, books=books, budget=budget)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        emit({"phase": "done", "ru_maxrss_mb": round(maxrss / 1024, 1)})


async def _cycle(
    res: Resources, config: Settings, clock: Clock, *, phases: Phases, books: Books, budget: float
) -> None:
    # As ``paperbell run`` with PAPERBELL_EMAIL__PROCESSES: helpers wait from the start and
    # send beside the daemon's dispatcher in the SMTP phases, on the clock of each phase.
    helpers = EmailHelpers(config, config.email.processes - 1, clock=Clock(CYCLE_AT))
    helpers.start()
    try:  # stopped whatever fails: the worker would wait for them at exit, for hours
        owners = await _ingest_and_match(res, clock, phases=phases, books=books)
        await _deliveries(
            res, config, clock, helpers, phases=phases, books=books, budget=budget, owners=owners
        )
    finally:
        await helpers.stop(0)


async def _ingest_and_match(res: Resources, clock: Clock, *, phases: Phases, books: Books) -> int:
    """The two phases up to the outbox rows; how many owners have an alert pending."""
    async with phases.phase("ingest") as rec:
        report = await run_cycle(res.sources(), res.store, clock)
        rec["rows"] = len(report.new_papers)
        del report  # as Daemon.ingest: the papers are stored; only the counts outlive it
        release_free_memory()
    emit(rec)
    async with phases.phase("match") as rec:
        matched = await match_cycle(res.service.index, res.store, clock(), plan_matches)
        rec["rows"] = matched.matched
        rec["owners"] = matched.owners
    rec["outbox_rows"], owners = books.count("alert", "pending")
    emit(rec)
    return owners


async def _deliveries(
    res: Resources,
    config: Settings,
    clock: Clock,
    helpers: EmailHelpers,
    *,
    phases: Phases,
    books: Books,
    budget: float,
    owners: int,
) -> None:
    store, service = res.store, res.service
    links = LinkBuilder.from_settings(config, service.signer)

    def dispatcher(notifier: Notifier) -> Dispatcher:
        notifiers: dict[Channel, Notifier] = {Channel.EMAIL: Budgeted(notifier, budget)}
        return Dispatcher(store, notifiers, links, clock, random.Random(1), digests=service.digests)

    common: dict[str, Any] = {"books": books, "budget": budget}
    outbox = FileNotifier(config.data_dir / "outbox", smtp=config.smtp, email=config.email)
    await _deliver("alerts_file", phases, dispatcher=dispatcher(outbox), **common, total=owners)
    books.set_alerts("pending")  # the same alerts again, now over SMTP
    smtp = SmtpNotifier(config.smtp, config.email)
    try:
        await _deliver(
            "alerts_smtp", phases, dispatcher=dispatcher(smtp), **common, total=owners,
            helpers=helpers,
        )  # fmt: skip
        books.set_alerts("sent", only="'pending', 'sending'")  # what the budget left
        helpers = EmailHelpers(config, config.email.processes - 1, clock=Clock(DIGEST_AT))
        helpers.start()  # ready by the time the tick is done
        clock.now = DIGEST_AT
        waiting = len(await store.digest_waiting())
        async with phases.phase("digest_tick") as rec:  # run to the end: it cannot be cut
            done = await service.digests.tick(clock())
        rec["rows"] = done
        finish(rec, rec["seconds"], done, waiting, finished=True)
        emit(rec)
        await _deliver(
            "digest_smtp", phases, dispatcher=dispatcher(smtp), **common, total=done,
            kind="digest", helpers=helpers,
        )  # fmt: skip
    finally:
        await smtp.close()
        await helpers.stop(0)


async def _deliver(
    name: str,
    phases: Phases,
    *,
    dispatcher: Dispatcher,
    books: Books,
    total: int,
    budget: float,
    kind: str = "alert",
    helpers: EmailHelpers | None = None,
) -> None:
    async with phases.phase(name) as rec:
        started = time.perf_counter()
        if helpers is not None:
            helpers.wake()
        report = await dispatcher.run_once()
        if helpers is not None:
            rec["helpers"] = len(helpers.pids)
            peaks = [mb for mb in map(_peak_rss_mb, helpers.pids) if mb is not None]
            rec["helper_peak_rss_mb"] = max(peaks, default=None)
            # Our dispatcher found nothing left to claim, but a helper may still be sending
            # its last claim: the phase lasts until that is sent too, within the budget
            # (then the helpers give back what they claimed, as when the budget is spent).
            left = 0.0 if report.down else budget - (time.perf_counter() - started)
            await helpers.stop(max(0.0, left))
    rows, messages = books.count(kind, "sent")
    rec["rows"], rec["messages"] = rows, messages
    bad = (DeliveryOutcome.FAILED, DeliveryOutcome.RETRIED, DeliveryOutcome.SUPPRESSED)
    rec["not_sent"] = sum(report.count(outcome) for outcome in bad)
    # Finished when every message reached the sink, not when our dispatcher ran dry.
    finish(rec, rec["seconds"], messages, total, finished=not report.down and messages >= total)
    rec["messages_per_second"] = round(messages / rec["seconds"], 1) if rec["seconds"] else None
    emit(rec)


def _peak_rss_mb(pid: int) -> float | None:
    """A helper's peak RSS (VmHWM): this process's sampler sees only itself."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    return round(kib / 1024, 1)


def main(data_dir: Path, feed: Path, smtp_port: int, budget: float, processes: int) -> None:
    asyncio.run(cycle(data_dir, feed.read_bytes(), smtp_port, budget, processes))
