"""What every store must do with matches and the digests they wait for.

The ``MatchStore`` role, written against the protocol only; runs over every implementation
(the ``store`` fixture in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from bot.delivery.planning import record_matches
from bot.messages import Channel
from bot.models import DeliveryMode, Owner
from bot.store.protocols import Delivery, DeliveryState, DueDigest, Store
from tests.support_outbox import DIGEST, DISCORD, INSTANT, NOW, add_papers, record, verified_user

LATER = NOW + timedelta(hours=1)
DAY = date(2026, 11, 21)


def by_key(deliveries: list[Delivery]) -> dict[str, Delivery]:
    return {d.key: d for d in deliveries}


class TestMatchesContract:
    """``MatchStore``: recording matches, counting them, digests."""

    # --- record_matches ---------------------------------------------------------------------

    async def test_matches_are_counted_since_a_time(self, store: Store) -> None:
        ada = await verified_user(store, "ada@example.org")
        bob = await verified_user(store, "bob@example.org")
        sub_a = await store.add_subscription(ada.owner, "g", "g", INSTANT, NOW, limit=5)
        sub_b = await store.add_subscription(bob.owner, "g", "g", INSTANT, NOW, limit=5)
        await add_papers(store, "p1", "p2")
        assert await store.count_matches_since(NOW) == 0
        early = [record(ada.owner, "p1", sub_a.id), record(bob.owner, "p1", sub_b.id)]
        await record_matches(store, early, NOW)
        await record_matches(store, [record(ada.owner, "p2", sub_a.id, at=LATER)], LATER)
        assert await store.count_matches_since(NOW) == 3
        assert await store.count_matches_since(LATER) == 1
        assert await store.count_matches_since(LATER + timedelta(seconds=1)) == 0

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

    async def test_records_come_back_exactly_whatever_their_text(self, store: Store) -> None:
        """Words are stored as JSON text and keys inside delivery keys: quotes,
        backslashes, JSON-looking words, non-BMP characters, a paper key with quotes and
        a long float come back as given."""
        user = await verified_user(store, discord_id="501")
        sub = await store.add_subscription(user.owner, "g", "g", INSTANT | DISCORD, NOW, limit=5)
        keys = ['2403.1"x', "p\\2", "p 3 ☃"]
        await add_papers(store, *keys)
        words = ('"quoted"', "back\\slash", '["json"]', "naïve 🤖", "->> 1", "")
        given = [
            record(user.owner, k, sub.id, score=0.1 + i / 3, words=words)
            for i, k in enumerate(keys)
        ]
        assert await record_matches(store, given, NOW) == given
        assert await store.get_matches(user.owner, keys) == {r.paper_key: r for r in given}
        alerts = by_key(await store.list_deliveries(user.owner, DeliveryState.PENDING))
        owner = str(user.owner)
        expected = {f"alert:{c}:{owner}:{k}" for c in ("email", "discord") for k in keys}
        assert {k for k in alerts if k.startswith("alert:")} == expected
        assert {d.paper_key for d in alerts.values() if d.kind == "alert"} == set(keys)

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

    async def test_queue_is_read_newest_first_and_cleared_chunk_by_chunk(
        self, store: Store
    ) -> None:
        user = await verified_user(store)
        sub = await store.add_subscription(user.owner, "g", "g", INSTANT, NOW, limit=5)
        await add_papers(store, "old1", "old2")
        await add_papers(store, "new1", now=LATER)
        page = await store.queued_for_matching(limit=2)
        assert next(iter(page.versions)) == "new1"  # the newest first, the backlog behind
        # A chunk takes off the queue only the papers it completes: the rest stay queued.
        first = {"new1": page.versions["new1"]}
        await record_matches(store, [record(user.owner, "new1", sub.id)], NOW, matched=first)
        left = await store.queued_for_matching(limit=10)
        assert set(left.versions) == {"old1", "old2"}
        again = [record(user.owner, k, sub.id) for k in ("new1", "old1")]
        stored = await record_matches(store, again, NOW, matched=dict(left.versions))
        assert [r.paper_key for r in stored] == ["old1"]  # a repeated record adds nothing
        assert (await store.queued_for_matching()).versions == {}

    # --- counting -------------------------------------------------------------------------

    async def test_count_matches_per_subscription(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        a = await store.add_subscription(user.owner, "a", "a", DISCORD, NOW, limit=5)
        b = await store.add_subscription(user.owner, "b", "b", DISCORD, NOW, limit=5)
        await add_papers(store, "p1", "p2")
        await record_matches(
            store, [record(user.owner, "p1", a.id, b.id), record(user.owner, "p2", a.id)], NOW
        )
        assert await store.count_matches([a.id, b.id, 999]) == {a.id: 2, b.id: 1, 999: 0}
        assert await store.count_matches([]) == {}
        # Many ids at once (everyone's subscriptions): counted right across the store's
        # batches, with a and b in different ones.
        many = [a.id, *range(10_000, 11_200), b.id]
        counts = await store.count_matches(many)
        assert len(counts) == len(many)
        assert (counts[a.id], counts[b.id], sum(counts.values())) == (2, 1, 3)

    # --- digests ----------------------------------------------------------------------------

    async def _waiting(self, store: Store, *keys: str, address: str = "ada@example.org") -> Owner:
        user = await verified_user(store, address)
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

    async def test_digests_for_many_owners_at_once(self, store: Store) -> None:
        a = await self._waiting(store, "p1", "p2")
        b = await self._waiting(store, "p3", address="bo@example.org")
        idle = (await verified_user(store, "cy@example.org")).owner
        early = await self._waiting(store, "p4", address="di@example.org")
        due = [
            DueDigest(b, DAY),
            DueDigest(idle, DAY),
            DueDigest(a, DAY, matched_by=LATER),
            DueDigest(a, DAY + timedelta(days=1)),  # listed twice: only the first counts
            DueDigest(early, DAY, matched_by=NOW - timedelta(minutes=1)),
        ]
        made = await store.create_digests(due, LATER)
        assert [(d.owner, d.digest_date) for d in made] == [(b, DAY), (a, DAY)]
        assert [r.paper_key for r in await store.digest_matches(made[1].id)] == ["p1", "p2"]
        assert await store.digest_waiting() == {early: 1}
        assert await store.create_digests(due, LATER) == []  # never twice a date
        assert await store.create_digests([], LATER) == []

    async def test_many_digests_agree_with_one(self, store: Store) -> None:
        quiet = (await verified_user(store)).owner
        [made] = await store.create_digests([DueDigest(quiet, DAY)], NOW, allow_empty=True)
        assert made.key == f"digest:email:{quiet}:2026-11-21"
        assert await store.create_digest(quiet, DAY, NOW, allow_empty=True) is None
        unwanted = await self._waiting(store, "p1", address="bo@example.org")
        [sub] = await store.list_subscriptions(unwanted)
        await store.set_subscription_delivery(sub.id, unwanted, INSTANT, NOW)
        assert await store.create_digests([DueDigest(unwanted, DAY)], LATER) == []
        assert await store.digest_waiting() == {}

    async def test_alerts_held_below_min_relevance_reach_the_digest(self, store: Store) -> None:
        """Instant only, but with a floor: what fell below it waits for a digest, made one
        owner at a time or many at once."""
        owners = [
            await self._waiting(store, "p1"),
            await self._waiting(store, "p2", address="bo@example.org"),
        ]
        for owner in owners:
            [sub] = await store.list_subscriptions(owner)
            await store.set_subscription_delivery(sub.id, owner, INSTANT, NOW)
            await store.set_min_relevance(sub.id, owner, 0.9, NOW)
        one = await store.create_digest(owners[0], DAY, LATER)
        [many] = await store.create_digests([DueDigest(owners[1], DAY)], LATER)
        assert one is not None
        assert [r.paper_key for r in await store.digest_matches(one.id)] == ["p1"]
        assert [r.paper_key for r in await store.digest_matches(many.id)] == ["p2"]

    async def test_drop_waiting(self, store: Store) -> None:
        owner = await self._waiting(store, "p1", "p2")
        assert await store.drop_waiting_digest_matches(owner) == 2
        assert await store.waiting_digest_matches(owner) == []

    async def test_recent_matches_newest_first_and_only_the_sent(self, store: Store) -> None:
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
