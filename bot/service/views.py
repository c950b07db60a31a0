"""What the facade's use cases return: plain, frozen views a channel renders."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import Paper, Subscription
from bot.store.protocols import Feedback

TOO_MANY_PER_DAY = 20  # more than this and a subscription floods; say so


@dataclass(frozen=True, slots=True)
class PaperHit:
    paper: Paper
    words: tuple[str, ...]
    score: float


@dataclass(frozen=True, slots=True)
class QueryTest:
    """What a query would have matched among stored papers of the last ``days`` days."""

    query: str
    normalized: str
    days: int
    count: int
    total: int
    top: tuple[PaperHit, ...]
    keys: tuple[str, ...] = ()  # every matching paper, best first

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    @property
    def per_day(self) -> float:
        return self.count / self.days

    @property
    def too_many(self) -> bool:
        return self.per_day > TOO_MANY_PER_DAY


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    subscription: Subscription
    matches: int


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription: Subscription
    test: QueryTest


@dataclass(frozen=True, slots=True)
class Recommendation:
    paper: Paper
    score: float
    because: str


@dataclass(frozen=True, slots=True)
class Learned:
    """One rating the model learns from, with its paper."""

    feedback: Feedback
    paper: Paper | None
