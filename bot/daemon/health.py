"""Is the daemon doing its job? The one answer behind ``paperbell check`` and ``/healthz``.

Unhealthy, one reason per line, when:

* the scheduler has not ticked lately (the daemon is not running, or is stuck);
* a source of the daemon has never succeeded: once one of this daemon's attempts failed,
  or ``STARTUP_GRACE`` after the daemon started with no result at all (every source is
  first tried at start, so the grace is time for that attempt to run, retries included);
* a source has not succeeded for more than ``MISSED_INTERVALS`` of its intervals (arXiv:
  24 h), counted from its last success or from the daemon's start, whichever is later, so
  a daemon restarted after a week off is not blamed for the week;
* a channel of the daemon is down;
* deliveries on a channel that is not down were due more than ``OVERDUE_AFTER`` ago.

Sources and channels are the daemon's, read from the database (``bot.daemon.state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.daemon.state import (
    HEARTBEAT,
    LAST_CYCLE,
    ChannelState,
    DaemonRecord,
    RecordedSource,
    channel_states,
    read_daemon_record,
)
from bot.models import SourceState
from bot.settings import Settings
from bot.sources.failures import get_streak, source_key
from bot.store.protocols import Store

STARTUP_GRACE = timedelta(minutes=10)
MISSED_INTERVALS = 3
SLACK = timedelta(minutes=10)  # a poll's jitter and run time on top of whole intervals
OVERDUE_AFTER = timedelta(minutes=15)
NOT_TICKED = "the scheduler has not ticked recently (is paperbell run running?)"
NOT_RECORDED = "no daemon has recorded its sources here; checking this shell's PAPERBELL_SOURCES"


@dataclass(frozen=True, slots=True)
class Health:
    reasons: tuple[str, ...] = ()  # empty when healthy
    detail: str = ""  # what is fine, when healthy
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons


async def check_health(store: Store, settings: Settings, now: datetime) -> Health:
    record = await read_daemon_record(store, settings)
    notes = () if record.started_at else (NOT_RECORDED,)
    beat = await store.get_meta(HEARTBEAT)
    limit = timedelta(seconds=max(180.0, 6 * record.dispatch_seconds))
    if beat is None or now - datetime.fromisoformat(beat) > limit:
        return Health((NOT_TICKED,), notes=notes)
    reasons = await source_reasons(store, record, now)
    reasons += await channel_reasons(store, now)
    return Health(tuple(reasons), await _detail(store, now), notes)


async def _detail(store: Store, now: datetime) -> str:
    last = await store.get_meta(LAST_CYCLE)
    if last is None:
        return "no ingest cycle has finished yet"
    age = now - datetime.fromisoformat(last)
    return f"last ingest cycle {int(age.total_seconds())}s ago"


async def source_reasons(store: Store, record: DaemonRecord, now: datetime) -> list[str]:
    states = {source_key(s.source_id): s for s in await store.list_source_states()}
    reasons = []
    for source in record.sources:
        state = states.get(source.key)
        hint = await _hint(store, source.key)
        reason = source_reason(source, state, record.started_at, now)
        if reason:
            reasons.append(reason + (f" ({hint})" if hint else ""))
    return reasons


async def _hint(store: Store, key: str) -> str:
    streak = await get_streak(store, key)
    return streak.hint if streak else ""


def source_reason(
    source: RecordedSource, state: SourceState | None, started: datetime | None, now: datetime
) -> str | None:
    """Why this source makes the daemon unhealthy, or ``None``."""
    last_success = state.last_success if state else None
    error = state.last_error if state and state.last_error_at else None
    if last_success is None:
        return _never_succeeded(source, state, started, now)
    since = max(last_success, started) if started else last_success
    if now - since <= MISSED_INTERVALS * source.interval + SLACK:
        return None
    every = _span(source.interval)
    what = f"has not succeeded for {_span(now - since)} (more than {MISSED_INTERVALS} x {every})"
    return f"source {source.name} {what}" + (f": {error}" if error else "")


def _never_succeeded(
    source: RecordedSource, state: SourceState | None, started: datetime | None, now: datetime
) -> str | None:
    failed_at = state.last_error_at if state else None
    tried = failed_at is not None and (started is None or failed_at >= started)
    if not tried and started is not None and now - started <= STARTUP_GRACE:
        return None  # its first attempt may still be running
    error = state.last_error if state and state.last_error else "no attempt has finished"
    return f"source {source.name} has never succeeded: {error}"


async def channel_reasons(store: Store, now: datetime) -> list[str]:
    channels = await channel_states(store)
    reasons = [
        f"{name} channel is down since {c.since:%Y-%m-%d %H:%M} UTC: {c.why}; "
        "its deliveries wait in the outbox"
        for name, c in sorted(channels.items())
        if c.state is ChannelState.DOWN
    ]
    overdue = await store.overdue(now - OVERDUE_AFTER)
    for channel, (count, oldest) in sorted(overdue.items()):
        known = channels.get(channel.value)
        if known is not None and known.state is ChannelState.DOWN:
            continue  # waiting on purpose: said above
        running = "" if known else f" (the daemon has no {channel} channel running)"
        reasons.append(
            f"{count} {channel} delivery(ies) overdue, the oldest due {_span(now - oldest)} ago"
            + running
        )
    return reasons


def _span(delta: timedelta) -> str:
    """``12 min``, ``5 h 3 min``, ``3 d 2 h``: precise enough for an operator."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"
