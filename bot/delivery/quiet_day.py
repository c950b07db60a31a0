"""An empty day explained, not silent: for ``status``, the three reasons a day brings no
mail told apart — arXiv made no announcement (a weekend or holiday), a source has been
failing since a given time, or papers came and none matched.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from bot.delivery.digests import ARXIV_EMPTY, NOTE_MAX_AGE, failing, source_label
from bot.messages import (
    no_announcement_words,
    papers_arrived_words,
    papers_matched_words,
    source_failed_words,
)
from bot.models import SourceState
from bot.sources.failures import get_streak, source_key
from bot.store.protocols import Store

DAY = timedelta(hours=24)


async def day_lines(store: Store, now: datetime, sources: Collection[str]) -> list[str]:
    """One line per source that explains a quiet day, then the last 24 hours' counts.
    ``sources``: the ``source_key`` of each source to speak of (those configured now: a
    removed source keeps its stored state, but is no reason for anything today)."""
    lines: list[str] = []
    for state in sorted(await store.list_source_states(), key=lambda s: s.source_id):
        if source_key(state.source_id) in sources:
            line = await _source_line(store, state, now)
            lines += [line] if line else []
    seen = await store.count_papers_since(now - DAY)
    matched = await store.count_matches_since(now - DAY)
    lines.append(f"last 24 hours: {papers_arrived_words(seen)}, {papers_matched_words(matched)}")
    return lines


async def _source_line(store: Store, state: SourceState, now: datetime) -> str | None:
    label = source_label(state.source_id)
    if failing(state):
        streak = await get_streak(store, source_key(state.source_id))
        since = streak.since if streak else state.last_error_at
        tries = f", {streak.count} attempt(s)" if streak else ""
        stamp = f"{since:%Y-%m-%d %H:%M} UTC" if since else "its first try"
        return f"{source_failed_words(label, stamp)}{tries}: {state.last_error}"
    fresh = state.last_success is not None and now - state.last_success <= NOTE_MAX_AGE
    if fresh and state.last_note == ARXIV_EMPTY:
        return no_announcement_words(label)
    return None
