"""Contract: what the web's self-service needs of every ``Store`` — subscriptions changed
in place (query, pause), manage-link mails (capped, revoking older links in the same
transaction), and an owner's newest matches (all, or only those sent)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.delivery.planning import record_matches
from bot.errors import LimitError, NotFoundError, UserError
from bot.messages import Channel
from bot.models import Owner
from bot.store.protocols import DeliveryKind, Store
from tests.support_outbox import DIGEST, INSTANT, NOW, add_papers, record, verified_user

LATER = NOW + timedelta(hours=1)


async def test_update_subscription_keeps_its_id_and_bumps_the_marker(store: Store) -> None:
    user = await verified_user(store)
    sub = await store.add_subscription(user.owner, "llm", "llm", DIGEST, NOW, limit=5)
    other = await store.add_subscription(user.owner, "gan", "gan", DIGEST, NOW, limit=5)
    marker = await store.subscriptions_marker()
    edited = await store.update_subscription(sub.id, user.owner, LATER, query=("LLMs", "llm2"))
    assert (edited.id, edited.query, edited.normalized) == (sub.id, "LLMs", "llm2")
    paused = await store.update_subscription(sub.id, user.owner, LATER, paused=True)
    assert paused.paused and (await store.get_subscription(sub.id)) == paused
    assert await store.subscriptions_marker() > marker
    with pytest.raises(UserError, match=f"#{other.id}"):
        await store.update_subscription(sub.id, user.owner, LATER, query=("gan", "gan"))
    with pytest.raises(NotFoundError):  # another owner's: the same answer as a missing one
        await store.update_subscription(sub.id, Owner.user(user.id + 1), LATER, paused=False)
    with pytest.raises(UserError):
        await store.update_subscription(sub.id, user.owner, LATER, query=(" ", ""))


async def test_manage_link_mails_are_capped_and_revoke_with_the_mail(store: Store) -> None:
    user = await verified_user(store)
    first = await store.queue_manage_link(user.id, NOW, max_per_day=2, revoke=True)
    assert first.kind is DeliveryKind.CONFIRM and first.payload["purpose"] == "manage"
    assert first.payload["address"] == "ada@example.org"
    revoked = await store.get_user(user.id)
    assert revoked is not None and revoked.manage_generation == user.manage_generation + 1
    await store.queue_manage_link(user.id, LATER, max_per_day=2)
    with pytest.raises(LimitError, match="2 links"):
        await store.queue_manage_link(user.id, LATER, max_per_day=2, revoke=True)
    unchanged = await store.get_user(user.id)
    assert unchanged is not None and unchanged.manage_generation == revoked.manage_generation
    assert await store.queue_manage_link(user.id, NOW + timedelta(days=1, hours=1), max_per_day=2)


async def test_recent_matches_newest_first_and_only_the_sent(store: Store) -> None:
    user = await verified_user(store)
    sub = await store.add_subscription(user.owner, "llm", "llm", INSTANT, NOW, limit=5)
    await add_papers(store, "2611.00001", "2611.00002")
    await record_matches(store, [record(user.owner, "2611.00001", sub.id, at=NOW)], NOW)
    await record_matches(store, [record(user.owner, "2611.00002", sub.id, at=LATER)], LATER)
    newest = await store.recent_matches(user.owner, 10)
    assert [r.paper_key for r in newest] == ["2611.00002", "2611.00001"]
    assert await store.recent_matches(user.owner, 10, sent_only=True) == []
    claimed = [
        d for b in await store.claim_due(LATER, channels=[Channel.EMAIL]) for d in b.deliveries
    ]
    await store.mark_sent([d.id for d in claimed if d.paper_key == "2611.00001"], LATER)
    await store.release([d.id for d in claimed if d.paper_key != "2611.00001"], LATER)
    sent = await store.recent_matches(user.owner, 10, sent_only=True)
    assert [r.paper_key for r in sent] == ["2611.00001"]
    assert await store.recent_matches(Owner.user(user.id + 1), 10) == []
