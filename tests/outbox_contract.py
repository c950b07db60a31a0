"""What every ``Store`` must do for matches, the outbox and digests (protocol only).

Subclass ``OutboxContract`` in a test module that provides a ``store`` fixture.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from bot.delivery.notifier import Channel
from bot.delivery.planning import record_matches
from bot.models import DeliveryMode, Owner
from bot.store.protocols import DEFAULT_LEASE, Delivery, DeliveryKind, DeliveryState, Store
from tests.support_outbox import (
    DIGEST,
    DISCORD,
    INSTANT,
    NOW,
    add_papers,
    record,
    verified_user,
)

LATER = NOW + timedelta(hours=1)
DAY = date(2026, 11, 21)


def by_key(deliveries: list[Delivery]) -> dict[str, Delivery]:
    return {d.key: d for d in deliveries}


class OutboxContract:
    # --- record_matches ---------------------------------------------------------------------

    async def test_each_mode_gets_its_delivery(self, store: Store) -> None:
        user = await verified_user(store, discord_id="500")
        modes = frozenset(DeliveryMode)
        sub = await store.add_subscription(user.owner, "g", "g", modes, NOW, limit=5)
        await add_papers(store, "p1")
        new = await record_matches(store, [record(user.owner, "p1", sub.id, score=2.5)], NOW)
        assert new == [record(user.owner, "p1", sub.id, score=2.5)]
        alerts = by_key(await store.list_deliveries(user.owner, DeliveryState.PENDING))
        owner = str(user.owner)
        assert set(alerts) >= {f"alert:email:{owner}:p1", f"alert:discord:{owner}:p1"}
        assert alerts[f"alert:email:{owner}:p1"].paper_key == "p1"
        assert await store.digest_waiting() == {user.owner: 1}
        assert await store.get_matches(user.owner, ["p1", "p9"]) == {"p1": new[0]}

    async def test_second_recording_is_ignored(self, store: Store) -> None:
        user = await verified_user(store)
        sub = await store.add_subscription(user.owner, "g", "g", INSTANT, NOW, limit=5)
        await add_papers(store, "p1", "p2")
        first = await record_matches(store, [record(user.owner, "p1", sub.id)], NOW)
        before = await store.list_deliveries()
        again = await record_matches(
            store, [record(user.owner, "p1", sub.id), record(user.owner, "p2", sub.id)], LATER
        )
        assert len(first) == 1
        assert [r.paper_key for r in again] == ["p2"]
        after = await store.list_deliveries()
        assert after[: len(before)] == before
        assert [d.paper_key for d in after[len(before) :]] == ["p2"]

    async def test_several_subscriptions_make_one_match_and_one_alert(self, store: Store) -> None:
        user = await verified_user(store)
        a = await store.add_subscription(user.owner, "a", "a", INSTANT, NOW, limit=5)
        b = await store.add_subscription(user.owner, "b", "b", INSTANT, NOW, limit=5)
        await add_papers(store, "p1")
        await record_matches(store, [record(user.owner, "p1", a.id, b.id)], NOW)
        matches = await store.get_matches(user.owner, ["p1"])
        assert matches["p1"].sub_ids == (a.id, b.id)
        alerts = [d for d in await store.list_deliveries(user.owner) if d.kind == "alert"]
        assert [d.key for d in alerts] == [f"alert:email:{user.owner}:p1"]

    async def test_channel_subscription_posts_to_discord_only(self, store: Store) -> None:
        channel = Owner.channel("99")
        sub = await store.add_subscription(channel, "g", "g", DISCORD, NOW, limit=5)
        await add_papers(store, "p1")
        await record_matches(store, [record(channel, "p1", sub.id)], NOW)
        [alert] = await store.list_deliveries(channel)
        assert (alert.channel, alert.kind, alert.key) == (
            "discord",
            "alert",
            "alert:discord:channel:99:p1",
        )
        assert await store.digest_waiting() == {}

    async def test_unreachable_discord_user_falls_back_to_email(self, store: Store) -> None:
        user = await verified_user(store, discord_unreachable=True)
        sub = await store.add_subscription(user.owner, "g", "g", DISCORD, NOW, limit=5)
        await add_papers(store, "p1")
        await record_matches(store, [record(user.owner, "p1", sub.id)], NOW)
        alerts = [d for d in await store.list_deliveries(user.owner) if d.kind == "alert"]
        assert [(d.channel, dict(d.payload)) for d in alerts] == [
            ("email", {"fallback": "discord"})
        ]

    async def test_match_of_removed_subscription_is_ignored(self, store: Store) -> None:
        user = await verified_user(store)
        sub = await store.add_subscription(user.owner, "g", "g", INSTANT, NOW, limit=5)
        await store.remove_subscription(sub.id, None, NOW)
        await add_papers(store, "p1")
        assert await record_matches(store, [record(user.owner, "p1", sub.id)], NOW) == []
        assert await store.get_matches(user.owner, ["p1"]) == {}

    # --- claiming and outcomes --------------------------------------------------------------

    async def _three_alerts(self, store: Store) -> Owner:
        user = await verified_user(store, discord_id="500")
        modes = frozenset({DeliveryMode.DISCORD, DeliveryMode.EMAIL_INSTANT})
        sub = await store.add_subscription(user.owner, "g", "g", modes, NOW, limit=5)
        await add_papers(store, "p1", "p2", "p3")
        await record_matches(
            store, [record(user.owner, k, sub.id) for k in ("p1", "p2", "p3")], NOW
        )
        return user.owner

    async def test_claim_groups_per_owner_channel_and_kind(self, store: Store) -> None:
        owner = await self._three_alerts(store)
        batches = await store.claim_due(NOW)
        shapes = {
            (b.owner, b.channel, b.kind): [d.paper_key for d in b.deliveries] for b in batches
        }
        assert shapes[owner, Channel.EMAIL, DeliveryKind.ALERT] == ["p1", "p2", "p3"]
        assert shapes[owner, Channel.DISCORD, DeliveryKind.ALERT] == ["p1", "p2", "p3"]
        claimed = [d for b in batches for d in b.deliveries]
        assert all(d.state is DeliveryState.SENDING and d.attempts == 1 for d in claimed)
        assert await store.claim_due(NOW) == []

    async def test_claim_only_due_rows_of_given_channels(self, store: Store) -> None:
        await self._three_alerts(store)
        assert await store.claim_due(NOW - timedelta(seconds=1)) == []
        batches = await store.claim_due(NOW, channels=[Channel.DISCORD])
        assert {b.channel for b in batches} == {Channel.DISCORD}
        rest = await store.claim_due(NOW)
        assert {b.channel for b in rest} == {Channel.EMAIL}

    async def test_overdue_counts_due_pending_rows_per_channel(self, store: Store) -> None:
        await self._three_alerts(store)
        assert await store.overdue(NOW - timedelta(seconds=1)) == {}
        # Email: the three alerts and the address's confirmation.
        assert await store.overdue(NOW) == {Channel.EMAIL: (4, NOW), Channel.DISCORD: (3, NOW)}
        await store.claim_due(NOW, channels=[Channel.DISCORD])  # sending is not pending
        assert await store.overdue(LATER) == {Channel.EMAIL: (4, NOW)}

    async def test_concurrent_claims_never_share_a_row(self, store: Store) -> None:
        await self._three_alerts(store)
        results = await asyncio.gather(*(store.claim_due(NOW, limit=1) for _ in range(6)))
        ids = [d.id for batches in results for b in batches for d in b.deliveries]
        assert len(ids) == len(set(ids)) == len(await store.list_deliveries())

    async def test_outcome_transitions(self, store: Store) -> None:
        await self._three_alerts(store)
        rows = [d for b in await store.claim_due(NOW) for d in b.deliveries]
        sent, failed, suppressed, retried, released, *stale = (r.id for r in rows)
        await store.mark_sent([sent], LATER)
        await store.mark_failed([failed], "550 no such user", LATER)
        await store.mark_suppressed([suppressed], "the user paused notifications", LATER)
        await store.retry_later({retried: LATER + timedelta(minutes=5)}, "421 busy", LATER)
        await store.release([released], LATER)
        state = {d.id: d for d in await store.list_deliveries()}
        assert (state[sent].state, state[sent].sent_at) == ("sent", LATER)
        assert (state[failed].state, state[failed].last_error) == ("failed", "550 no such user")
        assert state[suppressed].last_error == "the user paused notifications"
        assert (state[retried].state, state[retried].next_attempt_at) == (
            "pending",
            LATER + timedelta(minutes=5),
        )
        assert (state[released].state, state[released].attempts) == ("pending", 0)
        assert {state[i].state for i in stale} == {"sending"}
        # Before the claim's lease has passed, rows in 'sending' belong to their claimer.
        soon = {
            d.id for b in await store.claim_due(NOW + timedelta(minutes=1)) for d in b.deliveries
        }
        assert soon == {released}
        expired = NOW + DEFAULT_LEASE
        again = [d for b in await store.claim_due(expired) for d in b.deliveries]
        assert {d.id for d in again} == set(stale)
        assert {d.attempts for d in again} == {2}  # the dead claim's attempt counts

    async def test_a_renewed_lease_keeps_rows_and_a_lost_one_is_said(self, store: Store) -> None:
        await self._three_alerts(store)
        claimed = await store.claim_due(NOW)
        [first, second] = [b for b in claimed if b.kind is DeliveryKind.ALERT]
        ids = [d.id for d in first.deliveries]
        assert first.lease == NOW + DEFAULT_LEASE
        later = NOW + DEFAULT_LEASE / 2
        assert await store.renew_lease(ids, NOW + DEFAULT_LEASE, later + DEFAULT_LEASE) == set(ids)
        expired = NOW + DEFAULT_LEASE
        taken = await store.claim_due(expired)  # not the batch whose lease was renewed
        assert {b.channel for b in taken if b.kind is DeliveryKind.ALERT} == {second.channel}
        others = [d.id for d in second.deliveries]
        assert await store.renew_lease(others, NOW + DEFAULT_LEASE, expired) == frozenset()

    async def test_retry_later_sets_one_attempt_count(self, store: Store) -> None:
        await self._three_alerts(store)
        batch = next(b for b in await store.claim_due(NOW) if b.kind is DeliveryKind.ALERT)
        ids = [d.id for d in batch.deliveries]
        await store.retry_later(dict.fromkeys(ids, LATER), "421 busy", NOW, attempts=3)
        rows = [d for d in await store.list_deliveries() if d.id in ids]
        assert {(d.attempts, d.next_attempt_at, d.state) for d in rows} == {
            (3, LATER, DeliveryState.PENDING)
        }

    async def test_three_strikes_suppress_an_address(self, store: Store) -> None:
        owner = await self._three_alerts(store)
        user_id = int(owner.id)
        for n in (1, 2):
            struck = await store.record_email_strike(user_id, "ada@example.org", "550", NOW)
            assert struck is not None
            assert (struck.email_strikes, struck.email_suppressed) == (n, False)
        final = await store.record_email_strike(user_id, "ADA@example.org", "550 gone", NOW)
        assert final is not None
        assert final.email_suppressed
        assert (
            final.email_suppressed_reason == "3 deliveries failed permanently, the last: 550 gone"
        )
        email = [d for d in await store.list_deliveries(owner) if d.channel == "email"]
        assert {d.state for d in email} == {DeliveryState.SUPPRESSED}
        assert await store.record_email_strike(user_id, "old@example.org", "550", NOW) is None

    async def test_fall_back_to_email(self, store: Store) -> None:
        user = await verified_user(store, discord_id="500")
        sub = await store.add_subscription(user.owner, "g", "g", DISCORD, NOW, limit=5)
        await add_papers(store, "p1", "p2")
        await record_matches(store, [record(user.owner, k, sub.id) for k in ("p1", "p2")], NOW)
        assert await store.fall_back_to_email(user.id, ["p1", "p2", "p1"], LATER) == 2
        assert await store.fall_back_to_email(user.id, ["p1"], LATER) == 0  # queued already
        marked = await store.get_user(user.id)
        assert marked is not None
        assert marked.discord_unreachable and marked.discord_notice_pending
        email = await store.get_delivery(f"alert:email:{user.owner}:p2")
        assert email is not None
        assert email.payload == {"fallback": "discord"}

    # --- digests ----------------------------------------------------------------------------

    async def _waiting(self, store: Store, *keys: str) -> Owner:
        user = await verified_user(store)
        sub = await store.add_subscription(user.owner, "g", "g", DIGEST, NOW, limit=5)
        await add_papers(store, *keys)
        await record_matches(store, [record(user.owner, k, sub.id) for k in keys], NOW)
        return user.owner

    async def test_digest_attaches_waiting_matches_once_per_date(self, store: Store) -> None:
        owner = await self._waiting(store, "p1", "p2")
        digest = await store.create_digest(owner, DAY, LATER)
        assert digest is not None
        assert (digest.kind, digest.digest_date, digest.key) == (
            "digest",
            DAY,
            f"digest:email:{owner}:2026-11-21",
        )
        assert [r.paper_key for r in await store.digest_matches(digest.id)] == ["p1", "p2"]
        assert await store.digest_waiting() == {}
        assert await store.latest_digest_dates() == {owner: DAY}
        await add_papers(store, "p3")
        sub_id = (await store.list_subscriptions(owner))[0].id
        await record_matches(store, [record(owner, "p3", sub_id)], LATER)
        assert await store.create_digest(owner, DAY, LATER) is None  # never twice a day
        assert [r.paper_key for r in await store.waiting_digest_matches(owner)] == ["p3"]

    async def test_concurrent_digest_creation_makes_one(self, store: Store) -> None:
        owner = await self._waiting(store, "p1")
        made = await asyncio.gather(*(store.create_digest(owner, DAY, LATER) for _ in range(5)))
        assert sum(d is not None for d in made) == 1

    async def test_no_waiting_no_digest_unless_all_quiet(self, store: Store) -> None:
        user = await verified_user(store)
        assert await store.create_digest(user.owner, DAY, NOW) is None
        quiet = await store.create_digest(user.owner, DAY, NOW, allow_empty=True)
        assert quiet is not None
        assert await store.digest_matches(quiet.id) == []

    async def test_digest_waits_for_matches_from_before_its_slot(self, store: Store) -> None:
        owner = await self._waiting(store, "p1")
        assert (
            await store.create_digest(owner, DAY, LATER, matched_by=NOW - timedelta(minutes=1))
            is None
        )
        assert await store.create_digest(owner, DAY, LATER, matched_by=NOW) is not None

    async def test_unwanted_waiting_matches_stop_waiting(self, store: Store) -> None:
        owner = await self._waiting(store, "p1")
        [sub] = await store.list_subscriptions(owner)
        await store.set_subscription_delivery(sub.id, owner, INSTANT, NOW)
        assert await store.create_digest(owner, DAY, LATER) is None
        assert await store.digest_waiting() == {}

    async def test_drop_waiting(self, store: Store) -> None:
        owner = await self._waiting(store, "p1", "p2")
        assert await store.drop_waiting_digest_matches(owner) == 2
        assert await store.waiting_digest_matches(owner) == []

    @pytest.mark.parametrize("count", [1, 600])
    async def test_get_papers_in_chunks(self, store: Store, count: int) -> None:
        keys = [f"p{i}" for i in range(count)]
        await add_papers(store, *keys)
        found = await store.get_papers([*keys, "missing"])
        assert sorted(found) == sorted(keys)
