"""The daemon's one-line summaries: per cycle, and per dispatch that did something."""

from __future__ import annotations

from bot.models import IngestReport
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
