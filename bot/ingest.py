"""One ingest cycle: every source fetched, each one's papers stored in one transaction.

Sources run concurrently (arXiv ones still take turns through the HTTP client's throttle).
A source that fails is reported in its summary and remembered in its state; the others
carry on, and nothing of the failed fetch is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bot.errors import SourceError
from bot.models import IngestReport, Paper, SourceState, SourceSummary
from bot.sources.base import Source
from bot.store.base import Store
from bot.text import redact_url

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_cycle(
    sources: Sequence[Source], store: Store, clock: Clock = utc_now
) -> IngestReport:
    """Fetch every source once and store what it returned; never raises for a source."""
    results = await asyncio.gather(*(_ingest_one(s, store, clock) for s in sources))
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


async def _ingest_one(
    source: Source, store: Store, clock: Clock
) -> tuple[SourceSummary, tuple[Paper, ...], tuple[Paper, ...]]:
    config = source.config
    base = SourceSummary(source_id=config.source_id, name=config.name)
    state = await store.get_source_state(config.source_id) or SourceState(config.source_id)
    try:
        fetched = await source.fetch(state)
    except SourceError as exc:
        return await _failed(store, base, str(exc), clock), (), ()
    except Exception as exc:  # a bug in one source must not stop the others
        log.exception("source %s crashed", config.source_id)
        message = f"internal error ({type(exc).__name__}); see the log"
        return await _failed(store, base, message, clock), (), ()
    now = clock()
    new_state = replace(
        state,
        # Replace, not merge: a source returns validators for every URL it asked this time,
        # so dated URLs (HF's ?date=) it no longer polls drop out instead of piling up.
        http_cache=dict(fetched.http_cache),
        last_success=now,
        last_note=fetched.note,
    )
    result = await store.ingest(fetched.sightings, new_state, now)
    summary = replace(
        base,
        fetched=len(fetched.sightings),
        new=len(result.new),
        updated=len(result.updated),
        unchanged=result.unchanged,
        skipped=result.skipped,
        note=fetched.note,
    )
    return summary, result.new, result.updated


async def _failed(store: Store, base: SourceSummary, error: str, clock: Clock) -> SourceSummary:
    error = redact_url(error)  # a client library may have quoted the URL as it was fetched
    await store.record_source_error(base.source_id, error, clock())
    return replace(base, error=error)
