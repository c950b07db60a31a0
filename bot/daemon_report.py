"""The daemon's one-line summaries: per cycle, and per dispatch that did something."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.models import IngestReport, SourceSummary
from bot.outbox import DeliveryOutcome, DispatchReport
from bot.pipeline import MatchSummary


def cycle_line(report: IngestReport, matched: MatchSummary, sent: DispatchReport) -> str:
    parts = []
    for s in report.summaries:
        status = f"error: {s.error}" if s.error else (s.note or "ok")
        parts.append(f"{s.name}: fetched {s.fetched}, new {s.new}, updated {s.updated} ({status})")
    sources = "; ".join(parts)
    return f"cycle {sources} | matches {matched.matched} | {dispatch_line(sent)}"


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
