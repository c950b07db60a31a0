"""The storage interface the rest of paperbell sees, split by role.

Seven role protocols — ``PaperStore``, ``AccountStore``, ``MatchStore``, ``OutboxStore``,
``MetaStore``, ``RelevanceStore`` and ``FollowStore`` — and ``Store``, all of them at
once. One SQLite class implements every role (``bot.store.sqlite.store``); a caller that
needs one role may ask for just that one. The contract suites
(``tests/test_contract_*.py``), one per role, are what a second implementation
(PostgreSQL) must pass unchanged.

The records the roles hand out live in ``bot.store.records`` and are re-exported here, so
``from bot.store.protocols import Delivery`` keeps working.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

from bot.messages import Channel, PlannedMatch
from bot.models import (
    AlertRule,
    DeliveryMode,
    MatchRecord,
    Owner,
    Paper,
    Sighting,
    SourceState,
    Subscription,
    UpsertResult,
    User,
)
from bot.store.records import (
    DEFAULT_LEASE,
    ChangeKind,
    Delivery,
    DeliveryBatch,
    DeliveryKind,
    DeliveryState,
    DueDigest,
    Feedback,
    Follow,
    FollowNote,
    Lease,
    PaperChange,
    QueuedPapers,
    Rating,
    VectorizerInfo,
    VectorizerState,
)

__all__ = [
    "DEFAULT_LEASE",
    "AccountStore",
    "ChangeKind",
    "Delivery",
    "DeliveryBatch",
    "DeliveryKind",
    "DeliveryState",
    "DueDigest",
    "Feedback",
    "Follow",
    "FollowNote",
    "FollowStore",
    "Lease",
    "MatchStore",
    "MetaStore",
    "OutboxStore",
    "PaperChange",
    "PaperStore",
    "QueuedPapers",
    "Rating",
    "RelevanceStore",
    "Store",
    "VectorizerInfo",
    "VectorizerState",
]


class PaperStore(Protocol):
    """Papers, their sources' state, search, and the queue of papers waiting to be matched.

    The sources write here (``ingest``, ``record_source_error``); matching, search and the
    messages read."""

    async def ingest(
        self,
        sightings: Sequence[Sighting],
        state: SourceState,
        now: datetime,
        alert: AlertRule | None = None,
    ) -> UpsertResult:
        """Merge one source's sightings into stored papers and save that source's state.

        One transaction: either every sighting and the new state are stored, or nothing.
        A replacement announcement of an unknown paper is stored but counted as skipped.
        New and updated papers wait for the match step, except those ``alert`` holds quiet
        (stored, never matched; counted in ``quiet``).
        """
        ...

    async def record_source_error(self, source_id: str, error: str, now: datetime) -> None:
        """Remember that a source failed, leaving its papers and HTTP validators alone."""
        ...

    async def get_source_state(self, source_id: str) -> SourceState | None: ...

    async def list_source_states(self) -> list[SourceState]: ...

    async def get_paper(self, key: str) -> Paper | None: ...

    async def get_papers(self, keys: Sequence[str]) -> dict[str, Paper]: ...

    async def list_papers(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers published (or, lacking a date, first seen) at or after ``since``, newest first."""
        ...

    async def count_papers_since(self, since: datetime) -> int:
        """How many papers ``list_papers(since=since)`` lists, counted by the store (a week
        of a busy source is 10,000s of papers: too many to read only to count them)."""
        ...

    async def search(self, text: str, limit: int = 10) -> list[Paper]:
        """Full-text search over title, abstract and authors, best match first.

        ``text`` is plain words from a user, never raw FTS syntax.
        """
        ...

    async def search_candidates(self, match: str | None, limit: int, offset: int) -> list[Paper]:
        """A page of papers the index says may match: ``match`` is an FTS5 expression built
        by ``bot.matching.search`` (never user text), best first; ``None`` pages through every
        paper, newest first."""
        ...

    async def queued_for_matching(self, limit: int = 5000) -> QueuedPapers:
        """Up to ``limit`` papers ``ingest`` stored that no match step has taken yet, the
        most recently queued first (new papers are matched before an old backlog).

        ``ingest`` queues its new and updated papers in its own transaction, so a crash
        between storing and matching delays alerts but never loses them. The match step
        reads page after page until the queue is empty; there is no cap per cycle.
        """
        ...


class AccountStore(Protocol):
    """Users, their addresses and confirmations, and their subscriptions."""

    async def get_or_create_user(
        self, *, discord_id: str | None = None, email: str | None = None, now: datetime
    ) -> User:
        """The user with that Discord id or address (exactly one given), created if new.

        A new user made from an address holds it unverified. ``InvalidValueError`` for a bad
        address; ``TypeError`` unless exactly one of the two is given.
        """
        ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def find_user(
        self, *, discord_id: str | None = None, email: str | None = None
    ) -> User | None:
        """Look a user up by Discord id or by address (case-insensitive); exactly one given."""
        ...

    async def update_user(self, user_id: int, now: datetime, **changes: object) -> User:
        """Change settings: timezone, digest_hour, digest_frequency, digest_weekday, paused,
        discord_dm_channel, discord_unreachable, discord_notice_pending.

        ``TypeError`` for another name, ``InvalidValueError`` for a bad value,
        ``NotFoundError`` for an unknown user. Email fields change only through the
        methods below.
        """
        ...

    async def list_users(self, *, after_id: int = 0, limit: int | None = None) -> list[User]:
        """Every user, oldest first; with ``after_id`` and ``limit``, one page of them: at
        most ``limit`` whose id is above ``after_id``."""
        ...

    async def count_users(self) -> int: ...

    async def count_subscriptions(self) -> int: ...

    async def set_email(
        self, user_id: int, address: str, now: datetime, *, max_per_day: int = 3
    ) -> User:
        """Give the user this address, unverified, and queue one confirmation mail.

        One transaction: strikes and suppression are cleared, a ``confirmations`` row and a
        'confirm' delivery (payload ``address``, ``issued``) are written. ``UserError`` if
        another user holds the address; ``LimitError`` when ``max_per_day`` confirmations
        already went to it in the last 24 hours; ``NotFoundError`` for an unknown user.
        """
        ...

    async def confirmation_times(
        self, user_id: int, address: str, since: datetime
    ) -> list[datetime]:
        """Issue times of this user's confirmation mails to ``address`` at or after ``since``."""
        ...

    async def wrong_codes(self, user_id: int, address: str, since: datetime) -> int:
        """Wrong confirmation codes typed for ``address`` on mails issued since ``since``."""
        ...

    async def record_wrong_code(self, user_id: int, address: str) -> None:
        """Count one wrong code against the user's latest confirmation mail to ``address``."""
        ...

    async def verify_email(self, user_id: int, address: str, now: datetime) -> User | None:
        """Mark the address verified if it is still the user's; ``None`` if it is not."""
        ...

    async def remove_email(self, user_id: int, now: datetime) -> User:
        """Forget the user's address; pending mail to it is suppressed. ``NotFoundError``."""
        ...

    async def suppress_email(self, address: str, reason: str, now: datetime) -> User | None:
        """Stop all mail to ``address`` (whoever holds it) until an address is set again.

        Returns the holder, or ``None`` when nobody holds the address. Idempotent.
        """
        ...

    async def add_subscription(
        self,
        owner: Owner,
        query: str,
        normalized: str,
        deliver: frozenset[DeliveryMode],
        now: datetime,
        *,
        limit: int,
        guild_id: str | None = None,
        min_relevance: float | None = None,
    ) -> Subscription:
        """Store a subscription. The limit is checked in the same write transaction.

        ``LimitError`` at ``limit`` subscriptions; ``UserError`` for a duplicate normalized
        query, no delivery mode, or a channel subscription that delivers other than to
        Discord; ``NotFoundError`` for an unknown user.
        """
        ...

    async def remove_subscription(
        self, sub_id: int, owner: Owner | None, now: datetime
    ) -> Subscription:
        """Delete it (``owner`` None: an admin may delete any). ``NotFoundError`` if it is
        missing or another owner's (one message: existence is not leaked). Pending alerts
        that only it wanted are suppressed ("subscription removed")."""
        ...

    async def set_subscription_delivery(
        self, sub_id: int, owner: Owner | None, deliver: frozenset[DeliveryMode], now: datetime
    ) -> Subscription:
        """Replace how a subscription delivers (non-empty; channel: Discord only)."""
        ...

    async def set_min_relevance(
        self, sub_id: int, owner: Owner | None, value: float | None, now: datetime
    ) -> Subscription:
        """Set (or clear, with None) the relevance below which instant alerts wait for the
        digest. ``NotFoundError`` as for ``remove_subscription``."""
        ...

    async def get_subscription(self, sub_id: int) -> Subscription | None: ...

    async def list_subscriptions(
        self, owner: Owner | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[Subscription]:
        """Every subscription (of ``owner`` if given), oldest first; with ``after_id`` and
        ``limit``, one page of them: at most ``limit`` whose id is above ``after_id``."""
        ...

    async def update_subscription(
        self,
        sub_id: int,
        owner: Owner | None,
        now: datetime,
        *,
        query: tuple[str, str] | None = None,
        paused: bool | None = None,
    ) -> Subscription:
        """Change a subscription in place, keeping its id (and the links that name it):
        ``query`` is (as typed, normalized); ``paused`` stops or resumes its matching.
        ``NotFoundError`` if missing or another owner's; ``UserError`` when the owner already
        has the new query in another subscription."""
        ...

    async def queue_manage_link(
        self, user_id: int, now: datetime, *, max_per_day: int, revoke: bool = False
    ) -> Delivery:
        """Queue one mail with a manage link to the user's address (a 'confirm' row with
        payload ``purpose`` 'manage', ``address``, ``issued``); with ``revoke``, revoke the
        older links in the same transaction. ``LimitError`` past ``max_per_day`` such mails
        in 24 hours (nothing changed); ``UserError`` when there is no address."""
        ...

    async def subscriptions_marker(self) -> int:
        """A number that changes whenever a subscription is added, removed or changed, by
        this process or another (a counter: cheap enough to read before every chunk)."""
        ...


class MatchStore(Protocol):
    """Matches of papers to owners, and the matches waiting for a digest.

    Recording matches and creating a digest write the outbox rows they call for in the same
    transaction; sending those rows is ``OutboxStore``'s part."""

    async def record_matches(
        self,
        planned: Sequence[PlannedMatch],
        now: datetime,
        *,
        matched: Mapping[str, int] | None = None,
    ) -> list[MatchRecord]:
        """Store new matches and, in the same transaction, the deliveries already decided
        for them (``bot.delivery.policy``), and take the ``matched`` papers (key -> queue
        version read) off the match queue; one queued again since it was read stays queued.

        Per planned match: the record as given, waiting for a digest if ``digest``, and
        one alert per route (a fallback route is an email standing in for Discord). A
        match already stored for (owner, paper) is ignored with its alerts. The store
        decides nothing. Returns the records that were new.

        One call is one transaction, holding the write lock for as long as it takes, so
        callers pass bounded chunks (the match step: a few thousand records, taking off
        the queue only papers whose records are all stored by then; a paper whose
        records span chunks stays queued until its last chunk). An implementation
        writes in bulk — one query to find the new pairs, batched inserts — never one
        round trip per record.
        """
        ...

    async def get_matches(
        self, owner: Owner, paper_keys: Sequence[str]
    ) -> dict[str, MatchRecord]: ...

    async def count_matches(self, sub_ids: Sequence[int]) -> dict[int, int]:
        """Matches so far per subscription id (0 for none)."""
        ...

    async def count_matches_since(self, since: datetime) -> int:
        """Match records (one per owner and paper) recorded at or after ``since``."""
        ...

    async def digest_waiting(self) -> dict[Owner, int]:
        """Owners with matches waiting for a digest, and how many."""
        ...

    async def waiting_digest_matches(self, owner: Owner) -> list[MatchRecord]: ...

    async def drop_waiting_digest_matches(self, owner: Owner) -> int:
        """Stop waiting for a digest (the owner paused or the address is suppressed)."""
        ...

    async def latest_digest_dates(self) -> dict[Owner, date]:
        """The local date of each owner's most recent digest."""
        ...

    async def create_digest(
        self,
        owner: Owner,
        local_date: date,
        now: datetime,
        *,
        allow_empty: bool = False,
        matched_by: datetime | None = None,
    ) -> Delivery | None:
        """Create the owner's digest for ``local_date``, attaching every waiting match.

        One transaction; at most one digest per (owner, date) ever. Waiting matches whose
        subscriptions no longer want a digest stop waiting first. ``None`` when the digest
        exists already, or unless ``allow_empty``: when nothing waits, or when nothing
        waiting was matched at or before ``matched_by`` (the digest's scheduled time).
        """
        ...

    async def create_digests(
        self, due: Sequence[DueDigest], now: datetime, *, allow_empty: bool = False
    ) -> list[Delivery]:
        """``create_digest`` for many owners at once, in a few short transactions.

        The same rules per owner (one digest per owner and date ever, unwanted waiting
        matches stop waiting, ``matched_by``, ``allow_empty``); returns the digests created,
        in the order of ``due``. An owner listed twice gets only its first entry.
        """
        ...

    async def digest_matches(self, delivery_id: int) -> list[MatchRecord]:
        """The matches attached to one digest delivery."""
        ...

    async def recent_matches(
        self, owner: Owner, limit: int, *, sent_only: bool = False
    ) -> list[MatchRecord]:
        """The owner's newest matches, newest first; ``sent_only``: those whose alert or
        digest went out."""
        ...


class OutboxStore(Protocol):
    """The outbox: deliveries claimed under a lease, their outcomes and retries, and what a
    failing channel or address changes (strikes, the fall back to email)."""

    async def claim_due(
        self,
        now: datetime,
        limit: int = 100,
        channels: Collection[Channel] | None = None,
        *,
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[DeliveryBatch]:
        """Move due pending rows to 'sending' (attempts + 1) and return them in batches.

        At most ``limit`` batches, one per (owner, channel, kind), in claim order:
        confirmations (transactional mail) first, whatever the backlog of alerts and
        digests, then rows whose lease ran out, then the rest oldest due first. Only the
        given channels if any (none: nothing). Claims are atomic: two dispatchers never get
        the same row. A claim costs the rows of the groups it takes, not the whole backlog.
        The claim holds the rows until ``now + lease`` (the batch's ``lease``); rows still in
        'sending' after their lease ran out (their process died) are claimed again like
        due pending rows, by any process.
        """
        ...

    async def renew_lease(
        self, ids: Sequence[int], held: datetime, until: datetime
    ) -> frozenset[int]:
        """Extend to ``until`` the lease of rows still held under the lease ``held``; the ids
        renewed. A row missing from the answer was taken by another process: leave it."""
        ...

    async def get_users(self, user_ids: Collection[int]) -> dict[int, User]:
        """The users that exist among ``user_ids``, by id: one read for a whole claim."""
        ...

    async def subscriptions_of(self, owners: Collection[Owner]) -> dict[Owner, list[Subscription]]:
        """Every given owner's subscriptions in id order (an empty list for none)."""
        ...

    async def matches_for(
        self, pairs: Collection[tuple[Owner, str]]
    ) -> dict[tuple[Owner, str], MatchRecord]:
        """The match records of these (owner, paper key) pairs that exist."""
        ...

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None: ...

    async def mark_failed(self, ids: Sequence[int], error: str, now: datetime) -> None: ...

    async def mark_suppressed(self, ids: Sequence[int], reason: str, now: datetime) -> None: ...

    async def settle(
        self, sent: Sequence[int], suppressed: Mapping[str, Sequence[int]], now: datetime
    ) -> None:
        """``mark_sent`` of ``sent`` and ``mark_suppressed`` of each reason's rows, in one
        transaction: what a wave of messages came to, written at once."""
        ...

    async def retry_later(
        self,
        retries: Mapping[int, datetime],
        error: str,
        now: datetime,
        *,
        attempts: int | None = None,
    ) -> None:
        """Back to 'pending' with ``next_attempt_at`` per id, keeping the error; with
        ``attempts``, every row's attempt count set to it (one message, one count)."""
        ...

    async def release(self, ids: Sequence[int], now: datetime) -> None:
        """Back to 'pending' as if never claimed (the attempt is not counted)."""
        ...

    async def record_email_strike(
        self, user_id: int, address: str, reason: str, now: datetime, *, strikes: int = 3
    ) -> User | None:
        """Count a permanent failure of ``address`` if it is still the user's; at
        ``strikes`` the address is suppressed. ``None`` if the user or address is gone."""
        ...

    async def fall_back_to_email(
        self, user_id: int, paper_keys: Sequence[str], now: datetime
    ) -> int:
        """Mark the user unreachable on Discord (with a notice pending) and, if their
        address is deliverable, queue these papers as email alerts; returns how many."""
        ...

    async def overdue(self, due_before: datetime) -> dict[Channel, tuple[int, datetime]]:
        """Pending rows due before ``due_before``, per channel: (how many, oldest due time)."""
        ...

    async def get_delivery(self, key: str) -> Delivery | None: ...

    async def list_deliveries(
        self,
        owner: Owner | None = None,
        state: DeliveryState | None = None,
        *,
        kind: DeliveryKind | None = None,
        paper_key: str | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[Delivery]:
        """Outbox rows, oldest first, optionally only those of one owner, in one state,
        of one kind and/or for one paper; with ``limit``, only the newest ``limit`` of
        them (still oldest first). With ``after_id``: the first ``limit`` rows after that
        id, for reading the outbox a page at a time."""
        ...

    async def delivery_counts(self) -> dict[DeliveryState, int]:
        """How many outbox rows are in each state, counted by the store (a community's
        outbox holds millions of rows); a state with none is left out."""
        ...


class MetaStore(Protocol):
    """What paperbell keeps about itself (daemon record, heartbeats, failure streaks, the
    synced command hash), and the store's own lifetime."""

    async def get_meta(self, key: str) -> str | None:
        """A value paperbell keeps about itself (e.g. the synced Discord command hash)."""
        ...

    async def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any earlier one."""
        ...

    async def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``ttl`` from now; True if
        ``holder`` now holds it, False while someone else's lease has not yet expired."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give lease ``name`` up, if ``holder`` holds it (else nothing changes)."""
        ...

    async def get_lease(self, name: str) -> Lease | None:
        """Who holds lease ``name`` and until when; None when free or expired."""
        ...

    async def close(self) -> None: ...


class RelevanceStore(Protocol):
    """Paper vectors, the vectorizer they were made with, and each user's ratings."""

    async def vectorizer_state(self) -> VectorizerState | None:
        """The fitted vectorizer in use, or None before the first fit."""
        ...

    async def vectorizer_info(self) -> VectorizerInfo | None:
        """Which vectorizer is in use (not its state: a cheap read), or None before the
        first fit."""
        ...

    async def count_papers(self) -> int: ...

    async def paper_texts(self, *, missing_vectors: bool, limit: int) -> list[tuple[str, str, str]]:
        """(key, title, abstract) of stored papers, newest first; with ``missing_vectors``
        only those without a vector of the current version."""
        ...

    async def replace_vectorizer(
        self, state: VectorizerState, vectors: Mapping[str, bytes]
    ) -> None:
        """Install a refitted vectorizer and its vectors for every paper, in one
        transaction; vectors of the old version are dropped."""
        ...

    async def save_vectors(self, version: int, vectors: Mapping[str, bytes]) -> bool:
        """Store vectors made with ``version``; False (nothing stored) if a refit
        replaced that version meanwhile."""
        ...

    async def get_vectors(self, keys: Collection[str]) -> dict[str, bytes]:
        """Current vectors of these papers (a paper without one is left out)."""
        ...

    async def recent_vectors(
        self, since: datetime | None = None, limit: int | None = None
    ) -> dict[str, bytes]:
        """Current vectors of papers dated at or after ``since``, newest first."""
        ...

    async def rate(
        self,
        user_id: int,
        ratings: Mapping[str, Rating],
        now: datetime,
        sub_ids: Mapping[str, int] | None = None,
    ) -> None:
        """Record ratings (the latest per paper wins), with the subscription that brought
        each paper when known. Raises ``NotFoundError`` naming an unknown paper."""
        ...

    async def list_feedback(self, user_id: int) -> list[Feedback]:
        """The user's ratings, newest first."""
        ...

    async def feedback_of(self, user_ids: Collection[int]) -> dict[int, list[Feedback]]:
        """``list_feedback`` of many users in one read: every id asked for is a key (an
        empty list when the user rated nothing)."""
        ...

    async def reset_feedback(self, user_id: int) -> int:
        """Forget every rating of the user; how many there were."""
        ...


class FollowStore(Protocol):
    """Papers followed through their life. ``ingest`` records, in its own transaction, the
    changes (``bot.store.changes``) of each updated paper someone follows; the upvote
    threshold is ``AlertRule.follow_upvotes``."""

    async def follow(self, owner: Owner, paper_key: str, channel: Channel, now: datetime) -> bool:
        """Follow a paper (notes go to ``channel``); False if ``owner`` already did (the
        channel is updated)."""
        ...

    async def unfollow(self, owner: Owner, paper_key: str) -> bool:
        """Stop following; False if ``owner`` did not follow it."""
        ...

    async def list_follows(self, owner: Owner) -> list[Follow]:
        """The papers ``owner`` follows, newest follow first."""
        ...

    async def paper_change_log(self, keys: Collection[str]) -> dict[str, list[PaperChange]]:
        """The recorded changes of each paper, oldest first; a key with none is absent."""
        ...

    async def queue_follow_notes(self, now: datetime, limit: int = 500) -> list[FollowNote]:
        """Queue one outbox row (kind ``confirm``, payload ``purpose: follow``) per follower
        of each change not yet noted, and mark the change noted, in one transaction. A change
        of a paper nobody follows any more is marked noted with no row."""
        ...


class Store(
    PaperStore,
    AccountStore,
    MatchStore,
    OutboxStore,
    MetaStore,
    RelevanceStore,
    FollowStore,
    Protocol,
):
    """Every role at once: what one process opens and passes around."""
