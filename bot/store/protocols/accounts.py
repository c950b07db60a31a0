"""People and what they follow: the ``AccountStore`` and ``FollowStore`` roles."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from bot.messages import Channel
from bot.models import DeliveryMode, Owner, Subscription, User
from bot.store.records import Delivery, Follow, FollowNote, PaperChange


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
