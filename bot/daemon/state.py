"""What the running daemon records about itself, for other processes to read.

``paperbell status`` and ``paperbell check`` run in another shell, often with other
settings (or none): they must describe the daemon, not themselves. So the daemon writes
into the ``meta`` table, at start, which sources it polls and when it started, and, as it
runs, whether each of its channels is up or down. Nothing here needs a migration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.delivery.channel_status import META_KEY
from bot.models import SourceKind
from bot.settings import Settings, SourceConfig
from bot.sources.failures import source_key
from bot.store.protocols import MetaStore
from bot.text import redact_url

HEARTBEAT = "daemon.heartbeat"
LAST_CYCLE = "ingest.last_cycle"
RECORD = "daemon.record"
# The daemon's channel health, as ``bot.delivery.channel_status.ChannelStatus.snapshot`` saves it.
CHANNELS = META_KEY
ARXIV_KINDS = frozenset({SourceKind.ARXIV_RSS, SourceKind.ARXIV_API})
# arXiv sources run on a cron (a few looks per announcement day, none at weekends): for
# health they count as polled once a day.
ARXIV_INTERVAL = timedelta(hours=24)


class ChannelState(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class RecordedSource:
    """One source as the daemon runs it."""

    key: str  # source_key(source_id): joins sources_state without copying the URL's secrets
    kind: str
    name: str
    url: str  # any userinfo in it replaced by *** (bot.text.redact_url)
    interval: timedelta  # how often it is polled (arXiv: ARXIV_INTERVAL)
    schedule: str  # said for people: "every 60 min", "weekdays 00:15, ..."


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    """The daemon's sources; ``started_at`` is None when they come from this shell instead."""

    sources: tuple[RecordedSource, ...]
    dispatch_seconds: float
    started_at: datetime | None = None
    email_helpers: int = 0  # helper processes sending email beside it (bot.daemon.helpers)


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    state: ChannelState
    why: str
    since: datetime


def health_interval(config: SourceConfig) -> timedelta:
    if config.kind in ARXIV_KINDS:
        return ARXIV_INTERVAL
    return timedelta(minutes=config.interval_minutes)


def recorded_source(config: SourceConfig, schedule: str) -> RecordedSource:
    return RecordedSource(
        key=source_key(config.source_id),
        kind=config.kind.value,
        name=config.name,
        url=redact_url(config.url),
        interval=health_interval(config),
        schedule=schedule,
    )


async def record_daemon_start(
    store: MetaStore, sources: Sequence[RecordedSource], dispatch_seconds: float, now: datetime
) -> None:
    """Called once by ``paperbell run`` before its first job; replaces an earlier record."""
    value = {
        "started_at": now.isoformat(),
        "dispatch_seconds": dispatch_seconds,
        "sources": [_source_json(s) for s in sources],
    }
    await store.set_meta(RECORD, json.dumps(value))
    await store.set_meta(CHANNELS, "{}")  # the channels of an earlier run are not ours


async def record_email_helpers(store: MetaStore, count: int) -> None:
    """Called by ``paperbell run`` once its email helpers are started."""
    raw = await store.get_meta(RECORD)
    if raw:
        await store.set_meta(RECORD, json.dumps({**json.loads(raw), "email_helpers": count}))


async def read_daemon_record(store: MetaStore, settings: Settings) -> DaemonRecord:
    """What the daemon recorded; this shell's settings (``started_at`` None) if nothing was."""
    raw = await store.get_meta(RECORD)
    if not raw:
        fallback = tuple(recorded_source(c, _schedule(c)) for c in settings.sources)
        return DaemonRecord(fallback, settings.dispatch_seconds)
    data = json.loads(raw)
    return DaemonRecord(
        sources=tuple(_source_from_json(s) for s in data["sources"]),
        dispatch_seconds=float(data["dispatch_seconds"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        email_helpers=int(data.get("email_helpers", 0)),
    )


def _schedule(config: SourceConfig) -> str:
    if config.kind in ARXIV_KINDS:
        return "arXiv's announcement schedule"
    return f"every {config.interval_minutes} min"


def _source_json(source: RecordedSource) -> dict[str, object]:
    return {
        "key": source.key,
        "kind": source.kind,
        "name": source.name,
        "url": source.url,
        "interval_minutes": source.interval.total_seconds() / 60,
        "schedule": source.schedule,
    }


def _source_from_json(data: dict[str, object]) -> RecordedSource:
    minutes = data["interval_minutes"]
    assert isinstance(minutes, int | float)
    return RecordedSource(
        key=str(data["key"]),
        kind=str(data["kind"]),
        name=str(data["name"]),
        url=str(data["url"]),
        interval=timedelta(minutes=minutes),
        schedule=str(data["schedule"]),
    )


# --- channels -------------------------------------------------------------------------------


async def channel_states(store: MetaStore) -> dict[str, ChannelRecord]:
    """The state of each channel the daemon opened, by name."""
    return {
        name: ChannelRecord(
            _state(value["state"]), value["why"], datetime.fromisoformat(value["since"])
        )
        for name, value in (await _channels_json(store)).items()
    }


def _state(stored: str) -> ChannelState:
    """Waiting or stopped are both down, for health."""
    return ChannelState.UP if stored == ChannelState.UP.value else ChannelState.DOWN


async def _channels_json(store: MetaStore) -> dict[str, dict[str, str]]:
    raw = await store.get_meta(CHANNELS)
    loaded: dict[str, dict[str, str]] = json.loads(raw) if raw else {}
    return loaded
