"""``paperbell run``: one process that polls sources, matches, delivers and serves links.

Resources open in order on an ``AsyncExitStack`` and close in reverse. SIGTERM/SIGINT stop
new work at once, let the cycle and deliveries in flight finish within
``PAPERBELL_SHUTDOWN_GRACE``, then close everything and exit 0; a second signal exits at
once. Schedules are UTC; what was sent for which local date lives in our tables, never in
the scheduler (APScheduler 3 only says *when to look*).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.daemon.channels import open_dispatcher
from bot.daemon.health import Health, check_health
from bot.daemon.helpers import EmailHelpers
from bot.daemon.leader import Leadership
from bot.daemon.lock import hold_data_dir
from bot.daemon.report import cycle_line, dispatch_line, failing_note, recovered_line
from bot.daemon.resources import Resources, open_resources
from bot.daemon.state import (
    ARXIV_KINDS,
    HEARTBEAT,
    LAST_CYCLE,
    record_daemon_start,
    record_email_helpers,
    recorded_source,
)
from bot.delivery import channel_status
from bot.delivery.channel_status import ChannelStatus
from bot.delivery.dispatcher import Dispatcher, DispatchReport
from bot.delivery.notifier import Channel
from bot.delivery.planning import plan_matches
from bot.exitcodes import ExitCode
from bot.matching.step import match_cycle
from bot.memory import keep_long_lived, release_free_memory
from bot.models import SourceSummary
from bot.settings import Settings, SourceConfig
from bot.sources.base import Source
from bot.sources.ingest import Clock, run_cycle, utc_now

log = logging.getLogger("paperbell.daemon")

CHANNELS = channel_status.META_KEY
BEAT = timedelta(seconds=30)
# From the second failure in a row a source is logged at WARNING, with a hint.
WARN_AFTER = 2
# arXiv announces at 20:00 US Eastern Sun-Thu and rebuilds its feeds around midnight:
# look shortly after, and twice more in case it ran late, instead of polling all day.
ARXIV_CRON = {"day_of_week": "mon-fri", "hour": "0,2,6", "minute": 15}


def source_trigger(config: SourceConfig) -> CronTrigger | IntervalTrigger:
    if config.kind in ARXIV_KINDS:
        return CronTrigger(**ARXIV_CRON, timezone=ZoneInfo("America/New_York"), jitter=120)
    jitter = min(300, config.interval_minutes * 6)  # ±10 %: many daemons, not one spike
    return IntervalTrigger(minutes=config.interval_minutes, jitter=jitter, timezone=UTC)


def schedule_text(config: SourceConfig) -> str:
    """The trigger above, said for ``paperbell status``."""
    if config.kind in ARXIV_KINDS:
        minute = int(str(ARXIV_CRON["minute"]))
        hours = [int(h) for h in str(ARXIV_CRON["hour"]).split(",")]
        return "weekdays at " + ", ".join(f"{h:02d}:{minute:02d}" for h in hours) + " New York"
    return f"every {config.interval_minutes} min"


class Worker:
    """The daemon's jobs. Each runs guarded: tracked while in flight, errors logged."""

    def __init__(
        self,
        res: Resources,
        dispatcher: Dispatcher,
        clock: Clock,
        status: ChannelStatus,
        leadership: Leadership | None = None,
    ) -> None:
        self.res, self.dispatcher, self.clock, self.status = res, dispatcher, clock, status
        self.leadership = leadership
        self.helpers: EmailHelpers | None = None  # started by run_daemon when configured
        self.stopping = False
        self.inflight: set[asyncio.Task[None]] = set()
        self.dispatch_lock = asyncio.Lock()
        self.scheduler: AsyncIOScheduler | None = None
        self.ingest_jobs: dict[str, str] = {}  # source id -> scheduler job id
        self._beaten = datetime.min.replace(tzinfo=UTC)
        self._saved_status = -1

    def job(
        self, name: str, work: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
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

    def led(
        self, name: str, work: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        """A job only the leader runs (polling, matching, digests); others skip the tick."""

        async def if_leading() -> None:
            if self.leadership is None or self.leadership.held:
                await work()

        return self.job(name, if_leading)

    def poll_now(self) -> None:
        """A process that just took over polls and looks for digests at once, instead of
        at its own next tick."""
        if self.scheduler is None:
            return
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            if job.id in self.ingest_jobs.values() or job.name == "digests":
                job.modify(next_run_time=now)

    async def ingest(self, source: Source) -> tuple[SourceSummary, ...]:
        """One cycle of ``source``: fetch, store, match, send; its summaries."""
        store, service = self.res.store, self.res.service
        summaries = await self._fetch(source)
        await self.beat()
        matched = await match_cycle(service.index, store, self.clock(), plan_matches)
        await store.queue_follow_notes(self.clock())
        await self.beat()
        sent = await self._dispatch()  # instant alerts now, not at the next tick
        await store.set_meta(LAST_CYCLE, self.clock().isoformat())
        self._log_cycle(summaries, cycle_line(summaries, matched, sent))
        return summaries

    async def _fetch(self, source: Source) -> tuple[SourceSummary, ...]:
        """Fetch and store; only the summaries are kept. The papers are in the store now,
        and a big day's thousands of them would otherwise stay in memory through the match
        step and the sending, adding to their peak (7 MB of 180 at 50,000 subscriptions)."""
        settings = self.res.settings
        report = await run_cycle(
            [source],
            self.res.store,
            self.clock,
            alert_max_age_days=settings.alert_max_age_days,
            follow_upvotes=settings.follow_upvotes,
        )
        summaries = report.summaries
        del report  # before the trim, so that the papers' pages are free to give back
        release_free_memory()
        return summaries

    def _log_cycle(self, summaries: Sequence[SourceSummary], line: str) -> None:
        """INFO, or WARNING (with the next attempt and a hint) for a repeated failure."""
        failing = [s for s in summaries if s.failing and s.failing.count >= WARN_AFTER]
        if failing:
            notes = (failing_note(s, self.next_attempt(s.source_id)) for s in failing)
            log.warning("%s | %s", line, "; ".join(notes))
        else:
            log.info(line)
        for summary in summaries:
            if summary.recovered:
                log.info(recovered_line(summary))

    def next_attempt(self, source_id: str) -> datetime | None:
        """When the scheduler will next poll the source (it is set before a run starts)."""
        job_id = self.ingest_jobs.get(source_id)
        job = self.scheduler.get_job(job_id) if self.scheduler and job_id else None
        when: datetime | None = job.next_run_time if job else None
        return when

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
        if self.helpers is not None and not self.stopping:
            self.helpers.wake()  # they claim beside this dispatcher, on their own cores
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
    worker.scheduler = scheduler
    for source in worker.res.sources():
        name = f"ingest {source.config.name}"
        job = worker.led(name, lambda s=source: worker.ingest(s))  # type: ignore[misc]
        added = scheduler.add_job(job, source_trigger(source.config), name=name, next_run_time=now)
        worker.ingest_jobs[source.config.source_id] = added.id
    dispatch = IntervalTrigger(seconds=settings.dispatch_seconds, timezone=UTC)
    scheduler.add_job(
        worker.job("dispatch", worker.dispatch), dispatch, name="dispatch", next_run_time=now
    )
    digests = IntervalTrigger(seconds=settings.digest_seconds, timezone=UTC)
    scheduler.add_job(
        worker.led("digests", worker.digests), digests, name="digests", next_run_time=now
    )
    lead = worker.leadership
    if lead is not None and lead.shared:
        renew = IntervalTrigger(seconds=lead.every, timezone=UTC)
        scheduler.add_job(worker.job("leader lease", lead.renew), renew, name="leader lease")


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
        if settings.database_url is None:  # several processes share PostgreSQL, not SQLite
            stack.enter_context(hold_data_dir(settings.data_dir))
        res = await stack.enter_async_context(open_resources(settings, clock))
        # 100k compiled subscriptions are long-lived: keep the cyclic GC from rescanning them.
        keep_long_lived()
        recorded = [recorded_source(c, schedule_text(c)) for c in settings.sources]
        # Clears the channels of an earlier run too. Rows a dead process left in 'sending'
        # need nothing here: their lease runs out and the dispatcher claims them again.
        await record_daemon_start(res.store, recorded, settings.dispatch_seconds, clock())
        lead = _leadership(res, settings)
        await lead.renew()
        worker = await _start(res, settings, clock, stack, lead)
        if settings.email.processes > 1 and Channel.EMAIL in worker.dispatcher.channels:
            worker.helpers = EmailHelpers(settings, settings.email.processes - 1)
            worker.helpers.start()
            await record_email_helpers(res.store, settings.email.processes - 1)
            # Normally stopped with the jobs below; this covers leaving on an error.
            stack.push_async_callback(worker.helpers.stop, settings.shutdown_grace)
        log.info(
            "paperbell running: %d source(s), %d subscription(s)",
            len(settings.sources),
            len(res.service.index),
        )
        await stop.wait()
        worker.stopping = True  # no new work from here on
        stopping = [worker.drain(settings.shutdown_grace)]
        if worker.helpers is not None:  # they finish their mail in flight meanwhile
            stopping.append(worker.helpers.stop(settings.shutdown_grace))
        await asyncio.gather(*stopping)
        await lead.release()
        await res.store.set_meta(CHANNELS, "{}")  # no daemon, no channel health to tell
    log.info("stopped")
    return ExitCode.OK


async def run_once(settings: Settings, clock: Clock = utc_now) -> int:
    """``paperbell run --once``: each source once, match, send what is due, then exit."""
    async with AsyncExitStack() as stack:
        stack.enter_context(hold_data_dir(settings.data_dir))  # not beside a running daemon
        res = await stack.enter_async_context(open_resources(settings, clock))
        lead = _leadership(res, settings)
        await lead.require()  # nor beside a daemon on the same PostgreSQL database
        stack.push_async_callback(lead.release)
        # No web endpoint: its links are for a running daemon, and one may hold the port.
        worker = await _worker(res, settings, clock, stack, names=("email", "discord"))
        summaries = [s for source in res.sources() for s in await worker.ingest(source)]
        await worker.digests()
        await worker.dispatch()
    # Like `ingest`: 1 when a source failed (its cycle line above says why).
    return ExitCode.OK if all(s.ok for s in summaries) else ExitCode.FAILURE


def _leadership(res: Resources, settings: Settings) -> Leadership:
    lease = timedelta(seconds=settings.leader_lease)
    return Leadership(res.store, lease, shared=settings.database_url is not None)


async def _worker(
    res: Resources,
    settings: Settings,
    clock: Clock,
    stack: AsyncExitStack,
    *,
    names: Collection[str] | None = None,
    lead: Leadership | None = None,
) -> Worker:
    async def health() -> Health:
        return await check_health(res.store, settings, clock())

    dispatcher = await open_dispatcher(
        settings, res.service, clock, stack, names=names, health=health
    )
    worker = Worker(res, dispatcher, clock, dispatcher.status, lead)
    dispatcher.progress = worker.beat
    await worker.save_status()
    return worker


async def _start(
    res: Resources, settings: Settings, clock: Clock, stack: AsyncExitStack, lead: Leadership
) -> Worker:
    worker = await _worker(res, settings, clock, stack, lead=lead)
    lead.on_gain = worker.poll_now
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    schedule(worker, settings, scheduler)
    scheduler.start()
    # Registered last, so it runs first on exit: no job starts while resources close.
    stack.callback(scheduler.shutdown, wait=False)
    return worker
