"""From claimed outbox rows to messages: who may still get what, and the message itself.

``MessageBuilder.read`` reads what a whole claim needs in a few queries (its users, the
alert owners' subscriptions, the match records and papers of every alert row: a
``ClaimReads``); ``MessageBuilder.plan`` then turns one claimed batch into ``Plan``s from
memory: one message to send with the rows it carries, plus the rows that may not go any
more and why. The rules, checked at send time (the claim's reads, not the queueing's)
because much can change after a row is queued, are ``bot.delivery.policy``'s (paused user,
unconfirmed or suppressed address, unreachable Discord user, removed subscription, stale
confirmation); this module gathers what they need and acts on them. Digests still read
their own matches (``DigestPlanner.build``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.accounts.addresses import LinkBuilder
from bot.accounts.manage import MANAGE
from bot.delivery.digests import DigestPlanner
from bot.delivery.follow_notes import FOLLOW, NOTE_GONE, note_message, sender
from bot.delivery.notifier import (
    AlertItem,
    AlertMessage,
    Channel,
    ConfirmationMessage,
    ManageLinkMessage,
    MatchedSubscription,
    MessageLinks,
    Notifier,
    Recipient,
)
from bot.delivery.policy import (
    MATCH_GONE,
    NO_USER,
    SUBSCRIPTION_REMOVED,
    alert_hold,
    confirm_hold,
    manage_link_hold,
    moves_to_email,
    owner_hold,
    wanted_subscriptions,
)
from bot.delivery.ranking import rank_items
from bot.errors import PermanentDeliveryError
from bot.messages import FeedbackLinks
from bot.models import MatchRecord, Owner, OwnerKind, Paper, Subscription, User
from bot.store.protocols import Delivery, DeliveryBatch, DeliveryKind, Feedback, Store


@runtime_checkable
class ConfirmationSender(Protocol):
    """The email notifier's extra: the double opt-in mail."""

    async def send_confirmation(self, message: ConfirmationMessage) -> None: ...


@runtime_checkable
class ManageLinkSender(Protocol):
    """The email notifier's other extra: a fresh link to the person's page."""

    async def send_manage_link(self, message: ManageLinkMessage) -> None: ...


# What a combination of subscriptions means for one alert row: held (why), or its parts.
Decision = str | tuple[MatchedSubscription, ...]


@dataclass
class Plan:
    """One message to send (or none), the rows it carries, and rows that may not go."""

    send: Callable[[], Awaitable[None]] | None = None
    rows: list[Delivery] = field(default_factory=list)
    suppressed: dict[str, list[Delivery]] = field(default_factory=dict)

    def suppress(self, reason: str, deliveries: Sequence[Delivery]) -> Plan:
        self.suppressed.setdefault(reason, []).extend(deliveries)
        return self


@dataclass(frozen=True, slots=True)
class ClaimReads:
    """What the messages of one claim need, read at once (``MessageBuilder.read``)."""

    users: Mapping[int, User] = field(default_factory=dict)
    subscriptions: Mapping[Owner, Sequence[Subscription]] = field(default_factory=dict)
    matches: Mapping[tuple[Owner, str], MatchRecord] = field(default_factory=dict)
    papers: Mapping[str, Paper] = field(default_factory=dict)
    feedback: Mapping[int, Sequence[Feedback]] = field(default_factory=dict)

    def user(self, owner: Owner) -> User | None:
        return self.users.get(int(owner.id)) if owner.kind is OwnerKind.USER else None


def recipient_for(owner: Owner, user: User | None, channel: Channel) -> Recipient:
    if user is None:  # a Discord channel
        channel_id = int(owner.id) if owner.id.isdigit() else 0
        return Recipient(OwnerKind.CHANNEL, channel_id, channel, owner.id)
    address = (user.email or "") if channel is Channel.EMAIL else (user.discord_id or "")
    return Recipient(
        OwnerKind.USER, user.id, channel, address, user.timezone, user.discord_dm_channel
    )


def batch_key(batch: DeliveryBatch, rows: Sequence[Delivery]) -> str:
    """A row's own key, or one derived from all of them: stable across retries."""
    if len(rows) == 1:
        return rows[0].key
    digest = hashlib.sha256("\n".join(sorted(r.key for r in rows)).encode()).hexdigest()
    return f"alerts:{batch.channel}:{batch.owner}:{digest[:16]}"


def _best_first(item: AlertItem) -> tuple[float, float, int, str]:
    return item.rank


def _fail_permanently(reason: str) -> Callable[[], Awaitable[None]]:
    async def fail() -> None:
        raise PermanentDeliveryError(reason)

    return fail


class MessageBuilder:
    def __init__(
        self,
        store: Store,
        notifiers: Mapping[Channel, Notifier],
        links: LinkBuilder,
        digests: DigestPlanner,
    ) -> None:
        self._store = store
        self._notifiers = notifiers
        self._links = links
        self._digests = digests
        self._papers = digests.papers

    async def read(self, batches: Sequence[DeliveryBatch]) -> ClaimReads:
        """One read per kind of thing for the whole claim, not four per message."""
        user_ids = {int(b.owner.id) for b in batches if b.owner.kind is OwnerKind.USER}
        alerts = [b for b in batches if b.kind is DeliveryKind.ALERT]
        pairs = {(b.owner, d.paper_key) for b in alerts for d in b.deliveries if d.paper_key}
        readers = {int(b.owner.id) for b in alerts if b.owner.kind is OwnerKind.USER}
        store = self._store
        return ClaimReads(
            users=await store.get_users(user_ids) if user_ids else {},
            subscriptions=await store.subscriptions_of({b.owner for b in alerts}) if alerts else {},
            matches=await store.matches_for(pairs) if pairs else {},
            papers=await self._papers.get_papers(sorted({k for _, k in pairs})) if pairs else {},
            # Each alert ranks by its reader's ratings: read here, not once per message.
            feedback=await store.feedback_of(readers) if readers else {},
        )

    async def plan(self, batch: DeliveryBatch, reads: ClaimReads, now: datetime) -> list[Plan]:
        """The messages of one batch of the claim ``reads`` was read for."""
        user = reads.user(batch.owner)
        if batch.kind is DeliveryKind.ALERT:
            return [await self._alerts(batch, reads, user, now)]
        if batch.kind is DeliveryKind.DIGEST:
            return [await self._digest(batch, row, user, now) for row in batch.deliveries]
        return [await self._transactional(batch, row, user, now) for row in batch.deliveries]

    async def user(self, owner: Owner) -> User | None:
        if owner.kind is not OwnerKind.USER:
            return None
        return await self._store.get_user(int(owner.id))

    async def fall_back(
        self, user: User, rows: Sequence[Delivery], reason: str, now: datetime
    ) -> str:
        """Move Discord alerts to email (if the address is deliverable); say what happened."""
        keys = [d.paper_key for d in rows if d.paper_key]
        moved = await self._store.fall_back_to_email(user.id, keys, now)
        return f"{reason}; sent by email instead" if moved else reason

    async def _alerts(
        self, batch: DeliveryBatch, reads: ClaimReads, user: User | None, now: datetime
    ) -> Plan:
        rows = list(batch.deliveries)
        problem = owner_hold(batch.owner, user, batch.channel)
        if problem is not None:
            if user is not None and moves_to_email(user, batch.channel):
                problem = await self.fall_back(user, rows, problem, now)
            return Plan().suppress(problem, rows)
        plan = Plan()
        items = self._alert_items(batch, reads, rows, user, plan)
        subs = reads.subscriptions.get(batch.owner, ())
        feedback = reads.feedback.get(user.id) if user is not None else None
        items = await rank_items(self._store, batch.owner, items, subs, feedback)
        if plan.rows:
            message = AlertMessage(
                key=batch_key(batch, plan.rows),
                recipient=recipient_for(batch.owner, user, batch.channel),
                items=self._with_feedback(sorted(items, key=_best_first), user, batch.channel),
                links=self._message_links(user, batch.channel, now),
                rate=True,
            )
            plan.send = lambda: self._notifiers[batch.channel].send_alerts(message)
        return plan

    def _alert_items(
        self,
        batch: DeliveryBatch,
        reads: ClaimReads,
        rows: list[Delivery],
        user: User | None,
        plan: Plan,
    ) -> list[AlertItem]:
        subs = {s.id: s for s in reads.subscriptions.get(batch.owner, ())}
        email = user.email if user is not None and batch.channel is Channel.EMAIL else None
        stop_urls: dict[int, str] = {}  # one signed link per subscription and message
        # An alert's 80 rows name a reader's few subscriptions and word lists over and
        # over: each combination is decided (held, or the parts it shows) once per message.
        decided: dict[tuple[tuple[int, ...], bool, tuple[str, ...]], Decision] = {}
        items: list[AlertItem] = []
        for row in rows:
            key = row.paper_key or ""
            match, paper = reads.matches.get((batch.owner, key)), reads.papers.get(key)
            if match is None or paper is None:
                plan.suppress(MATCH_GONE, [row])
                continue
            fallback = row.payload.get("fallback") == Channel.DISCORD
            combination = (match.sub_ids, fallback, match.words)
            decision = decided.get(combination)
            if decision is None:
                live = [subs[i] for i in match.sub_ids if i in subs]
                decision = decided[combination] = self._decide(
                    live, batch.channel, fallback, match.words, (email, stop_urls)
                )
            if isinstance(decision, str):
                plan.suppress(decision, [row])
                continue
            items.append(AlertItem(paper, decision, match.score))
            plan.rows.append(row)
        return items

    def _decide(
        self,
        live: list[Subscription],
        channel: Channel,
        fallback: bool,
        words: tuple[str, ...],
        links: tuple[str | None, dict[int, str]],
    ) -> Decision:
        """Why an alert caught by these live subscriptions is held, or the parts it shows;
        ``links``: the reader's address and the message's stop links (one per subscription)."""
        held = alert_hold(live, channel, fallback)
        if held is not None:
            return held
        wanted = wanted_subscriptions(live, channel, fallback)
        return tuple(self._matched(s, words, *links) for s in wanted)

    def _with_feedback(
        self, items: list[AlertItem], user: User | None, channel: Channel
    ) -> tuple[AlertItem, ...]:
        """Signed 👍 / 👎 links, for mail, on the papers it shows in full (the first)."""
        if user is None or channel is not Channel.EMAIL or not user.email:
            return tuple(items)
        shown = self._links.feedback_papers
        return tuple(
            replace(item, feedback=self._feedback(user, item)) if i < shown else item
            for i, item in enumerate(items)
        )

    def _feedback(self, user: User, item: AlertItem) -> FeedbackLinks:
        sub_id = item.subscriptions[0].sub_id if item.subscriptions else None
        return self._links.feedback_links(user.id, item.paper.key, sub_id)

    def _matched(
        self,
        sub: Subscription,
        words: tuple[str, ...],
        address: str | None,
        stop_urls: dict[int, str],
    ) -> MatchedSubscription:
        if address and sub.id not in stop_urls:
            stop_urls[sub.id] = self._links.stop_subscription_url(address, sub.id)
        return MatchedSubscription(sub.id, sub.normalized, words, stop_urls.get(sub.id))

    def _message_links(self, user: User | None, channel: Channel, now: datetime) -> MessageLinks:
        if user is None or channel is not Channel.EMAIL or not user.email:
            return MessageLinks()
        return self._links.message_links(user.email, self._links.manage_url(user, now))

    async def _digest(
        self, batch: DeliveryBatch, row: Delivery, user: User | None, now: datetime
    ) -> Plan:
        problem = owner_hold(batch.owner, user, batch.channel)
        if problem is not None or user is None:
            return Plan().suppress(problem or NO_USER, [row])
        message = await self._digests.build(row, user, now, self._links)
        if message is None:
            return Plan().suppress(SUBSCRIPTION_REMOVED, [row])
        notifier = self._notifiers[batch.channel]
        return Plan(send=lambda: notifier.send_digest(message), rows=[row])

    async def _transactional(
        self, batch: DeliveryBatch, row: Delivery, user: User | None, now: datetime
    ) -> Plan:
        if row.payload.get("purpose") == FOLLOW:
            return await self._follow_note(batch, row, user)
        return self._confirmation(batch, row, user, now)

    async def _follow_note(self, batch: DeliveryBatch, row: Delivery, user: User | None) -> Plan:
        problem = owner_hold(batch.owner, user, batch.channel)
        if problem is not None:
            return Plan().suppress(problem, [row])
        recipient = recipient_for(batch.owner, user, batch.channel)
        message = await note_message(self._store, row, recipient)
        if message is None:
            return Plan().suppress(NOTE_GONE, [row])
        try:
            notifier = sender(self._notifiers[batch.channel], batch.channel)
        except PermanentDeliveryError as exc:
            return Plan(send=_fail_permanently(str(exc)), rows=[row])
        return Plan(send=lambda: notifier.send_follow_note(message), rows=[row])

    def _confirmation(
        self, batch: DeliveryBatch, row: Delivery, user: User | None, now: datetime
    ) -> Plan:
        address = str(row.payload.get("address", ""))
        issued = datetime.fromisoformat(str(row.payload.get("issued")))
        if row.payload.get("purpose") == MANAGE:
            return self._manage_link(batch, row, user, address, now)
        problem = confirm_hold(user, address, issued, now)
        if problem is not None or user is None:
            return Plan().suppress(problem or NO_USER, [row])
        notifier = self._notifiers[batch.channel]
        if not isinstance(notifier, ConfirmationSender):
            reason = f"the {batch.channel} channel cannot send confirmations"
            return Plan(send=_fail_permanently(reason), rows=[row])
        message = self._links.confirmation(row.key, user.id, address, issued, user)
        return Plan(send=lambda: notifier.send_confirmation(message), rows=[row])

    def _manage_link(
        self, batch: DeliveryBatch, row: Delivery, user: User | None, address: str, now: datetime
    ) -> Plan:
        """Signed when sent, so the link carries the generation current at that moment."""
        problem = manage_link_hold(user, address)
        if problem is not None or user is None:
            return Plan().suppress(problem or NO_USER, [row])
        notifier = self._notifiers[batch.channel]
        if not isinstance(notifier, ManageLinkSender):
            reason = f"the {batch.channel} channel cannot send manage links"
            return Plan(send=_fail_permanently(reason), rows=[row])
        message = self._links.manage_link(row.key, user, address, now)
        return Plan(send=lambda: notifier.send_manage_link(message), rows=[row])
