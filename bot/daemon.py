"""``paperbell run``: one process that polls sources, matches, delivers and serves links.

Resources open in order on an ``AsyncExitStack`` and close in reverse. SIGTERM/SIGINT stop
new work at once, let the cycle and deliveries in flight finish within
``PAPERBELL_SHUTDOWN_GRACE``, then close everything and exit 0; a second signal exits at
once. Schedules are UTC; what was sent for which local date lives in our tables, never in
the scheduler (APScheduler 3 only says *when to look*).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import channel_status
from bot.accounts import LinkBuilder
from bot.app import Resources, open_resources
from bot.channel_status import ChannelStatus
from bot.channels import ChannelContext, open_channels
from bot.daemon_lock import hold_data_dir
from bot.daemon_report import cycle_line, dispatch_line
from bot.ingest import Clock, run_cycle, utc_now
from bot.models import SourceKind
from bot.outbox import Dispatcher, DispatchReport
from bot.pipeline import match_cycle
from bot.settings import Settings, SourceConfig
from bot.sources.base import Source
from bot.store.base import Store

log = logging.getLogger("paperbell.daemon")

HEARTBEAT = "daemon.heartbeat"
CHANNELS = channel_status.META_KEY
BEAT = timedelta(seconds=30)
LAST_CYCLE = "ingest.last_cycle"
ARXIV = (SourceKind.ARXIV_RSS, SourceKind.ARXIV_API)
# arXiv announces at 20:00 US Eastern Sun-Thu and rebuilds its feeds around midnight:
# look shortly after, and twice more in case it ran late, instead of polling all day.
ARXIV_CRON = {"day_of_week": "mon-fri", "hour": "0,2,6", "minute": 15}


def source_trigger(config: SourceConfig) -> CronTrigger | IntervalTrigger:
    if config.kind in ARXIV:
        return CronTrigger(**ARXIV_CRON, timezone=ZoneInfo("America/New_York"), jitter=120)
    jitter = min(300, config.interval_minutes * 6)  # ±10 %: many daemons, not one spike
    return IntervalTrigger(minutes=config.interval_minutes, jitter=jitter, timezone=UTC)


class Worker:
    """The daemon's jobs. Each runs guarded: tracked while in flight, errors logged."""

    def __init__(
        self, res: Resources, dispatcher: Dispatcher, clock: Clock, status: ChannelStatus
    ) -> None:
        self.res, self.dispatcher, self.clock, self.status = res, dispatcher, clock, status
        self.stopping = False
        self.inflight: set[asyncio.Task[None]] = set()
        self.dispatch_lock = asyncio.Lock()
        self._beaten = datetime.min.replace(tzinfo=UTC)
        self._saved_status = -1

    def job(self, name: str, work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def guarded() -> None:
            task = asyncio.current_task()
            if self.stopping or task is None:
                return
            self.inflight.add(task)
            try:
                await work()
            except asyncio.CancelledError:
                if not self.stopping:
                    raise
                # drain() cancelled it after the grace, on purpose: drain() says so once;
                # re-raised, APScheduler would log it as a crash with a traceback.
            except Exception:  # the boundary: log once, the schedule goes on
                log.exception("job %s failed", name)
            finally:
                self.inflight.discard(task)

        return guarded

    async def ingest(self, source: Source) -> None:
        store, service = self.res.store, self.res.service
        report = await run_cycle([source], store, self.clock)
        await self.beat()
        matched = await match_cycle(service.index, store, self.clock())
        await self.beat()
        sent = await self._dispatch()  # instant alerts now, not at the next tick
        await store.set_meta(LAST_CYCLE, self.clock().isoformat())
        log.info(cycle_line(report, matched, sent))

    async def dispatch(self) -> None:
        await self.beat(force=True)  # before the lock: an ingest may be dispatching
        report = await self._dispatch()
        await self.beat(force=True)
        if report.counts:
            log.info(dispatch_line(report))

    async def beat(self, *, force: bool = False) -> None:
        """Say the daemon is alive and working: every tick, and every ``BEAT`` during long
        work, so a long delivery run or ingest is not taken for a stuck scheduler."""
        now = self.clock()
        if force or now - self._beaten >= BEAT:
            self._beaten = now
            await self.res.store.set_meta(HEARTBEAT, now.isoformat())
        await self.save_status()

    async def save_status(self) -> None:
        """Store the channels' health when it changed, for ``outbox`` and health checks."""
        if self.status.version != self._saved_status:
            self._saved_status = self.status.version
            await self.res.store.set_meta(CHANNELS, self.status.snapshot())

    async def digests(self) -> None:
        if await self.res.service.digests.tick(self.clock()):
            await self.dispatch()

    async def _dispatch(self) -> DispatchReport:
        async with self.dispatch_lock:
            report = await self.dispatcher.run_once()
        await self.save_status()  # ChannelStatus logged what went down, once
        return report

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for jobs in flight, then cancel what is left."""
        pending = {t for t in self.inflight if not t.done()}
        if pending:
            log.info("waiting up to %.0fs for %d job(s) in flight", grace, len(pending))
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("cancelled %d job(s) still running after the grace", len(late))


def schedule(worker: Worker, settings: Settings, scheduler: AsyncIOScheduler) -> None:
    now = datetime.now(UTC)
    for source in worker.res.sources():
        name = f"ingest {source.config.name}"
        job = worker.job(name, lambda s=source: worker.ingest(s))  # type: ignore[misc]
        scheduler.add_job(job, source_trigger(source.config), name=name, next_run_time=now)
    dispatch = IntervalTrigger(seconds=settings.dispatch_seconds, timezone=UTC)
    scheduler.add_job(
        worker.job("dispatch", worker.dispatch), dispatch, name="dispatch", next_run_time=now
    )
    digests = IntervalTrigger(seconds=settings.digest_seconds, timezone=UTC)
    scheduler.add_job(
        worker.job("digests", worker.digests), digests, name="digests", next_run_time=now
    )


def install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("%s: finishing work in flight, then stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def _log_stray(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Exceptions of tasks nobody awaited: logged, never lost silently."""
    exc = context.get("exception")
    log.error("stray error: %s", context.get("message"), exc_info=exc if exc else None)  # type: ignore[arg-type]


async def run_daemon(settings: Settings, clock: Clock = utc_now) -> int:
    stop = asyncio.Event()
    install_signals(stop)
    asyncio.get_running_loop().set_exception_handler(_log_stray)
    async with AsyncExitStack() as stack:
        stack.enter_context(hold_data_dir(settings.data_dir))
        res = await stack.enter_async_context(open_resources(settings, clock))
        # 100k compiled subscriptions are long-lived: keep the cyclic GC from rescanning them.
        gc.freeze()
        # Rows a dead process left in 'sending' need nothing here: their lease runs out and
        # the dispatcher claims them again (bot.outbox). Channels start with no known trouble.
        await res.store.set_meta(CHANNELS, "{}")
        worker = await _start(res, settings, clock, stack)
        log.info(
            "paperbell running: %d source(s), %d subscription(s)",
            len(settings.sources),
            len(res.service.index),
        )
        await stop.wait()
        worker.stopping = True  # no new work from here on
        await worker.drain(settings.shutdown_grace)
        await res.store.set_meta(CHANNELS, "{}")  # no daemon, no channel health to tell
    log.info("stopped")
    return 0


async def _start(res: Resources, settings: Settings, clock: Clock, stack: AsyncExitStack) -> Worker:
    async def health() -> tuple[bool, str]:
        return await check_health(res.store, settings, clock())

    # A channel that could not be reached is tried again at the next tick, then less often.
    status = ChannelStatus(clock, first_probe=timedelta(seconds=settings.dispatch_seconds))
    ctx = ChannelContext(
        settings,
        res.service,
        clock,
        health,
        on_down=status.stopped,
        on_waiting=status.waiting,
        on_starting=status.starting,
        on_up=status.up,
    )
    notifiers = await open_channels(ctx, stack)
    links = LinkBuilder.from_settings(settings, res.service.signer)
    dispatcher = Dispatcher(
        res.store, notifiers, links, clock, random.Random(), digests=res.service.digests,
        status=status,
    )  # fmt: skip
    worker = Worker(res, dispatcher, clock, status)
    dispatcher.progress = worker.beat
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    schedule(worker, settings, scheduler)
    scheduler.start()
    # Registered last, so it runs first on exit: no job starts while resources close.
    stack.callback(scheduler.shutdown, wait=False)
    return worker


async def check_health(store: Store, settings: Settings, now: datetime) -> tuple[bool, str]:
    """Healthy when the dispatcher ticked lately and the last cycle is recent enough."""
    beat = await store.get_meta(HEARTBEAT)
    limit = timedelta(seconds=max(180.0, 6 * settings.dispatch_seconds))
    if beat is None or now - datetime.fromisoformat(beat) > limit:
        return False, "the scheduler has not ticked recently (is paperbell run running?)"
    return await check_last_cycle(store, settings, now)


def cycle_window(settings: Settings) -> timedelta:
    """How old the last cycle may be: twice the shortest poll, or arXiv's long weekend."""
    if all(s.kind in ARXIV for s in settings.sources):
        return timedelta(hours=80)
    shortest = min(s.interval_minutes for s in settings.sources if s.kind not in ARXIV)
    return timedelta(minutes=2 * shortest + 10)


async def check_last_cycle(store: Store, settings: Settings, now: datetime) -> tuple[bool, str]:
    last = await store.get_meta(LAST_CYCLE)
    if last is None:
        return False, "no ingest cycle has run yet"
    age = now - datetime.fromisoformat(last)
    if age > cycle_window(settings):
        return False, f"the last ingest cycle was {age} ago"
    return True, f"last ingest cycle {int(age.total_seconds())}s ago"
