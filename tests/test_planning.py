"""Planning a chunk of new matches: a plan decided once per (owner, subscriptions) still
fits each record — its own paper, its subscriptions narrowed to the live ones."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.delivery.planning import plan_matches
from bot.matching.step import SubscriptionIndex
from bot.messages import Channel, Route
from bot.models import DeliveryMode, MatchRecord, Owner, OwnerKind, Subscription
from bot.store.sqlite.store import SqliteStore

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
CHANNEL = Owner(OwnerKind.CHANNEL, "4242")
OTHER = Owner(OwnerKind.CHANNEL, "5151")


def _sub(sub_id: int, owner: Owner) -> Subscription:
    deliver = frozenset({DeliveryMode.DISCORD})
    return Subscription(sub_id, owner, "diffusion", "diffusion", deliver, NOW)


def _record(key: str, *sub_ids: int, owner: Owner = CHANNEL) -> MatchRecord:
    return MatchRecord(owner, key, sub_ids, ("diffusion",), 1.0, NOW)


async def test_each_record_keeps_its_paper_and_only_live_subscriptions(
    sqlite_store: SqliteStore,
) -> None:
    live = {1: _sub(1, CHANNEL), 3: _sub(3, OTHER)}  # 2 was removed
    records = [
        _record("2603.00001", 1, 2),
        _record("2603.00002", 1, 2),
        _record("2603.00003", 2),  # its only subscription is gone
        _record("2603.00004", 3),  # 3 is another owner's: not this record's
        _record("2603.00005", 1),
    ]
    planned = await plan_matches(sqlite_store, records, live.get)
    assert [(p.record.paper_key, p.record.sub_ids) for p in planned] == [
        ("2603.00001", (1,)),
        ("2603.00002", (1,)),
        ("2603.00005", (1,)),
    ]
    assert all(p.alerts == (Route(Channel.DISCORD),) and not p.digest for p in planned)
    assert planned[0].record.words == records[0].words


def test_the_index_holds_one_owner_and_one_mode_set_for_many_subscriptions() -> None:
    index = SubscriptionIndex()
    subs = [
        Subscription(i, Owner.user(7), q, q, frozenset({DeliveryMode.EMAIL_DIGEST}), NOW)
        for i, q in enumerate(("diffusion", "cat:cs.LG", "author:hinton"), start=1)
    ]
    subs.append(
        Subscription(4, Owner.user(7), "Diffusion  ", "diffusion models", subs[0].deliver, NOW)
    )
    for sub in subs:
        index.add(sub)
    held = [index.get(sub.id) for sub in subs]
    assert held == subs  # equal values: only the copies are shared
    assert len({id(s.owner) for s in held if s}) == 1
    assert len({id(s.deliver) for s in held if s}) == 1
    assert held[1] is not None and held[1].query is held[1].normalized
    assert held[3] is not None and held[3].query == "Diffusion  "  # as typed, when it differs
