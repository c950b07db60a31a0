"""What a notifier is given: channels, recipients and the messages they receive.

Plain data at the bottom of the core, so that every layer (the store's outbox rows, the
accounts' confirmation links, delivery's messages) can name them; the ``Notifier``
protocol that sends them lives in ``bot.delivery.notifier``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from bot.models import MatchRecord, OwnerKind, Paper


class Channel(StrEnum):
    EMAIL = "email"
    DISCORD = "discord"


# Why a queued row was suppressed, recorded on it (users and tests read them). Here, below
# the store, because the store writes two of them itself: when a subscription or address is
# removed it suppresses, in the same transaction, the pending rows that can no longer go.
SUBSCRIPTION_REMOVED = "subscription removed"
EMAIL_REMOVED = "email address removed"


@dataclass(frozen=True, slots=True)
class Route:
    """One alert a new match calls for: its channel, and whether it is an email standing
    in for Discord (the user cannot be reached there)."""

    channel: Channel
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class PlannedMatch:
    """A new match with its deliveries already decided (``bot.delivery.policy``), so the
    store only writes it: the record (its ``sub_ids`` narrowed to live subscriptions),
    whether it waits for a digest, and its alerts."""

    record: MatchRecord
    digest: bool = False
    alerts: tuple[Route, ...] = ()


# Kept here too so channels import their vocabulary from one place.
RecipientKind = OwnerKind


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who receives a message on one channel.

    ``address`` is the email address, the Discord user id, or the Discord channel id.
    """

    kind: RecipientKind
    owner_id: int  # users.id, or the Discord channel id for channel subscriptions
    channel: Channel
    address: str
    timezone: str = "UTC"
    dm_channel_id: str | None = None  # Discord: the DM channel opened once and remembered


@dataclass(frozen=True, slots=True)
class MatchedSubscription:
    sub_id: int
    query: str  # the normalized query, as shown to the user
    words: tuple[str, ...] = ()  # words of the paper that matched, for highlighting
    unsubscribe_url: str | None = None  # stop just this subscription's email


@dataclass(frozen=True, slots=True)
class FeedbackLinks:
    """Signed links that record a 👍 or 👎 on one paper (a confirm page first)."""

    like: str
    dislike: str
    follow: str | None = None  # follow the paper: a note when it changes (a confirm page first)


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One paper in a message. ``score``: how well the words matched; ``relevance``: the
    reader's learned model (None without one), which orders the message when present;
    ``because``: why, in a few words."""

    paper: Paper
    subscriptions: tuple[MatchedSubscription, ...]
    score: float = 0.0
    relevance: float | None = None
    because: str = ""
    feedback: FeedbackLinks | None = None  # signed 👍 / 👎 links (email only)

    @property
    def rank(self) -> tuple[float, float, int, str]:
        """Sort key, best first: learned relevance, then matched words, then upvotes."""
        learned = -self.relevance if self.relevance is not None else 0.0
        return (learned, -self.score, -(self.paper.upvotes or 0), self.paper.key)

    @property
    def words(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for sub in self.subscriptions:
            seen.update(dict.fromkeys(sub.words))
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class MessageLinks:
    """Links the core signs for a message; notifiers only place them."""

    unsubscribe_all: str | None = None  # HTTPS one-click: stop all email to this address
    manage: str | None = None  # the person's own page: subscriptions, settings, feeds


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """Instant alerts: every new match of one cycle for one recipient."""

    key: str  # the delivery key; stable across retries (Message-ID derives from it)
    recipient: Recipient
    items: tuple[AlertItem, ...]
    links: MessageLinks = field(default_factory=MessageLinks)
    rate: bool = False  # offer 👍 / 👎 / "more like this" where the channel can (Discord)


@dataclass(frozen=True, slots=True)
class DigestSection:
    subscription: MatchedSubscription
    items: tuple[AlertItem, ...]


# The words of an empty day, in one place: digests (mail and Discord) and `status` say them,
# so "arXiv made no announcement", "source X failed since …" and "0 papers matched" read
# the same wherever a quiet day is explained.
def no_announcement_words(label: str) -> str:
    return f"{label} made no announcement today (weekend/holiday)"


def source_failed_words(label: str, since: str) -> str:
    return f"source {label} failed since {since}"


def papers_matched_words(count: int) -> str:
    return f"{count} paper{'' if count == 1 else 's'} matched"


def papers_arrived_words(count: int) -> str:
    return f"{count} new paper{'' if count == 1 else 's'} arrived"


@dataclass(frozen=True, slots=True)
class DigestMessage:
    key: str
    recipient: Recipient
    local_date: date
    sections: tuple[DigestSection, ...]
    more: int = 0  # papers left out past the digest limit: "and N more", never a silent drop
    source_notes: tuple[str, ...] = ()  # "arXiv made no announcement today ...", ...
    links: MessageLinks = field(default_factory=MessageLinks)
    rate: bool = False  # offer 👍 / 👎 / "more like this" where the channel can (Discord)
    # An empty digest: the papers that arrived in the day before it (None: not counted),
    # so "nothing arrived" and "nothing matched" read apart.
    arrived: int | None = None

    @property
    def paper_count(self) -> int:
        return len({item.paper.key for s in self.sections for item in s.items}) + self.more

    @property
    def quiet_line(self) -> str:
        """What an empty digest says instead of papers."""
        if self.arrived is None:
            return f"All quiet: {papers_matched_words(0)} today."
        if self.arrived == 0:
            why = " (see the notes above)" if self.source_notes else ""
            return f"All quiet: {papers_arrived_words(0)} today{why}."
        arrived = papers_arrived_words(self.arrived)
        return f"All quiet: {arrived} today, {papers_matched_words(0)}."


@dataclass(frozen=True, slots=True)
class ConfirmationMessage:
    """Double opt-in: the only thing an unverified address ever receives."""

    key: str
    address: str
    code: str  # 6 digits, for Discord's /email verify
    confirm_url: str
    expires_hours: int = 24
    manage_url: str | None = None


@dataclass(frozen=True, slots=True)
class ManageLinkMessage:
    """A fresh link to the person's own page, mailed when they ask for one."""

    key: str
    address: str
    manage_url: str
    expires_days: int


@dataclass(frozen=True, slots=True)
class FollowNoteMessage:
    """One short note about a followed paper that changed: ``headline`` says what
    happened, ``lines`` what changed (a word diff: ``[-old-]`` and ``{+new+}``)."""

    key: str
    recipient: Recipient
    paper_key: str
    title: str
    url: str | None
    headline: str
    lines: tuple[str, ...] = ()
