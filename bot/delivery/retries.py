"""When a message that failed for now is tried again, and when it is given up.

A message is retried as a message: all its rows get one next attempt time and one attempt
count (the highest), so the retry sends the same one message, never a few smaller ones.
The delay doubles from ``base_delay`` with each attempt, capped at ``max_delay`` and
spread by +/- ``jitter`` so that many recipients failing together do not retry together.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import TransientDeliveryError
from bot.store.protocols import Delivery

MAX_EXPONENT = 30  # 2**30 base delays is far past any max_delay; avoids huge timedeltas


@dataclass(frozen=True, slots=True)
class Retry:
    """What becomes of a failed message's rows: those that used up their attempts fail
    (``spent``); the others go again at one time (``again``: id -> that time), all with
    ``attempts``."""

    spent: list[int]
    again: dict[int, datetime]
    attempts: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The dispatcher's retry settings (``Dispatcher`` takes them as keywords)."""

    rng: random.Random
    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=60)
    max_delay: timedelta = timedelta(hours=6)
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 1 or self.max_attempts < 1 or self.base_delay <= timedelta(0):
            raise ValueError("need 0 <= jitter < 1, max_attempts >= 1 and a positive base_delay")

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next try after ``attempts`` tries: doubling, capped, jittered."""
        exponent = min(max(attempts - 1, 0), MAX_EXPONENT)
        delay = min(self.max_delay, self.base_delay * (1 << exponent))
        return delay * (1 + self.rng.uniform(-self.jitter, self.jitter))

    def retry(self, rows: Sequence[Delivery], now: datetime) -> Retry:
        """A row that has used up its own attempts fails (one that joined the message late
        has not); the rest go again together, after the backoff of the most tried."""
        spent = [d.id for d in rows if d.attempts >= self.max_attempts]
        again = [d for d in rows if d.attempts < self.max_attempts]
        if not again:
            return Retry(spent, {}, 0)
        attempts = max(d.attempts for d in again)
        when = now + self.backoff(attempts)
        return Retry(spent, dict.fromkeys((d.id for d in again), when), attempts)


def describe(exc: Exception) -> str:
    """What a failed attempt records: a transient error's own words, else (a bug in one
    message) that it was internal."""
    if isinstance(exc, TransientDeliveryError):
        return str(exc) or type(exc).__name__
    return f"internal error ({type(exc).__name__}: {exc})"
