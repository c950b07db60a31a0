"""New matches to outbox rows: gather what the policy needs, ask it, hand the store the rows.

The match step (``bot.matching.step.match_cycle``) is given ``plan_matches``: matching
may not import delivery, and the store only writes what it is given. It also passes its
own lookup of subscriptions (the compiled index, synced with the store at the start of
the step and edited in place as people subscribe and unsubscribe), so planning a chunk
of thousands of records reads only the users behind them, in one query.

What changes after planning is caught where it always is, at send time: an alert of a
subscription removed meanwhile is suppressed ('subscription removed'), a Discord alert of
a user found unreachable meanwhile moves to email, and ``Store.create_digest`` drops
waiting matches no subscription still wants in a digest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from bot.delivery.policy import plan_match
from bot.delivery.ranking import owner_ranker
from bot.messages import PlannedMatch
from bot.models import MatchRecord, Owner, OwnerKind, Subscription, User
from bot.store.protocols import Store

# A subscription by id, or None once it is gone (the match step's index).
SubscriptionLookup = Callable[[int], Subscription | None]


async def plan_matches(
    store: Store,
    records: Sequence[MatchRecord],
    subscription: SubscriptionLookup | None = None,
) -> list[PlannedMatch]:
    """One planned match per record that still has a live subscription, in order.

    ``subscription`` looks subscriptions up by id (default: one read of every owner's
    subscriptions from the store)."""
    owners = list(dict.fromkeys(r.owner for r in records))
    lookup = subscription or await _stored_lookup(store, owners)
    user_ids = [int(o.id) for o in owners if o.kind is OwnerKind.USER]
    users = await store.get_users(user_ids) if user_ids else {}
    live = [_live(r, lookup) for r in records]
    scores = await _relevance(store, records, live)
    planned = (
        plan_match(r, subs, _user(r.owner, users), scores.get((r.owner, r.paper_key)))
        for r, subs in zip(records, live, strict=True)
    )
    return [p for p in planned if p is not None]


async def _relevance(
    store: Store, records: Sequence[MatchRecord], live: Sequence[Sequence[Subscription]]
) -> dict[tuple[Owner, str], float]:
    """The learned relevance of each record's paper to its owner, only for owners with a
    subscription that holds alerts below a ``min_relevance`` (the only ones who need it)."""
    wanted: dict[Owner, list[str]] = {}
    for r, subs in zip(records, live, strict=True):
        if any(s.min_relevance is not None for s in subs):
            wanted.setdefault(r.owner, []).append(r.paper_key)
    out: dict[tuple[Owner, str], float] = {}
    owned = await store.subscriptions_of(list(wanted)) if wanted else {}
    for owner, keys in wanted.items():
        ranker = await owner_ranker(store, owner, owned.get(owner, []))
        if ranker is not None:
            out.update(((owner, r.key), r.score) for r in await ranker.rank(keys))
    return out


async def record_matches(
    store: Store,
    records: Sequence[MatchRecord],
    now: datetime,
    *,
    matched: Mapping[str, int] | None = None,
) -> list[MatchRecord]:
    """Plan ``records`` and store them (see ``Store.record_matches``); the new ones."""
    return await store.record_matches(await plan_matches(store, records), now, matched=matched)


async def _stored_lookup(store: Store, owners: Sequence[Owner]) -> SubscriptionLookup:
    by_id = {s.id: s for subs in (await store.subscriptions_of(owners)).values() for s in subs}
    return by_id.get


def _live(record: MatchRecord, lookup: SubscriptionLookup) -> list[Subscription]:
    """The record's subscriptions that still exist and are still its owner's, by id."""
    found = (lookup(sub_id) for sub_id in record.sub_ids)
    return [s for s in found if s is not None and s.owner == record.owner]


def _user(owner: Owner, users: Mapping[int, User]) -> User | None:
    return users.get(int(owner.id)) if owner.kind is OwnerKind.USER else None
