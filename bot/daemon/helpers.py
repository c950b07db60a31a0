"""Helper processes that send email beside the daemon, so bulk mail gets a core of its own.

One Python process sends some 120 alerts a second, held by one core (rendering, the SMTP
library's own passes over each message, the outbox writes). With N above 1 in
PAPERBELL_EMAIL__PROCESSES, ``paperbell run`` starts N - 1 helpers. Each runs a
dispatcher for email alone on the same database; claims with leases keep two processes
from sending the same row, as they do for daemons on several boxes. The daemon's own
dispatcher still sends everything, email included, so nothing depends on a helper being
alive.

The daemon wakes the helpers when it dispatches (after each match step and at each tick).
A helper stops when told, or when the daemon's end of its pipe closes (the daemon died):
it finishes the message in flight within the grace, and gives back what it claimed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from bot.daemon.channels import open_dispatcher
from bot.daemon.resources import build_service
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.notifier import Channel
from bot.logs import configure_logging
from bot.memory import keep_long_lived
from bot.settings import Settings
from bot.sources.ingest import Clock, utc_now
from bot.store.open import open_store

log = logging.getLogger("paperbell.helpers")

WAKE, STOP = b"w", b"s"  # a stop carries the grace in seconds: b"s20.0"
# A helper that dies within STEADY seconds of its start died "quickly". The first quick
# death is restarted at once (a killed helper); each further one in a row waits twice as
# long, from FIRST_WAIT up to LONGEST_WAIT: starting a process costs about a second of
# CPU, and one that cannot start would otherwise be spawned again at every dispatch tick.
STEADY, FIRST_WAIT, LONGEST_WAIT = 60.0, 5.0, 300.0


class EmailHelpers:
    """The daemon's side: start, wake and stop ``count`` helper processes."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._count = count
        self._clock = clock  # picklable: it goes to each helper (a bench passes its own)
        self._monotonic = monotonic
        self._started = 0  # helpers started so far, to number them in the log
        self._running: list[tuple[BaseProcess, Connection]] = []
        self._born: dict[BaseProcess, float] = {}
        self._quick_deaths = 0  # in a row
        self._not_before = 0.0  # no helper is started again before this (monotonic)

    def start(self) -> None:
        """Start helpers until ``count`` run (each waits for its first wake)."""
        # spawn, not fork: the daemon has threads (SQLite's) and an event loop running.
        context = multiprocessing.get_context("spawn")
        missing = self._count - len(self._running)
        for _ in range(missing):
            self._started += 1
            ours, theirs = context.Pipe()
            process = context.Process(
                target=helper_main,
                args=(self._settings, theirs, self._clock),
                name=f"paperbell-email-{self._started}",
            )
            process.start()
            theirs.close()  # the helper holds it: when we are gone, it reads end-of-file
            self._running.append((process, ours))
            self._born[process] = self._monotonic()
        if missing > 0:
            log.info("%d email helper process(es) started", missing)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._running if p.pid is not None]

    def wake(self) -> None:
        """Tell every helper there may be mail; one that died is started again first
        (later and later while they keep dying quickly: see ``STEADY``)."""
        for process, pipe in list(self._running):
            if not process.is_alive():
                pipe.close()
                self._running.remove((process, pipe))
                self._buried(process)
        if self._monotonic() >= self._not_before:
            self.start()
        for _, pipe in self._running:
            _send(pipe, WAKE)

    def _buried(self, process: BaseProcess) -> None:
        """Note a helper's death, and when another may start."""
        now = self._monotonic()
        quick = now - self._born.pop(process, now) < STEADY
        self._quick_deaths = self._quick_deaths + 1 if quick else 1
        doublings = min(self._quick_deaths - 2, 16)  # a bounded power: days of deaths
        wait = 0.0 if doublings < 0 else min(FIRST_WAIT * 2**doublings, LONGEST_WAIT)
        self._not_before = now + wait
        later = f" in {wait:.0f} s" if wait else ""
        log.warning(
            "%s exited (code %s); starting another%s", process.name, process.exitcode, later
        )

    async def stop(self, grace: float) -> None:
        """Ask each helper to finish within ``grace`` seconds (then it gives back what it
        claimed); one still running well after that is killed."""
        for _, pipe in self._running:
            _send(pipe, STOP + str(grace).encode())
        loop = asyncio.get_running_loop()
        for process, pipe in self._running:
            await loop.run_in_executor(None, process.join, grace + 5)
            if process.is_alive():
                log.warning("%s did not stop in time; killing it", process.name)
                process.kill()  # SIGTERM is ignored: see helper_main
                await loop.run_in_executor(None, process.join, 5)
            pipe.close()
        self._running = []
        self._born.clear()


def _send(pipe: Connection, what: bytes) -> None:
    # OSError: the helper is gone; wake() starts another, stop() has nothing to do.
    with suppress(OSError):
        pipe.send_bytes(what)


def helper_main(settings: Settings, pipe: Connection, clock: Clock = utc_now) -> None:
    """A helper process's entry point."""
    configure_logging(settings.log_level, settings.log_format)
    # Ctrl-C and systemd's SIGTERM reach the whole group: the daemon, once it has finished
    # its own jobs, tells us to stop (or its pipe closes), so mail in flight is finished.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    try:
        asyncio.run(_serve(settings, pipe, clock))
    except Exception as exc:  # the boundary: one line; the daemon starts another helper
        log.error("email helper stopped: %s", exc)
        raise SystemExit(1) from None


async def _serve(settings: Settings, pipe: Connection, clock: Clock) -> None:
    async with AsyncExitStack() as stack:
        dispatcher = await _email_dispatcher(settings, stack, clock)
        if dispatcher is None:
            return
        keep_long_lived()  # as the daemon: each message makes thousands of short-lived objects
        orders = _Orders(pipe, settings.shutdown_grace)
        while True:
            await orders.next_wake()  # the daemon's first dispatch, at its start, wakes us
            if orders.stopped:
                return
            run = asyncio.create_task(dispatcher.run_once())
            await orders.wait_for(run)
            if not run.done():  # told to stop
                await _finish(run, orders.grace)
            elif not run.cancelled() and run.exception() is not None:
                log.error("sending email failed: %s", run.exception())


async def _email_dispatcher(
    settings: Settings, stack: AsyncExitStack, clock: Clock
) -> Dispatcher | None:
    store = await open_store(settings)
    stack.push_async_callback(store.close)
    # The core without compiled subscriptions: a helper only sends what is queued.
    service = await build_service(settings, store, clock, index=False)
    dispatcher = await open_dispatcher(settings, service, clock, stack, names=("email",))
    return dispatcher if Channel.EMAIL in dispatcher.channels else None


async def _finish(run: asyncio.Task[object], grace: float) -> None:
    """Let the run end within the grace; cancelled, the dispatcher gives its claims back."""
    done, _ = await asyncio.wait({run}, timeout=grace)
    if not done:
        run.cancel()
    await asyncio.gather(run, return_exceptions=True)


class _Orders:
    """What the daemon says down the pipe: wake up, or stop (also when the pipe closes)."""

    def __init__(self, pipe: Connection, grace: float) -> None:
        self._pipe = pipe
        self.grace = grace
        self._woken = asyncio.Event()
        self._changed = asyncio.Event()
        self.stopped = False
        asyncio.get_running_loop().add_reader(pipe.fileno(), self._read)

    def _read(self) -> None:
        try:
            order = self._pipe.recv_bytes()
        except (EOFError, OSError):  # the daemon is gone: stop with its grace
            order = STOP
        if order.startswith(STOP):
            self.grace = float(order[len(STOP) :] or self.grace)
            self.stopped = True
            asyncio.get_running_loop().remove_reader(self._pipe.fileno())
        self._woken.set()
        self._changed.set()

    async def wait_for(self, run: asyncio.Task[object]) -> None:
        """Until ``run`` ends or a stop arrives; wakes meanwhile are kept for later."""
        while not run.done() and not self.stopped:
            self._changed.clear()
            changed = asyncio.create_task(self._changed.wait())
            await asyncio.wait({run, changed}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()

    async def next_wake(self) -> None:
        if not self.stopped:
            await self._woken.wait()
        self._woken.clear()
