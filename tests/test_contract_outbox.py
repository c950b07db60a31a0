"""What every store must do with the outbox: claims, leases, outcomes, strikes, fallback.

The ``OutboxStore`` role, written against the protocol only; runs over every
implementation (the ``store`` fixture in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.delivery.planning import record_matches
from bot.messages import Channel
from bot.models import DeliveryMode, Owner
from bot.store.protocols import DEFAULT_LEASE, DeliveryKind, DeliveryState, Store
from tests.support_outbox import DISCORD, NOW, add_papers, record, verified_user

LATER = NOW + timedelta(hours=1)


class TestOutboxContract:
    """``OutboxStore``: claiming due deliveries and recording what became of them."""

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

    async def test_counts_and_the_newest_rows(self, store: Store) -> None:
        # What `paperbell status` and `outbox` read: counted and limited by the store, not
        # by listing a community's millions of rows.
        owner = await self._three_alerts(store)  # 6 alerts and the address's confirmation
        everything = await store.list_deliveries()
        assert [d.id for d in everything] == sorted(d.id for d in everything)
        newest = await store.list_deliveries(limit=2)
        assert [d.id for d in newest] == [d.id for d in everything[-2:]]
        mine = await store.list_deliveries(owner, DeliveryState.PENDING, limit=10)
        assert [d.id for d in mine] == [d.id for d in everything if d.owner == owner]
        assert await store.delivery_counts() == {DeliveryState.PENDING: 7}
        claimed = [
            d.id
            for b in await store.claim_due(NOW, channels=[Channel.DISCORD])
            for d in b.deliveries
        ]
        await store.mark_sent(claimed[:2], NOW)
        assert await store.delivery_counts() == {
            DeliveryState.PENDING: 4,
            DeliveryState.SENDING: 1,
            DeliveryState.SENT: 2,
        }
        assert (await store.count_users(), await store.count_subscriptions()) == (1, 1)

    async def test_rows_filtered_and_paged_by_the_store(self, store: Store) -> None:
        # `why` and an address change ask for one reader's rows of one kind (or for one
        # paper); `outbox --all` pages through the table instead of holding all of it.
        owner = await self._three_alerts(store)
        other = await verified_user(store, "other@example.org", discord_id="501")
        everything = await store.list_deliveries()
        alerts = await store.list_deliveries(owner, kind=DeliveryKind.ALERT)
        assert [d.id for d in alerts] == [
            d.id for d in everything if d.owner == owner and d.kind is DeliveryKind.ALERT
        ]
        assert len(alerts) == 6
        p2 = await store.list_deliveries(owner, kind=DeliveryKind.ALERT, paper_key="p2")
        assert {(d.channel, d.paper_key) for d in p2} == {
            (Channel.EMAIL, "p2"),
            (Channel.DISCORD, "p2"),
        }
        confirms = await store.list_deliveries(other.owner, kind=DeliveryKind.CONFIRM)
        assert [d.owner for d in confirms] == [other.owner]
        assert await store.list_deliveries(owner, kind=DeliveryKind.DIGEST) == []
        assert await store.list_deliveries(paper_key="p9") == []
        pages, after = [], 0
        while page := await store.list_deliveries(after_id=after, limit=3):
            pages.append([d.id for d in page])
            after = page[-1].id
        assert [len(p) for p in pages] == [3, 3, 2]
        assert [i for p in pages for i in p] == [d.id for d in everything]
        pending = await store.list_deliveries(
            state=DeliveryState.PENDING, after_id=everything[5].id
        )
        assert [d.id for d in pending] == [d.id for d in everything[6:]]

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

    async def test_settle_records_a_wave_at_once(self, store: Store) -> None:
        await self._three_alerts(store)
        rows = [d for b in await store.claim_due(NOW) for d in b.deliveries]
        sent, paused, gone, untouched, *_ = (r.id for r in rows)
        reasons = {"the user paused notifications": [paused], "subscription removed": [gone]}
        await store.settle([sent], reasons, LATER)
        await store.settle([sent], {}, LATER + timedelta(minutes=1))  # settled rows stay
        state = {d.id: d for d in await store.list_deliveries()}
        assert (state[sent].state, state[sent].sent_at) == (DeliveryState.SENT, LATER)
        assert (state[paused].state, state[paused].last_error) == (
            DeliveryState.SUPPRESSED,
            "the user paused notifications",
        )
        assert state[gone].last_error == "subscription removed"
        assert state[untouched].state is DeliveryState.SENDING

    async def test_settle_of_sent_rows_alone_marks_only_rows_being_sent(self, store: Store) -> None:
        # The dispatcher's write after each message: sent rows, nothing suppressed.
        await self._three_alerts(store)
        rows = [d for b in await store.claim_due(NOW) for d in b.deliveries]
        sent, released, untouched, *_ = (r.id for r in rows)
        await store.release([released], NOW)  # pending again: no longer ours to mark
        await store.settle([sent, released], {}, LATER)
        await store.settle([], {}, LATER)  # nothing to write is no error
        state = {d.id: d for d in await store.list_deliveries()}
        assert (state[sent].state, state[sent].sent_at) == (DeliveryState.SENT, LATER)
        assert (state[released].state, state[released].sent_at) == (DeliveryState.PENDING, None)
        assert state[untouched].state is DeliveryState.SENDING

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


class TestClaimOrderContract:
    """``claim_due`` takes transactional mail first and reads in bulk for the dispatcher."""

    async def test_confirmations_jump_a_backlog_of_alerts(self, store: Store) -> None:
        modes = frozenset({DeliveryMode.EMAIL_INSTANT})
        for n in range(5):  # the alerts are queued before any confirmation of a later user
            user = await verified_user(store, f"u{n}@example.org", now=NOW - timedelta(hours=1))
            sub = await store.add_subscription(user.owner, "g", "g", modes, NOW, limit=5)
            await add_papers(store, f"p{n}")
            await record_matches(store, [record(user.owner, f"p{n}", sub.id)], NOW)
        late = await verified_user(store, "late@example.org")  # its confirmation is newest
        first = await store.claim_due(LATER, limit=1)
        assert [b.kind for b in first] == [DeliveryKind.CONFIRM]
        kinds = [b.kind for b in await store.claim_due(LATER, limit=100)]
        assert kinds[:5] == [DeliveryKind.CONFIRM] * 5 and set(kinds[5:]) == {DeliveryKind.ALERT}
        assert late.email == "late@example.org"

    async def test_bulk_reads(self, store: Store) -> None:
        owner = await TestOutboxContract()._three_alerts(store)
        users = await store.get_users([int(owner.id), 999_999])
        assert list(users) == [int(owner.id)]
        subs = await store.subscriptions_of([owner, Owner.parse("user:999999")])
        assert [s.normalized for s in subs[owner]] == ["g"]
        assert subs[Owner.parse("user:999999")] == []
        found = await store.matches_for([(owner, "p1"), (owner, "p3"), (owner, "nope")])
        assert sorted(k for _, k in found) == ["p1", "p3"]
