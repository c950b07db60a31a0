"""The dispatcher: send what the outbox owes, once it is due, and record what happened.

``Dispatcher.run_once`` claims due rows (pending -> sending, one more attempt), turns each
recipient's batch into ONE message and re-checks that it may still go
(``bot.delivery.policy``: paused user, unconfirmed or suppressed address, removed
subscription, unreachable Discord user -> 'suppressed' with the reason), calls the
channel's ``Notifier`` and records the outcome:

* sent -> 'sent';
* ``TransientDeliveryError`` -> 'pending' again after ``base_delay * 2**(attempts-1)``
  (capped at ``max_delay``, +/- ``jitter``), or 'failed' once ``max_attempts`` are used;
  any other exception from a notifier (a bug) is logged and treated the same way, so one
  bad message never stalls the rest. A message is retried as a message: all its rows get
  the same next attempt time and attempt count, so the retry sends the same one message
  (with the same key, hence the same Message-ID), never a few smaller ones;
* ``PermanentDeliveryError`` -> 'failed' with the reason; when the recipient itself is
  unreachable ``bot.delivery.policy.after_permanent_failure`` says what follows: an email
  address earns a strike (``EMAIL_STRIKES`` suppress it), a Discord user's alerts fall
  back to email;
* ``ChannelDownError`` -> the batch goes back untouched (the attempt is not counted) and
  the channel sits out: ``ChannelUnreachableError`` marks it waiting in ``ChannelStatus``
  (probed again after a backoff), any other stops it for this process. Its rows stay
  'pending' meanwhile, never burnt to 'failed' by an outage; the report names it.

Delivery is at least once: the only window for a duplicate is between the notifier
returning and our commit of 'sent'. A crash inside it leaves rows in 'sending' under a
lease (``Store.claim_due``); once the lease has passed any process claims them again. The
lease of a message is renewed right before it is sent, so a slow run never loses its rows
to another process. Messages go out one at a time, so a crash duplicates at most one
message; a retried message keeps its key, so channels can mark the copy (Message-ID).

Rows of a channel without a notifier, or not up in ``ChannelStatus``, are never claimed:
they wait until it is configured or back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.accounts.addresses import LinkBuilder
from bot.delivery.channel_status import ChannelStatus
from bot.delivery.digests import DigestPlanner
from bot.delivery.messages import MessageBuilder, Plan, batch_key
from bot.delivery.notifier import Channel, Notifier
from bot.delivery.policy import EMAIL_STRIKES, Action, after_permanent_failure
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

__all__ = ["DeliveryOutcome", "DeliveryState", "DispatchReport", "Dispatcher"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[], Awaitable[None]]
MAX_EXPONENT = 30  # 2**30 base delays is far past any max_delay; avoids huge timedeltas


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRIED = "retried"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """Deliveries (rows, not messages) per channel and outcome, and channels found down."""

    counts: Mapping[tuple[Channel, DeliveryOutcome], int] = field(default_factory=dict)
    down: Mapping[Channel, str] = field(default_factory=dict)  # channel -> the error

    def count(self, outcome: DeliveryOutcome, channel: Channel | None = None) -> int:
        """Rows with this outcome, on one channel or on all."""
        return sum(
            n
            for (on, out), n in self.counts.items()
            if out is outcome and (channel is None or on is channel)
        )


@dataclass
class _Run:
    """What one ``run_once`` has done so far."""

    started: datetime
    tally: Counter[tuple[Channel, DeliveryOutcome]] = field(default_factory=Counter)
    down: dict[Channel, str] = field(default_factory=dict)

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
        batch_limit: int = 100,
        digests: DigestPlanner | None = None,
        status: ChannelStatus | None = None,
        lease: timedelta = DEFAULT_LEASE,
        progress: Progress | None = None,
    ) -> None:
        if not 0 <= jitter < 1 or max_attempts < 1 or base_delay <= timedelta(0):
            raise ValueError("need 0 <= jitter < 1, max_attempts >= 1 and a positive base_delay")
        self._store = store
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._rng = rng
        self._max_attempts = max_attempts
        self._base_delay, self._max_delay, self._jitter = base_delay, max_delay, jitter
        self._batch_limit = batch_limit
        self.status = status or ChannelStatus(clock)
        self._lease = lease
        self.progress = progress  # awaited after each message: the daemon's heartbeat
        planner = digests or DigestPlanner(store, clock)
        self._messages = MessageBuilder(store, self._notifiers, build_links, planner)
        self._lock = asyncio.Lock()
        self._run = _Run(datetime.min.replace(tzinfo=UTC))

    @property
    def channels(self) -> frozenset[Channel]:
        return frozenset(self._notifiers)

    async def run_once(self, now: datetime | None = None) -> DispatchReport:
        """Send everything due at ``now`` (default: the clock) until nothing is due."""
        async with self._lock:
            self._run = run = _Run(now or self._clock())
            while active := self._active(run):
                batches = await self._store.claim_due(
                    run.started, self._batch_limit, active, lease=self._lease
                )
                if not batches:
                    break
                try:
                    await self._send(batches)
                except BaseException:  # cancelled past the shutdown grace, or a store error
                    await self._release_unsent(batches)
                    raise
            return run.report()

    async def _send(self, batches: Sequence[DeliveryBatch]) -> None:
        for batch in batches:
            for plan in await self._messages.plan(batch, self._now()):
                await self._settle(batch, plan)
                if self.progress is not None:
                    await self.progress()

    async def _release_unsent(self, batches: Sequence[DeliveryBatch]) -> None:
        """Give back what this run claimed and did not settle, so the next process need not
        wait for the lease (a message cut off mid-send may then go twice: at least once)."""
        ids = [d.id for b in batches for d in b.deliveries]
        await asyncio.shield(self._store.release(ids, self._now()))  # only 'sending' rows

    def _active(self, run: _Run) -> list[Channel]:
        now = self._clock()
        return [c for c in self._notifiers if c not in run.down and self.status.usable(c, now)]

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next try after ``attempts`` tries: doubling, capped, jittered."""
        exponent = min(max(attempts - 1, 0), MAX_EXPONENT)
        delay = min(self._max_delay, self._base_delay * (1 << exponent))
        return delay * (1 + self._rng.uniform(-self._jitter, self._jitter))

    def _now(self) -> datetime:
        # Never before the run's own time, so a retry cannot fall due again in this run.
        return max(self._run.started, self._clock())

    def _add(self, channel: Channel, outcome: DeliveryOutcome, rows: int) -> None:
        if rows:
            self._run.tally[channel, outcome] += rows

    async def _settle(self, batch: DeliveryBatch, plan: Plan) -> None:
        for reason, rows in plan.suppressed.items():
            await self._store.mark_suppressed([d.id for d in rows], reason, self._now())
            self._add(batch.channel, DeliveryOutcome.SUPPRESSED, len(rows))
        if plan.send is None or not plan.rows:
            return
        ids = [d.id for d in plan.rows]
        if batch.channel in self._run.down:  # went down earlier in this batch
            await self._store.release(ids, self._now())
            return
        if not await self._hold(batch, ids):
            return
        try:
            await plan.send()
        except ChannelDownError as exc:
            await self._store.release(ids, self._now())
            self._down(batch.channel, exc)
        except PermanentDeliveryError as exc:
            await self._store.mark_failed(ids, exc.reason, self._now())
            self._add(batch.channel, DeliveryOutcome.FAILED, len(ids))
            if exc.recipient_unreachable:  # what follows is the policy's call
                await self._unreachable(batch, plan.rows, exc.reason)
        except Exception as exc:  # transient, or a bug in one message: retry, never stall
            if not isinstance(exc, TransientDeliveryError):
                log.exception("delivering %s failed unexpectedly", batch_key(batch, plan.rows))
            await self._retry(batch.channel, plan.rows, _describe(exc))
        else:
            await self._store.mark_sent(ids, self._now())
            self._add(batch.channel, DeliveryOutcome.SENT, len(ids))
            self.status.up(batch.channel)  # a probe of a waiting channel went through

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
        self._run.down[channel] = str(exc)
        if isinstance(exc, ChannelUnreachableError):
            self.status.waiting(channel, str(exc), probe=True)
        else:
            self.status.stopped(channel, str(exc))

    async def _retry(self, channel: Channel, rows: Sequence[Delivery], error: str) -> None:
        """Reschedule the message as a whole: its rows still in play get one next attempt
        time and one attempt count (the highest), so the retry is the same one message.
        A row that has used up its own attempts (one that joined late does not) fails."""
        now = self._now()
        spent = [d.id for d in rows if d.attempts >= self._max_attempts]
        if spent:
            message = f"gave up after {self._max_attempts} attempts: {error}"
            await self._store.mark_failed(spent, message, now)
            self._add(channel, DeliveryOutcome.FAILED, len(spent))
        again = [d for d in rows if d.id not in spent]
        if again:
            attempts = max(d.attempts for d in again)
            when = now + self.backoff(attempts)
            retries = dict.fromkeys((d.id for d in again), when)
            await self._store.retry_later(retries, error, now, attempts=attempts)
            self._add(channel, DeliveryOutcome.RETRIED, len(again))

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


def _describe(exc: Exception) -> str:
    if isinstance(exc, TransientDeliveryError):
        return str(exc) or type(exc).__name__
    return f"internal error ({type(exc).__name__}: {exc})"
