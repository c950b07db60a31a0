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
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.delivery.policy import plan_match
from bot.delivery.ranking import owner_ranker
from bot.messages import PlannedMatch
from bot.models import MatchRecord, Owner, OwnerKind, Subscription, User
from bot.store.protocols import Store

# A subscription by id, or None once it is gone (the match step's index).
SubscriptionLookup = Callable[[int], Subscription | None]
_UNDECIDED: Any = object()  # not yet in the decided plans (where None means "dropped")


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
    live = _LiveSubscriptions(lookup)
    scores = await _relevance(store, records, live)
    # Without a learned score, a record's plan depends only on its owner and the
    # subscriptions that caught it: decided once per (owner, sub_ids), not per record (a
    # day brings one owner dozens of papers through the same few subscriptions).
    decided: dict[tuple[Owner, tuple[int, ...]], PlannedMatch | None] = {}
    planned: list[PlannedMatch] = []
    for r in records:
        score = scores.get((r.owner, r.paper_key)) if scores else None
        if score is not None:
            plan = plan_match(r, live(r), _user(r.owner, users), score)
        else:
            key = (r.owner, r.sub_ids)
            if (plan := decided.get(key, _UNDECIDED)) is _UNDECIDED:
                plan = decided[key] = plan_match(r, live(r), _user(r.owner, users))
            plan = _for_record(plan, r)
        if plan is not None:
            planned.append(plan)
    return planned


def _for_record(plan: PlannedMatch | None, record: MatchRecord) -> PlannedMatch | None:
    """``plan``, decided for another record of the same owner and subscriptions, for
    ``record``: its deliveries, and its subscriptions narrowed to the live ones."""
    if plan is None or plan.record is record:
        return plan
    if plan.record.sub_ids != record.sub_ids:
        record = replace(record, sub_ids=plan.record.sub_ids)
    return PlannedMatch(record, plan.digest, plan.alerts)


class _LiveSubscriptions:
    """A record's subscriptions that still exist and are still its owner's, by id;
    looked up once per (owner, sub_ids)."""

    def __init__(self, lookup: SubscriptionLookup) -> None:
        self._lookup = lookup
        self._found: dict[tuple[Owner, tuple[int, ...]], list[Subscription]] = {}

    def __call__(self, record: MatchRecord) -> list[Subscription]:
        key = (record.owner, record.sub_ids)
        if (subs := self._found.get(key)) is None:
            found = (self._lookup(sub_id) for sub_id in record.sub_ids)
            subs = [s for s in found if s is not None and s.owner == record.owner]
            self._found[key] = subs
        return subs


async def _relevance(
    store: Store, records: Sequence[MatchRecord], live: _LiveSubscriptions
) -> dict[tuple[Owner, str], float]:
    """The learned relevance of each record's paper to its owner, only for owners with a
    subscription that holds alerts below a ``min_relevance`` (the only ones who need it)."""
    by_key = {(r.owner, r.sub_ids): r for r in records}  # whose subscriptions, found once
    holding = {k for k, r in by_key.items() if any(s.min_relevance is not None for s in live(r))}
    if not holding:
        return {}  # the common case: nobody among them holds alerts for relevance
    wanted: dict[Owner, list[str]] = {}
    for r in records:
        if (r.owner, r.sub_ids) in holding:
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


def _user(owner: Owner, users: Mapping[int, User]) -> User | None:
    return users.get(int(owner.id)) if owner.kind is OwnerKind.USER else None
