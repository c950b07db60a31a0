"""The outbox every notification passes through: the ``OutboxStore`` role."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.messages import Channel
from bot.models import MatchRecord, Owner, Subscription, User
from bot.store.records import DEFAULT_LEASE, Delivery, DeliveryBatch, DeliveryKind, DeliveryState


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
