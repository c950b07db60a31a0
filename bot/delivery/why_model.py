"""What "why (not) this paper?" answers: the verdict, the steps replayed, the suggestion.

Plain frozen data, shared by the replay (``bot.delivery.why``) and every channel that
shows it (CLI words and ``--json``, Discord ``/why``, the manage page).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """The first step of a paper's path where it stopped (or ``delivered``)."""

    NOT_SEEN = "not_seen"
    TOO_OLD = "too_old"
    NO_MATCH = "no_match"
    NOT_DELIVERED = "not_delivered"
    DELIVERED = "delivered"


class Reason(StrEnum):
    """Why a match was not delivered (``Verdict.NOT_DELIVERED`` only)."""

    PAUSED = "paused"
    UNCONFIRMED = "unconfirmed"
    SUPPRESSED = "suppressed"
    BELOW_MIN_RELEVANCE = "below_min_relevance"
    HELD_FOR_DIGEST = "held_for_digest"
    CAPPED = "capped"
    FAILED = "failed"
    PENDING = "pending"
    NOT_MATCHED_YET = "not_matched_yet"


class StepName(StrEnum):
    SOURCES = "sources"
    AGE = "age"
    MATCH = "match"
    DELIVERY = "delivery"


@dataclass(frozen=True, slots=True)
class SubscriptionCheck:
    """One subscription tried on the paper: matched, or the clause that failed and an
    edit that would have matched with that edit's hit rate."""

    sub_id: int
    query: str  # normalized
    matched: bool
    paused: bool = False
    clause: str | None = None
    reason: str | None = None
    suggestion: str | None = None
    suggestion_hits: int | None = None  # papers of the last ``HIT_DAYS`` days it matches
    suggestion_total: int | None = None  # papers stored in those days


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the path: whether the paper got past it, in plain words."""

    name: StepName
    passed: bool
    text: str
    evidence: tuple[str, ...] = ()
    subscriptions: tuple[SubscriptionCheck, ...] = ()


@dataclass(frozen=True, slots=True)
class Why:
    """The answer for one person and one paper."""

    paper_key: str
    title: str | None
    verdict: Verdict
    steps: tuple[Step, ...]
    reason: Reason | None = None
    suggestion: str | None = None

    @property
    def summary(self) -> str:
        """The last step's words: where the path stopped, or how it was delivered."""
        return self.steps[-1].text


_HEADLINE = {
    Verdict.NOT_SEEN: "never seen",
    Verdict.TOO_OLD: "seen, but too old to alert",
    Verdict.NO_MATCH: "seen, but no subscription matched",
    Verdict.NOT_DELIVERED: "matched, but not delivered",
    Verdict.DELIVERED: "delivered",
}


def headline(why: Why) -> str:
    """The verdict in plain words: "matched, but not delivered (paused)"."""
    reason = f" ({why.reason.replace('_', ' ')})" if why.reason else ""
    return _HEADLINE[why.verdict] + reason


def why_lines(why: Why) -> list[str]:
    """The answer in plain words: the paper, the verdict, each step (✓ passed, ✗ where it
    stopped) with its evidence indented, then the suggestion if any."""
    title = f" — {why.title}" if why.title else ""
    lines = [f"{why.paper_key}{title}", f"verdict: {headline(why)}"]
    for step in why.steps:
        lines.append(f"  {'✓' if step.passed else '✗'} {step.name}: {step.text}")
        lines.extend(f"      {line}" for line in step.evidence)
    if why.suggestion:
        lines.append(f"suggestion: {why.suggestion}")
    return lines


HIT_DAYS = 7  # the window a suggestion's hit rate is counted over, as test-query's default
