"""Which delivery channels can be used now, and why not.

A channel is *up*, *waiting* (cannot be reached for now: Discord not logged in yet or not
reachable, the SMTP server refusing connections) or *stopped* (its credentials were
rejected: only a fix and a restart bring it back). The dispatcher claims no rows of a
channel that is not up, so they stay 'pending' with their attempts untouched: an outage
never burns a delivery to 'failed'. A waiting channel that cannot tell when it is back
(SMTP) is probed by the next dispatch after a backoff; one that can (Discord logs in again
by itself) says so with ``up``. Transitions are logged here, once each: this is the
boundary for channel health. The daemon stores ``snapshot()`` in the meta table so that
``paperbell outbox`` can show why rows wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.delivery.notifier import Channel

log = logging.getLogger("paperbell.channels")

META_KEY = "channels.status"
FIRST_PROBE = timedelta(seconds=30)
MAX_PROBE = timedelta(minutes=10)


class ChannelState(StrEnum):
    UP = "up"
    WAITING = "waiting"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    state: ChannelState
    why: str
    since: datetime
    probe_at: datetime | None = None  # waiting: when the dispatcher may try it again
    failures: int = 0


class ChannelStatus:
    """The health of each channel in this process; a channel never reported is up."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        first_probe: timedelta = FIRST_PROBE,
        max_probe: timedelta = MAX_PROBE,
    ) -> None:
        self._clock = clock
        self._first, self._max = first_probe, max_probe
        self._health: dict[Channel, ChannelHealth] = {}
        self._opened: dict[Channel, datetime] = {}  # channels this process runs, since when
        self.version = 0  # bumped on every change, so a caller knows when to save

    def usable(self, channel: Channel, now: datetime) -> bool:
        """Up, or waiting with a probe due (the next message is the probe)."""
        health = self._health.get(channel)
        if health is None:
            return True
        return health.state is ChannelState.WAITING and (
            health.probe_at is not None and health.probe_at <= now
        )

    def opened(self, channel: Channel) -> None:
        """The daemon runs this channel: health checks then know it exists, up or not."""
        if channel not in self._opened:
            self._opened[channel] = self._clock()
            self.version += 1

    def up(self, channel: Channel) -> None:
        health = self._health.pop(channel, None)
        if health is not None:
            self.version += 1
            if health.failures:  # not after a quiet start
                log.info("%s channel is back (was %s: %s)", channel, health.state, health.why)

    def starting(self, channel: Channel, why: str) -> None:
        """Not usable yet, nothing wrong (Discord logging in): waits without a warning."""
        if channel not in self._health:
            self._health[channel] = ChannelHealth(ChannelState.WAITING, why, self._clock())
            self.version += 1

    def waiting(self, channel: Channel, why: str, *, probe: bool = False) -> None:
        """Unreachable for now; ``probe``: try it again after a growing delay."""
        old = self._health.get(channel)
        if old is not None and old.state is ChannelState.STOPPED:
            return
        now = self._clock()
        failures = old.failures + 1 if old is not None else 1
        delay = min(self._max, self._first * 2 ** min(failures - 1, 16))
        since = old.since if old is not None else now
        probe_at = now + delay if probe else None
        self._health[channel] = ChannelHealth(ChannelState.WAITING, why, since, probe_at, failures)
        self.version += 1
        if old is None or old.why != why or old.failures == 0:
            retry = f"; trying again in {int(delay.total_seconds())}s" if probe else ""
            log.warning(
                "%s channel is down: %s; its messages wait in the outbox%s", channel, why, retry
            )

    def stopped(self, channel: Channel, why: str) -> None:
        """Stopped for good in this process (credentials rejected); said once, loudly."""
        old = self._health.get(channel)
        if old is not None and old.state is ChannelState.STOPPED:
            return
        since = old.since if old is not None else self._clock()
        self._health[channel] = ChannelHealth(ChannelState.STOPPED, why, since)
        self.version += 1
        log.error("%s channel stopped: %s; its messages wait in the outbox", channel, why)

    def not_up(self) -> Mapping[Channel, ChannelHealth]:
        return dict(self._health)

    def snapshot(self) -> str:
        """JSON for the meta table: channel -> {state, why, since}, opened channels too."""
        found = {
            str(channel): {"state": ChannelState.UP.value, "why": "opened", "since": at.isoformat()}
            for channel, at in self._opened.items()
        }
        found.update({
            str(channel): {"state": h.state.value, "why": h.why, "since": h.since.isoformat()}
            for channel, h in self._health.items()
        })  # fmt: skip
        return json.dumps(found)


def waiting_reasons(snapshot: str | None) -> dict[str, str]:
    """From a stored ``snapshot``: channel -> "waiting: <channel> channel down: <why>"."""
    try:
        found = json.loads(snapshot) if snapshot else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        str(channel): f"waiting: {channel} channel down since {h.get('since', '?')[:16]}: "
        f"{h.get('why', '?')}"
        for channel, h in found.items()
        if isinstance(h, dict) and h.get("state") != ChannelState.UP.value
    }
