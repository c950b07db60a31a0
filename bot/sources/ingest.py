"""One ingest cycle: every source fetched, each one's papers stored in one transaction.

Sources run concurrently (arXiv ones still take turns through the HTTP client's throttle).
A source that fails (or crashes) is reported in its summary and remembered in its state,
with how many times in a row it failed (``bot.sources.failures``); the others carry on, and
nothing of the failed fetch is stored. A bad item only is skipped and counted
(``bot.sources.checks``); old news is stored without alert (``AlertRule``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.errors import SourceError
from bot.models import (
    AlertRule,
    FetchResult,
    IngestReport,
    Paper,
    SourceState,
    SourceSummary,
    UpsertResult,
)
from bot.sources.base import Source
from bot.sources.checks import Vetted, vet
from bot.sources.failures import end_streak, failure_hint, note_failure
from bot.store.protocols import Store
from bot.text import redact_url

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_cycle(
    sources: Sequence[Source],
    store: Store,
    clock: Clock = utc_now,
    *,
    alert_max_age_days: int | None = None,
    follow_upvotes: int = 0,
) -> IngestReport:
    """Fetch every source once and store what it returned; never raises for a source.

    With ``alert_max_age_days``, papers published longer ago than that when first seen
    are stored but never alerted (see ``AlertRule``); None alerts everything.
    ``follow_upvotes``: the upvote count whose crossing followers hear of (0: never).
    """
    rule = _alert_rule(alert_max_age_days, follow_upvotes)
    cycles = (_ingest_one(s, store, clock, rule) for s in sources)
    results = await asyncio.gather(*cycles)
    new: dict[str, Paper] = {}
    updated: dict[str, Paper] = {}
    for _, fresh, changed in results:
        new.update((p.key, p) for p in fresh)
        updated.update((p.key, p) for p in changed if p.key not in new)
    return IngestReport(
        summaries=tuple(summary for summary, _, _ in results),
        new_papers=tuple(new.values()),
        updated_papers=tuple(updated.values()),
    )


_Result = tuple[SourceSummary, tuple[Paper, ...], tuple[Paper, ...]]


async def _ingest_one(source: Source, store: Store, clock: Clock, rule: AlertRule) -> _Result:
    config = source.config
    base = SourceSummary(source_id=config.source_id, name=config.name)
    try:
        return await _fetch_and_store(source, store, clock, rule, base)
    except SourceError as exc:
        return await _failed(store, base, exc, str(exc), clock), (), ()
    except Exception as exc:  # a bug or a hostile item in one source must not stop the others
        log.exception("source %s crashed", config.source_id)
        message = f"internal error ({type(exc).__name__}); see the log"
        return await _failed(store, base, exc, message, clock), (), ()


async def _fetch_and_store(
    source: Source, store: Store, clock: Clock, rule: AlertRule, base: SourceSummary
) -> _Result:
    state = await store.get_source_state(base.source_id) or SourceState(base.source_id)
    fetched = await source.fetch(state)
    now = clock()
    vetted = vet(fetched.sightings, now)
    new_state = replace(
        state,
        # Replace, not merge: a source returns validators for every URL it asked this time,
        # so dated URLs (HF's ?date=) it no longer polls drop out instead of piling up.
        http_cache=dict(fetched.http_cache),
        last_success=now,
        last_note=fetched.note,
    )
    alert = replace(rule, first_fetch=state.last_success is None)
    result = await store.ingest(vetted.sightings, new_state, now, alert)
    summary = _summary(base, fetched, vetted, result, alert)
    summary = replace(summary, recovered=await end_streak(store, base.source_id))
    if summary.bad_items:  # the cycle line counts them; the first says what to look for
        bad = summary.bad_items
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        log.info("%s: skipped a bad item: %s%s", base.name, bad[0].detail, more)
    return summary, result.new, result.updated


def _summary(
    base: SourceSummary,
    fetched: FetchResult,
    vetted: Vetted,
    result: UpsertResult,
    alert: AlertRule,
) -> SourceSummary:
    return replace(
        base,
        fetched=len(fetched.sightings) + len(fetched.bad_items),
        new=len(result.new),
        updated=len(result.updated),
        unchanged=result.unchanged,
        skipped=result.skipped,
        note=fetched.note,
        quiet=result.quiet,
        quiet_reason=_quiet_reason(alert),
        bad_items=fetched.bad_items + vetted.bad,
        truncated=vetted.truncated,
    )


def _alert_rule(max_age_days: int | None, follow_upvotes: int) -> AlertRule:
    max_age = None if max_age_days is None else timedelta(days=max_age_days)
    return AlertRule(max_age, follow_upvotes=follow_upvotes)


def _quiet_reason(alert: AlertRule) -> str:
    if alert.max_age is None:
        return ""
    days = alert.max_age.days
    older = f"older than {days} day{'' if days == 1 else 's'}"
    return f"{older} or undated, on a first fetch" if alert.first_fetch else older


async def _failed(
    store: Store, base: SourceSummary, exc: Exception, error: str, clock: Clock
) -> SourceSummary:
    now = clock()
    error = redact_url(error)  # a client library may have quoted the URL as it was fetched
    await store.record_source_error(base.source_id, error, now)
    streak = await note_failure(store, base.source_id, failure_hint(exc), now)
    return replace(base, error=error, failing=streak)
