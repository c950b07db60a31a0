"""The daemon's one-line summaries: per cycle, and per dispatch that did something."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.delivery.dispatcher import DeliveryOutcome, DispatchReport
from bot.matching.step import MatchSummary
from bot.models import SourceSummary
from bot.sources.checks import count_by


def cycle_line(
    summaries: Sequence[SourceSummary], matched: MatchSummary, sent: DispatchReport
) -> str:
    parts = []
    for s in summaries:
        status = f"error: {s.error}" if s.error else (s.note or "ok")
        counts = f"fetched {s.fetched}, new {s.new}, updated {s.updated}"
        parts.append(f"{s.name}: {', '.join([counts, *item_notes(s)])} ({status})")
    sources = "; ".join(parts)
    return f"cycle {sources} | matches {matched.matched} | {dispatch_line(sent)}"


def item_notes(summary: SourceSummary) -> list[str]:
    """``7 stored without alert (older than 3 days)``, ``2 skipped (bad date ×2)``, ..."""
    notes = []
    if summary.quiet:
        notes.append(f"{summary.quiet} stored without alert ({summary.quiet_reason})")
    if summary.bad_items:
        reasons = count_by(item.reason for item in summary.bad_items)
        notes.append(f"{len(summary.bad_items)} skipped ({_tally(reasons)})")
    if summary.truncated:
        cut = count_by(summary.truncated)
        notes.append(f"{sum(cut.values())} field(s) cut to size ({_tally(cut)})")
    return notes


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ×{count}" for name, count in counts.items())


def dispatch_line(report: DispatchReport) -> str:
    channels = sorted({channel for channel, _ in report.counts} | set(report.down))
    if not channels:
        return "deliveries: none due"
    parts = []
    for channel in channels:
        counts = ", ".join(
            f"{outcome} {report.count(outcome, channel)}"
            for outcome in DeliveryOutcome
            if report.count(outcome, channel)
        )
        down = f" (DOWN: {report.down[channel]})" if channel in report.down else ""
        parts.append(f"{channel} {counts or 'nothing'}{down}")
    return "deliveries: " + "; ".join(parts)


def failing_note(summary: SourceSummary, next_attempt: datetime | None) -> str:
    """``arxiv failed 3 times in a row since ...; next attempt ...``: for a WARNING line."""
    streak = summary.failing
    assert streak is not None
    hint = f" ({streak.hint})" if streak.hint else ""
    when = f"{next_attempt.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if next_attempt else "none"
    return (
        f"{summary.name} failed {streak.count} times in a row since "
        f"{streak.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC{hint}; next attempt {when}"
    )


def recovered_line(summary: SourceSummary) -> str:
    streak = summary.recovered
    assert streak is not None
    attempts = "attempt" if streak.count == 1 else "attempts"
    return (
        f"{summary.name} recovered after {streak.count} failed {attempts} "
        f"(failing since {streak.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
    )
