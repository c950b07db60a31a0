"""New matches to outbox rows: gather what the policy needs, ask it, hand the store the rows.

The match step (``bot.matching.step.match_cycle``) is given ``plan_matches``: matching
may not import delivery, and the store only writes what it is given.

Users and subscriptions are read just before the store's write transaction, not inside
it. What changes in between is caught where it always is, at send time: an alert of a
subscription removed meanwhile is suppressed ('subscription removed'), a Discord alert of
a user found unreachable meanwhile moves to email, and ``Store.create_digest`` drops
waiting matches no subscription still wants in a digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.delivery.policy import plan_match
from bot.messages import PlannedMatch
from bot.models import MatchRecord, Owner, OwnerKind, Subscription, User
from bot.store.protocols import Store


async def plan_matches(store: Store, records: Sequence[MatchRecord]) -> list[PlannedMatch]:
    """One planned match per record that still has a live subscription, in order."""
    owners = list(dict.fromkeys(r.owner for r in records))
    subs: dict[Owner, list[Subscription]] = {}
    users: dict[Owner, User | None] = {}
    for owner in owners:  # read once per owner, however many papers they matched
        subs[owner] = await store.list_subscriptions(owner)
        users[owner] = await _user(store, owner)
    planned = (plan_match(r, subs[r.owner], users[r.owner]) for r in records)
    return [p for p in planned if p is not None]


async def record_matches(
    store: Store,
    records: Sequence[MatchRecord],
    now: datetime,
    *,
    matched: Mapping[str, int] | None = None,
) -> list[MatchRecord]:
    """Plan ``records`` and store them (see ``Store.record_matches``); the new ones."""
    return await store.record_matches(await plan_matches(store, records), now, matched=matched)


async def _user(store: Store, owner: Owner) -> User | None:
    if owner.kind is not OwnerKind.USER:
        return None
    return await store.get_user(int(owner.id))
