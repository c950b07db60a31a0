"""From claimed outbox rows to messages: who may still get what, and the message itself.

``MessageBuilder.plan`` turns one claimed batch into ``Plan``s: one message to send with
the rows it carries, plus the rows that may not go any more and why. The rules, checked
at send time because much can change after a row is queued, are ``bot.delivery.policy``'s
(paused user, unconfirmed or suppressed address, unreachable Discord user, removed
subscription, stale confirmation); this module gathers what they need and acts on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.accounts.addresses import LinkBuilder
from bot.delivery.digests import DigestPlanner
from bot.delivery.notifier import (
    AlertItem,
    AlertMessage,
    Channel,
    ConfirmationMessage,
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
    moves_to_email,
    owner_hold,
    wanted_subscriptions,
)
from bot.delivery.ranking import rank_items
from bot.errors import PermanentDeliveryError
from bot.models import Owner, OwnerKind, Subscription, User
from bot.store.protocols import Delivery, DeliveryBatch, DeliveryKind, Store


@runtime_checkable
class ConfirmationSender(Protocol):
    """The email notifier's extra: the double opt-in mail."""

    async def send_confirmation(self, message: ConfirmationMessage) -> None: ...


@dataclass
class Plan:
    """One message to send (or none), the rows it carries, and rows that may not go."""

    send: Callable[[], Awaitable[None]] | None = None
    rows: list[Delivery] = field(default_factory=list)
    suppressed: dict[str, list[Delivery]] = field(default_factory=dict)

    def suppress(self, reason: str, deliveries: Sequence[Delivery]) -> Plan:
        self.suppressed.setdefault(reason, []).extend(deliveries)
        return self


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

    async def plan(self, batch: DeliveryBatch, now: datetime) -> list[Plan]:
        user = await self.user(batch.owner)
        if batch.kind is DeliveryKind.ALERT:
            return [await self._alerts(batch, user, now)]
        if batch.kind is DeliveryKind.DIGEST:
            return [await self._digest(batch, row, user, now) for row in batch.deliveries]
        return [self._confirmation(batch, row, user, now) for row in batch.deliveries]

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

    async def _alerts(self, batch: DeliveryBatch, user: User | None, now: datetime) -> Plan:
        rows = list(batch.deliveries)
        problem = owner_hold(batch.owner, user, batch.channel)
        if problem is not None:
            if user is not None and moves_to_email(user, batch.channel):
                problem = await self.fall_back(user, rows, problem, now)
            return Plan().suppress(problem, rows)
        plan = Plan()
        items = await rank_items(
            self._store, batch.owner, await self._alert_items(batch, rows, user, plan)
        )
        if plan.rows:
            message = AlertMessage(
                key=batch_key(batch, plan.rows),
                recipient=recipient_for(batch.owner, user, batch.channel),
                items=tuple(sorted(items, key=_best_first)),
                links=self._message_links(user, batch.channel),
                rate=True,
            )
            plan.send = lambda: self._notifiers[batch.channel].send_alerts(message)
        return plan

    async def _alert_items(
        self, batch: DeliveryBatch, rows: list[Delivery], user: User | None, plan: Plan
    ) -> list[AlertItem]:
        keys = [d.paper_key or "" for d in rows]
        matches = await self._store.get_matches(batch.owner, keys)
        papers = await self._store.get_papers(keys)
        subs = {s.id: s for s in await self._store.list_subscriptions(batch.owner)}
        email = user.email if user is not None and batch.channel is Channel.EMAIL else None
        items: list[AlertItem] = []
        for row in rows:
            match, paper = matches.get(row.paper_key or ""), papers.get(row.paper_key or "")
            if match is None or paper is None:
                plan.suppress(MATCH_GONE, [row])
                continue
            live = [subs[i] for i in match.sub_ids if i in subs]
            fallback = row.payload.get("fallback") == Channel.DISCORD
            held = alert_hold(live, batch.channel, fallback)
            if held is not None:
                plan.suppress(held, [row])
                continue
            wanted = wanted_subscriptions(live, batch.channel, fallback)
            matched = tuple(self._matched(s, match.words, email) for s in wanted)
            feedback = None
            if email and user is not None:  # signed 👍 / 👎 links, for mail
                sub_id = wanted[0].id if wanted else None
                feedback = self._links.feedback_links(user.id, paper.key, sub_id)
            items.append(AlertItem(paper, matched, match.score, feedback=feedback))
            plan.rows.append(row)
        return items

    def _matched(
        self, sub: Subscription, words: tuple[str, ...], address: str | None
    ) -> MatchedSubscription:
        url = self._links.stop_subscription_url(address, sub.id) if address else None
        return MatchedSubscription(sub.id, sub.normalized, words, url)

    def _message_links(self, user: User | None, channel: Channel) -> MessageLinks:
        if user is None or channel is not Channel.EMAIL or not user.email:
            return MessageLinks()
        return self._links.message_links(user.email)

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

    def _confirmation(
        self, batch: DeliveryBatch, row: Delivery, user: User | None, now: datetime
    ) -> Plan:
        address = str(row.payload.get("address", ""))
        issued = datetime.fromisoformat(str(row.payload.get("issued")))
        problem = confirm_hold(user, address, issued, now)
        if problem is not None or user is None:
            return Plan().suppress(problem or NO_USER, [row])
        notifier = self._notifiers[batch.channel]
        if not isinstance(notifier, ConfirmationSender):
            reason = f"the {batch.channel} channel cannot send confirmations"
            return Plan(send=_fail_permanently(reason), rows=[row])
        message = self._links.confirmation(row.key, user.id, address, issued)
        return Plan(send=lambda: notifier.send_confirmation(message), rows=[row])
