"""The data paperbell passes between its parts. Frozen: a change is a new value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

# The largest integer a store holds (SQLite's INTEGER, PostgreSQL's bigint): ids, counts and
# limits from outside are checked against it before they reach one.
INT_MAX = 2**63 - 1


class SourceKind(StrEnum):
    HF_DAILY = "hf_daily"
    ARXIV_RSS = "arxiv_rss"
    ARXIV_API = "arxiv_api"
    FEED = "feed"


class AnnounceType(StrEnum):
    """How a source presents an item. Only arXiv RSS says it outright."""

    NEW = "new"
    CROSS = "cross"
    REPLACE = "replace"
    REPLACE_CROSS = "replace-cross"

    @property
    def is_replacement(self) -> bool:
        return self in (AnnounceType.REPLACE, AnnounceType.REPLACE_CROSS)


@dataclass(frozen=True, slots=True)
class Links:
    abs: str | None = None
    pdf: str | None = None
    hf: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper, once, whatever sources it was seen in.

    ``key`` is the arXiv id without version (``2403.16981``, ``hep-th/9901001``) or, for a
    feed item with no arXiv id, ``feed:<sha1>`` built from its guid, link, or title+date.
    Titles and abstracts keep their LaTeX for display; matching folds it.
    """

    key: str
    title: str
    abstract: str = ""
    version: int | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # primary first
    published: datetime | None = None
    updated: datetime | None = None
    links: Links = field(default_factory=Links)
    upvotes: int | None = None
    comments: int | None = None
    github_stars: int | None = None
    sources: tuple[str, ...] = ()  # source names: "hf", "arxiv", or a feed's name
    first_seen: datetime | None = None
    arxiv_comment: str = ""  # arXiv's comment field: "14 pages, 6 figures"
    journal_ref: str = ""  # arXiv's journal reference, once the authors give one

    @property
    def is_arxiv(self) -> bool:
        return not self.key.startswith("feed:")

    @property
    def url(self) -> str | None:
        return self.links.abs or self.links.hf


@dataclass(frozen=True, slots=True)
class Sighting:
    """One paper as one source presented it in one fetch."""

    paper: Paper
    announce: AnnounceType = AnnounceType.NEW


class Outcome(StrEnum):
    """What storing one sighting did."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    # Stored quietly but never announced: a replacement of a paper we had not seen.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class UpsertResult:
    new: tuple[Paper, ...] = ()
    updated: tuple[Paper, ...] = ()
    unchanged: int = 0
    skipped: int = 0
    quiet: int = 0  # of ``new``: stored but never matched, per the ``AlertRule``


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Which stored papers may ever be alerted; the others are stored quietly.

    A paper published more than ``max_age`` before we first saw it is old news (a new
    feed's backlog, a paper a source listed late): stored, never matched. On a source's
    first fetch an undated item is quiet too: it may be years of backlog. ``max_age``
    None alerts everything.
    """

    max_age: timedelta | None = None
    first_fetch: bool = False
    # The upvote count whose crossing is news to a paper's followers; 0: never.
    follow_upvotes: int = 0

    def late(self, paper: Paper) -> bool:
        """Published more than ``max_age`` before it was first seen (or before now)."""
        if self.max_age is None or paper.published is None or paper.first_seen is None:
            return False
        return paper.published < paper.first_seen - self.max_age

    def quiet_new(self, paper: Paper) -> bool:
        undated = self.max_age is not None and self.first_fetch and paper.published is None
        return undated or self.late(paper)


@dataclass(frozen=True, slots=True)
class HttpCacheEntry:
    """Validators from the last 200 for one URL, sent back for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """What we remember about one configured source between cycles."""

    source_id: str
    http_cache: dict[str, HttpCacheEntry] = field(default_factory=dict)
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    # An empty arXiv day is normal; remember it so a digest can say so.
    last_note: str | None = None


@dataclass(frozen=True, slots=True)
class BadItem:
    """One item a source listed that could not be used; its neighbours were."""

    reason: str  # what the cycle line counts: "bad date", "no arXiv id"
    detail: str  # which item and what was wrong, for the log


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a source returns from one fetch: sightings plus the validators to keep."""

    sightings: tuple[Sighting, ...]
    http_cache: dict[str, HttpCacheEntry] = field(default_factory=dict)
    note: str | None = None  # "no announcement today", "not modified"
    bad_items: tuple[BadItem, ...] = ()


@dataclass(frozen=True, slots=True)
class FailureStreak:
    """Consecutive failed attempts of one source; ``hint`` guesses why the last one failed."""

    count: int
    since: datetime  # the first failure of the streak
    hint: str = ""


@dataclass(frozen=True, slots=True)
class SourceSummary:
    source_id: str
    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error: str | None = None
    note: str | None = None
    quiet: int = 0  # new papers stored without alert
    quiet_reason: str = ""  # why: "older than 3 days"
    bad_items: tuple[BadItem, ...] = ()  # items skipped, the source still ok
    truncated: tuple[str, ...] = ()  # one field name per cut field: "title", "authors"
    failing: FailureStreak | None = None  # on an error: the failures in a row, this one too
    recovered: FailureStreak | None = None  # on a success: the streak it ended

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class IngestReport:
    summaries: tuple[SourceSummary, ...]
    new_papers: tuple[Paper, ...]
    updated_papers: tuple[Paper, ...] = ()

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.summaries)


# --- people and what they asked for (issues 3 and 4) --------------------------------------


class OwnerKind(StrEnum):
    USER = "user"
    CHANNEL = "channel"  # a Discord guild channel


class Owner(NamedTuple):
    """Who a subscription belongs to; ``str(owner)`` (``user:3``) keys matches and deliveries.

    A named tuple (immutable, like the frozen dataclasses here) so that hashing is the
    tuple's own: the match step and planning key dicts by owner millions of times a
    cycle, and a dataclass's generated ``__hash__`` runs in Python each time."""

    kind: OwnerKind
    id: str  # users.id as text, or the Discord channel id

    def __str__(self) -> str:
        # Concatenation, not an f-string: formatting a StrEnum goes through Enum.__format__.
        return self.kind + ":" + self.id

    @classmethod
    def user(cls, user_id: int) -> Owner:
        return cls(OwnerKind.USER, str(user_id))

    @classmethod
    def channel(cls, channel_id: str) -> Owner:
        return cls(OwnerKind.CHANNEL, channel_id)

    @classmethod
    def parse(cls, text: str) -> Owner:
        kind, _, ident = text.partition(":")
        return cls(OwnerKind(kind), ident)


class DeliveryMode(StrEnum):
    """Where one subscription's matches go."""

    DISCORD = "discord"  # a DM for a user's subscription, a post for a channel's
    EMAIL_INSTANT = "email_instant"
    EMAIL_DIGEST = "email_digest"


class DigestFrequency(StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"
    WEEKLY = "weekly"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    created_at: datetime
    discord_id: str | None = None
    email: str | None = None
    email_verified: bool = False
    email_strikes: int = 0  # permanent failures since the address was set
    email_suppressed: bool = False
    timezone: str = "UTC"  # IANA name
    digest_hour: int = 8  # local hour, 0-23
    digest_frequency: DigestFrequency = DigestFrequency.DAILY
    digest_weekday: int = 0  # 0 = Monday; for weekly digests
    paused: bool = False
    discord_dm_channel: str | None = None
    discord_unreachable: bool = False
    discord_notice_pending: bool = False  # tell them at their next interaction
    # Why email_suppressed is set: "you unsubscribed", "3 deliveries failed: ...".
    email_suppressed_reason: str | None = None
    manage_generation: int = 0  # manage links signed for an older one no longer open

    @property
    def owner(self) -> Owner:
        return Owner.user(self.id)

    @property
    def email_deliverable(self) -> bool:
        return bool(self.email) and self.email_verified and not self.email_suppressed


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    owner: Owner
    query: str  # as the user typed it
    normalized: str  # as paperbell understood it
    deliver: frozenset[DeliveryMode]
    created_at: datetime
    guild_id: str | None = None  # for channel subscriptions
    paused: bool = False  # kept, but matches nothing until resumed
    # Instant alerts the owner's learned model scores below this (0-1) wait for the digest.
    min_relevance: float | None = None

    @property
    def digest_for_held(self) -> bool:
        """Whether it sends digests, or keeps a digest for the alerts it holds back."""
        return DeliveryMode.EMAIL_DIGEST in self.deliver or self.min_relevance is not None


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """One owner hears of one paper once, listing every subscription of theirs that caught it."""

    owner: Owner
    paper_key: str
    sub_ids: tuple[int, ...]
    words: tuple[str, ...]  # paper words that matched, for highlighting
    score: float
    matched_at: datetime
