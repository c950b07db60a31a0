"""The plain records the store hands out: outbox rows, their batches, the match queue.

Kept apart from the role protocols (``bot.store.protocols``, which re-exports every name
here) so a caller that only reads a delivery need not import the interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.errors import StoreError
from bot.messages import Channel
from bot.models import Owner, Paper

# How long a claim holds its rows before another process may take them. A dispatcher
# renews the lease of each message right before sending it, and one send is bounded by the
# channel's timeouts (SMTP timeout, Discord's 60 s), so this only has to outlast one send.
DEFAULT_LEASE = timedelta(minutes=5)


class DeliveryState(StrEnum):
    """pending -> sending -> sent | failed | suppressed; sending -> pending on a retry."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # not sent on purpose; last_error says why


class DeliveryKind(StrEnum):
    ALERT = "alert"
    DIGEST = "digest"
    CONFIRM = "confirm"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox: one message part owed to one owner on one channel."""

    id: int
    key: str
    owner: Owner
    channel: Channel
    kind: DeliveryKind
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    paper_key: str | None = None  # alerts
    digest_date: date | None = None  # digests: the owner's local date
    payload: Mapping[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryBatch:
    """Claimed rows of one owner, channel and kind: alerts go out as one message."""

    owner: Owner
    channel: Channel
    kind: DeliveryKind
    deliveries: tuple[Delivery, ...]
    lease: datetime | None = None  # the claim holds the rows until then (see renew_lease)


@dataclass(frozen=True, slots=True)
class QueuedPapers:
    """The match queue as one match step read it."""

    new: tuple[Paper, ...] = ()
    updated: tuple[Paper, ...] = ()
    versions: Mapping[str, int] = field(default_factory=dict)  # paper key -> version read


@dataclass(frozen=True, slots=True)
class DueDigest:
    """A digest that is due: whose, for which local date, and its scheduled instant.

    Only matches waiting since ``matched_by`` (at or before it) make it due; ``None``: any.
    """

    owner: Owner
    local_date: date
    matched_by: datetime | None = None


class Rating(StrEnum):
    """A reader's verdict on one paper."""

    LIKE = "like"
    DISLIKE = "dislike"


@dataclass(frozen=True, slots=True)
class Feedback:
    """One user's latest rating of one paper, and the subscription that brought it."""

    paper_key: str
    rating: Rating
    rated_at: datetime
    sub_id: int | None = None

    @classmethod
    def from_row(cls, key: str, rating: int, at: datetime, sub: int | None) -> Feedback:
        """A stored rating (+1 like, -1 dislike) as both stores read it."""
        kind = Rating.LIKE if rating > 0 else Rating.DISLIKE
        return cls(str(key), kind, at, None if sub is None else int(sub))


@dataclass(frozen=True, slots=True)
class VectorizerInfo:
    """Which vectorizer is fitted, without its (large) state: a cheap read."""

    version: int
    kind: str
    n_docs: int
    fitted_at: datetime


@dataclass(frozen=True, slots=True)
class VectorizerState:
    """The fitted vectorizer every stored vector was made with (``version``)."""

    version: int
    kind: str
    n_docs: int
    fitted_at: datetime
    state: bytes

    @property
    def info(self) -> VectorizerInfo:
        return VectorizerInfo(self.version, self.kind, self.n_docs, self.fitted_at)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a named lease (e.g. the daemon's leadership) and until when."""

    name: str
    holder: str
    expires_at: datetime


def check_lease(name: str, holder: str, ttl: timedelta) -> None:
    """One clear line for a lease nobody could hold."""
    if not name or not holder:
        raise StoreError("a lease needs a name and a holder; both were not given")
    if ttl <= timedelta(0):
        raise StoreError(f"a lease must last longer than zero, not {ttl}")


class ChangeKind(StrEnum):
    """What changed on a followed paper: worth one short note to each follower."""

    VERSION = "version"  # a new arXiv version; ``before``/``after`` hold the text fields
    CODE = "code"  # Hugging Face's repository link appeared
    UPVOTES = "upvotes"  # the upvote count crossed the threshold


@dataclass(frozen=True, slots=True)
class PaperChange:
    """One change ingest saw on a followed paper, with the values before and after."""

    id: int
    paper_key: str
    kind: ChangeKind
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Follow:
    """One owner following one paper; notes about it go to ``channel``."""

    owner: Owner
    paper_key: str
    channel: Channel
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FollowNote:
    """A note owed to one follower about one change, for the outbox."""

    change: PaperChange
    owner: Owner
    channel: Channel
