"""The dispatcher: send what the outbox owes, once it is due, and record what happened.

``Dispatcher.run_once`` claims due rows (pending -> sending, one more attempt), reads what
the claim's messages need in a few queries (``MessageBuilder.read``), turns each
recipient's batch into ONE message and re-checks that it may still go
(``bot.delivery.policy``: paused user, unconfirmed or suppressed address, removed
subscription, unreachable Discord user -> 'suppressed' with the reason), hands it to the
channel's ``Notifier`` and records the outcome:

* sent -> 'sent';
* ``TransientDeliveryError`` -> 'pending' again after a backoff, or 'failed' once
  ``max_attempts`` are used (``bot.delivery.retries``); any other exception from a
  notifier (a bug) is logged and treated the same way, so one bad message never stalls
  the rest. A message is retried as a message, with the same key, hence the same
  Message-ID;
* ``PermanentDeliveryError`` -> 'failed' with the reason; when the recipient itself is
  unreachable ``bot.delivery.policy.after_permanent_failure`` says what follows: an email
  address earns a strike (``EMAIL_STRIKES`` suppress it), a Discord user's alerts fall
  back to email;
* ``ChannelDownError`` -> the batch goes back untouched (the attempt is not counted) and
  the channel sits out: ``ChannelUnreachableError`` marks it waiting in ``ChannelStatus``
  (probed again after a backoff), any other stops it for this process. Its further
  batches of the run are given back unbuilt, never burnt to 'failed' by an outage; the
  report names it.

Several messages are in flight at once: up to the notifier's ``concurrency`` (an
attribute it may have; ``DEFAULT_CONCURRENCY`` otherwise) per channel. A sent message is
written as sent the moment its send returns, in one transaction with the others that
finished while the previous such write was under way (``SentWriter``); other outcomes are
written in bulk, one transaction per wave of about that many finished messages, while
those in flight go on; the next claim is taken and read while this one is sent, and its
messages start while this one's last are still in flight. A failed write is tried again
(``SETTLE_TRIES``), and when the tries are used up, or anything else goes wrong mid-claim
(a store error, a cancellation), what is in flight is cancelled, what finished is
recorded if it can be, and every row of this claim, the one before and the next still in
'sending' is given back ('pending', the attempt not counted): no row is left to wait for
its lease, and the error is raised once, to the caller.

Delivery is at least once: the only window for a duplicate is between the notifier
returning and the commit of 'sent'. A crash inside it leaves rows in 'sending' under a
lease (``Store.claim_due``); once the lease has passed any process claims them again. The
lease of a message is renewed right before it is sent, so a slow run never loses its rows
to another process. A crash duplicates at most the messages in flight (the notifier's
concurrency: one with a concurrency of 1); a retried message keeps its key, so channels
can mark the copy (Message-ID).

Rows of a channel without a notifier, or not up in ``ChannelStatus``, are never claimed:
they wait until it is configured or back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from bot.accounts.addresses import LinkBuilder
from bot.delivery.channel_status import ChannelStatus
from bot.delivery.digests import DigestPlanner
from bot.delivery.messages import ClaimReads, MessageBuilder, batch_key
from bot.delivery.notifier import Channel, Notifier
from bot.delivery.outcomes import (
    DeliveryOutcome,
    DispatchReport,
    Outcomes,
    SentWriter,
    retried,
    write_outcomes,
)
from bot.delivery.policy import EMAIL_STRIKES, Action, after_permanent_failure
from bot.delivery.retries import RetryPolicy, describe
from bot.errors import (
    ChannelDownError,
    ChannelUnreachableError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from bot.store.protocols import (
    DEFAULT_LEASE,
    Delivery,
    DeliveryBatch,
    DeliveryState,
    Store,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DeliveryOutcome",
    "DeliveryState",
    "DispatchReport",
    "Dispatcher",
    "concurrency_of",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[], Awaitable[None]]
Send = Callable[[], Awaitable[None]]
DEFAULT_CONCURRENCY = 4  # messages in flight per channel, unless its notifier says
# Recipients per claim. Two claims are held at once (one sent, the next read ahead), each
# with every paper of every row: with a day of 80-paper alerts, 100 grew the process by
# 49 MB and 32 by 37 MB (bench/cycle.py, 10k), as fast; 32 still feeds eight senders.
BATCH_LIMIT = 32


def concurrency_of(notifier: Notifier) -> int:
    """How many messages a notifier takes at once: its ``concurrency`` if it has one."""
    return max(1, int(getattr(notifier, "concurrency", DEFAULT_CONCURRENCY)))


@dataclass(frozen=True, slots=True)
class Claim:
    """Claimed batches and what their messages need."""

    batches: Sequence[DeliveryBatch]
    reads: ClaimReads


@dataclass
class _Run:
    """What one ``run_once`` has done so far, and what it has in flight."""

    started: datetime
    slots: dict[Channel, asyncio.Semaphore] = field(default_factory=dict)
    tally: Counter[tuple[Channel, DeliveryOutcome]] = field(default_factory=Counter)
    down: dict[Channel, str] = field(default_factory=dict)
    pending: Outcomes = field(default_factory=Outcomes)  # finished, not yet written
    flight: set[asyncio.Task[None]] = field(default_factory=set)

    def report(self) -> DispatchReport:
        return DispatchReport(dict(self.tally), dict(self.down))


class Dispatcher:
    """Sends due outbox rows through the notifiers; one run at a time."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[Channel, Notifier],
        build_links: LinkBuilder,
        clock: Clock,
        rng: random.Random,
        *,
        max_attempts: int = 8,
        base_delay: timedelta = timedelta(seconds=60),
        max_delay: timedelta = timedelta(hours=6),
        jitter: float = 0.1,
        batch_limit: int = BATCH_LIMIT,
        digests: DigestPlanner | None = None,
        status: ChannelStatus | None = None,
        lease: timedelta = DEFAULT_LEASE,
        progress: Progress | None = None,
    ) -> None:
        self._retries = RetryPolicy(rng, max_attempts, base_delay, max_delay, jitter)
        self._store = store
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._batch_limit = batch_limit
        self.status = status or ChannelStatus(clock)
        self._lease = lease
        self._sent = SentWriter(store)
        self.progress = progress  # awaited after each wave of messages: the daemon's heartbeat
        planner = digests or DigestPlanner(store, clock)
        self._messages = MessageBuilder(store, self._notifiers, build_links, planner)
        self._wave = max((concurrency_of(n) for n in self._notifiers.values()), default=1)
        self._lock = asyncio.Lock()
        self._run = _Run(datetime.min.replace(tzinfo=UTC))

    @property
    def channels(self) -> frozenset[Channel]:
        return frozenset(self._notifiers)

    async def run_once(self, now: datetime | None = None) -> DispatchReport:
        """Send everything due at ``now`` (default: the clock) until nothing is due."""
        async with self._lock:
            self._run = _Run(now or self._clock(), self._new_slots())
            claim = await self._claim()
            previous: Sequence[DeliveryBatch] = ()  # the claim before: its reads let go
            while claim.batches:
                # The next claim is taken and read while this one is sent: the database
                # works on it while the loop builds and sends messages.
                ahead = asyncio.create_task(self._claim())
                try:
                    await self._send(claim)
                    following = await ahead
                    if not following.batches:
                        # Taken early, it may miss rows queued since: what the messages in
                        # flight lead to once written (a fall back to email) among them.
                        # So the run ends only with nothing in flight and all written.
                        await self._finish()
                        following = await self._claim()
                except BaseException as exc:  # a store error, or cancelled past the grace
                    await asyncio.shield(self._give_back((*previous, *claim.batches), ahead, exc))
                    raise
                # This claim's last messages are still in flight as the next one starts:
                # waiting for them at each claim left the process idle some 5 % of a run.
                claim, previous = following, claim.batches
            return self._run.report()

    async def _claim(self) -> Claim:
        active = self._active(self._run)
        if not active:
            return Claim((), ClaimReads())
        batches = await self._store.claim_due(
            self._run.started, self._batch_limit, active, lease=self._lease
        )
        return Claim(batches, await self._messages.read(batches))

    def _new_slots(self) -> dict[Channel, asyncio.Semaphore]:
        return {c: asyncio.Semaphore(concurrency_of(n)) for c, n in self._notifiers.items()}

    async def _send(self, claim: Claim) -> None:
        """Put the claim's messages in flight, several at a time, writing outcomes wave by
        wave; returns when the last is in flight (``_finish`` waits for them)."""
        for batch in claim.batches:
            await self._send_batch(batch, claim.reads)

    async def _finish(self) -> None:
        """Wait for the messages in flight, then write what is left to write."""
        await asyncio.gather(*self._run.flight)  # the sends never raise but cancelled
        await self._flush()

    async def _send_batch(self, batch: DeliveryBatch, reads: ClaimReads) -> None:
        if batch.channel in self._run.down:  # went down earlier in this run: not even built
            self._run.pending.released.extend(d.id for d in batch.deliveries)
            return
        for plan in await self._messages.plan(batch, reads, self._now()):
            for reason, rows in plan.suppressed.items():
                self._run.pending.suppress(reason, [d.id for d in rows])
                self._add(batch.channel, DeliveryOutcome.SUPPRESSED, len(rows))
            if plan.send is not None and plan.rows:
                await self._start(batch, plan.rows, plan.send)

    async def _start(self, batch: DeliveryBatch, rows: list[Delivery], send: Send) -> None:
        """Put the message in flight once its channel has a free slot, after writing the
        outcomes of the messages that finished meanwhile if they make a wave."""
        ids, run = [d.id for d in rows], self._run
        slot = run.slots[batch.channel]
        await slot.acquire()
        try:
            if run.pending.messages >= self._wave:
                await self._flush()
            if batch.channel in run.down:  # went down while we waited
                run.pending.released.extend(ids)
            elif await self._hold(batch, ids):
                task = asyncio.create_task(self._deliver(batch, rows, send, slot))
                run.flight.add(task)
                task.add_done_callback(run.flight.discard)
                return
        except BaseException:
            slot.release()
            raise
        slot.release()

    async def _deliver(
        self, batch: DeliveryBatch, rows: Sequence[Delivery], send: Send, slot: asyncio.Semaphore
    ) -> None:
        """One message in flight: its outcome is noted, to be written with its wave."""
        try:
            await send()
        except Exception as exc:  # what each delivery error means: ``_undelivered``
            self._undelivered(batch, rows, exc)
        else:
            await self._settle_now(rows)
            self._add(batch.channel, DeliveryOutcome.SENT, len(rows))
            self.status.up(batch.channel)  # a probe of a waiting channel went through
        finally:
            self._run.pending.messages += 1
            slot.release()

    async def _settle_now(self, rows: Sequence[Delivery]) -> None:
        """A sent message is written as sent at once, not with its wave: a process killed
        right after sends again only what was in flight (a wave's worth of sent-but-unwritten
        rows would all go again). If the write fails, the wave writes it."""
        ids = [d.id for d in rows]
        try:
            await self._sent.settle(ids, self._now())
        except Exception as exc:
            log.warning(
                "recording %d sent row(s) failed (%s); the next wave writes them", len(ids), exc
            )
            self._run.pending.sent.extend(ids)

    def _undelivered(self, batch: DeliveryBatch, rows: Sequence[Delivery], exc: Exception) -> None:
        ids, pending = [d.id for d in rows], self._run.pending
        if isinstance(exc, ChannelDownError):
            pending.released.extend(ids)
            self._down(batch.channel, exc)
        elif isinstance(exc, PermanentDeliveryError):
            pending.fail(exc.reason, ids)
            self._add(batch.channel, DeliveryOutcome.FAILED, len(ids))
            if exc.recipient_unreachable:  # what follows is the policy's call, once written
                pending.unreachable.append((batch, list(rows), exc.reason))
        else:  # transient, or a bug in one message: retry, never stall
            if not isinstance(exc, TransientDeliveryError):
                key = batch_key(batch, rows)
                log.error("delivering %s failed unexpectedly", key, exc_info=exc)
            self._retry(batch.channel, rows, describe(exc))

    async def _abort(self) -> None:
        """Cancel what is in flight: its rows stay 'sending', for ``_give_back``."""
        flight = list(self._run.flight)
        for task in flight:
            task.cancel()
        await asyncio.gather(*flight, return_exceptions=True)

    async def _flush(self) -> None:
        """Write the outcomes noted so far, in one transaction (tried again if it fails),
        while the messages in flight go on; then the daemon's heartbeat."""
        outcomes, self._run.pending = self._run.pending, Outcomes()
        if not outcomes.empty:
            await self._write(outcomes)
        if self.progress is not None:
            await self.progress()

    async def _write(self, outcomes: Outcomes) -> None:
        what = f"recording {outcomes.messages} messages"
        await retried(what, partial(self._record, outcomes))
        for batch, rows, reason in outcomes.unreachable:
            await self._unreachable(batch, rows, reason)

    async def _record(self, outcomes: Outcomes) -> None:
        await write_outcomes(self._store, outcomes, self._now())

    async def _give_back(
        self, batches: Sequence[DeliveryBatch], ahead: asyncio.Task[Claim], error: BaseException
    ) -> None:
        """After ``error`` mid-claim: cancel what is in flight, record what finished if we
        can, then give back every row still in 'sending' of ``batches`` (the claim being
        sent and the one before, whose last messages may still be in flight) and of the
        next claim, so none waits for its lease (a message cut off mid-send, or whose outcome
        could not be written, may go again: at least once). What fails here is noted on
        ``error``, which the caller raises."""
        await self._abort()
        outcomes, self._run.pending = self._run.pending, Outcomes()
        batches = list(batches)
        with suppress(Exception, asyncio.CancelledError):
            batches += (await ahead).batches
        claimed = Outcomes(released=[d.id for b in batches for d in b.deliveries])
        for what, todo in (("recording finished messages", outcomes), ("giving back", claimed)):
            try:
                await retried(what, partial(self._record, todo))
            except Exception as exc:
                error.add_note(f"then {what} failed too: {exc}")

    def _active(self, run: _Run) -> list[Channel]:
        now = self._clock()
        return [c for c in self._notifiers if c not in run.down and self.status.usable(c, now)]

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next try after ``attempts`` tries: doubling, capped, jittered."""
        return self._retries.backoff(attempts)

    def _now(self) -> datetime:
        # Never before the run's own time, so a retry cannot fall due again in this run.
        return max(self._run.started, self._clock())

    def _add(self, channel: Channel, outcome: DeliveryOutcome, rows: int) -> None:
        if rows:
            self._run.tally[channel, outcome] += rows

    async def _hold(self, batch: DeliveryBatch, ids: Sequence[int]) -> bool:
        """Renew the claim's lease of these rows before sending them; False (and the rows
        still ours released) when another process took them after our lease ran out."""
        now = self._now()
        if batch.lease is None or now + self._lease / 2 < batch.lease:
            return True  # still ours for long enough to send: no write needed
        held = await self._store.renew_lease(ids, batch.lease, now + self._lease)
        if len(held) == len(ids):
            return True
        await self._store.release(list(held), now)
        log.warning("deliveries %s: our claim expired and another process took them", ids)
        return False

    def _down(self, channel: Channel, exc: ChannelDownError) -> None:
        if channel in self._run.down:  # another message in flight saw it first
            return
        self._run.down[channel] = str(exc)
        if isinstance(exc, ChannelUnreachableError):
            self.status.waiting(channel, str(exc), probe=True)
        else:
            self.status.stopped(channel, str(exc))

    def _retry(self, channel: Channel, rows: Sequence[Delivery], error: str) -> None:
        """Reschedule the message as a whole (``RetryPolicy.retry``)."""
        retry, pending = self._retries.retry(rows, self._now()), self._run.pending
        if retry.spent:
            why = f"gave up after {self._retries.max_attempts} attempts: {error}"
            pending.fail(why, retry.spent)
            self._add(channel, DeliveryOutcome.FAILED, len(retry.spent))
        if retry.again:
            pending.retries.append((retry.again, error, retry.attempts))
            self._add(channel, DeliveryOutcome.RETRIED, len(retry.again))

    async def _unreachable(
        self, batch: DeliveryBatch, rows: Sequence[Delivery], reason: str
    ) -> None:
        action = after_permanent_failure(batch.channel, batch.kind, recipient_unreachable=True)
        user = await self._messages.user(batch.owner)
        if user is None or action is Action.NOTHING:
            return
        if action is Action.STRIKE:
            # A confirmation names its address; alerts and digests went to the current one.
            address = str(rows[0].payload.get("address") or user.email or "")
            await self._store.record_email_strike(
                user.id, address, reason, self._now(), strikes=EMAIL_STRIKES
            )
        else:
            await self._messages.fall_back(user, rows, reason, self._now())
