"""Matching and learned relevance: the ``MatchStore`` and ``RelevanceStore`` roles."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from bot.messages import PlannedMatch
from bot.models import MatchRecord, Owner
from bot.store.records import Delivery, DueDigest, Feedback, Rating, VectorizerInfo, VectorizerState


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
