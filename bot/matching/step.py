"""Ingest → match → records, as one step per cycle.

``SubscriptionIndex`` keeps every subscription compiled in a ``Matcher`` (loaded once,
then edited in place as people subscribe and unsubscribe, and synced with the store at
each cycle for changes made elsewhere: the CLI's process, unsubscribe links).
``match_cycle`` matches a cycle's papers and stores one ``MatchRecord`` per (owner,
paper) — together with the deliveries it calls for, in the store's same transaction.
Which deliveries is delivery's decision, not ours: the caller passes its planner
(``bot.delivery.planning.plan_matches``), as matching may not import delivery.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.errors import QueryError
from bot.matching.analysis import Key, analyze_paper, key_frequencies
from bot.matching.matcher import Match, Matcher
from bot.matching.query import STORED_LIMITS, Query, Upvotes, leaves, parse_query
from bot.messages import PlannedMatch
from bot.models import MatchRecord, Owner, Paper, Subscription
from bot.store.protocols import Store

log = logging.getLogger(__name__)

# New records -> the rows the store writes for them (delivery policy decides).
MatchPlanner = Callable[[Store, Sequence[MatchRecord]], Awaitable[Sequence[PlannedMatch]]]


def compile_subscription(sub: Subscription) -> Query:
    """The stored normalized text, parsed back (it may be longer than what was typed)."""
    return parse_query(sub.normalized, limits=STORED_LIMITS)


class SubscriptionIndex:
    """Every subscription, compiled and indexed; who owns each."""

    def __init__(self, key_weights: Mapping[Key, float] | None = None) -> None:
        # Weights only steer which terms index a subscription (speed), never the results.
        self.matcher = Matcher(key_weights)
        self._subs: dict[int, Subscription] = {}
        # Subscriptions that can start matching a paper we already know: its upvotes grew.
        self._upvote_subs: set[int] = set()
        # The store's subscriptions as last synced; None until loaded.
        self._marker: tuple[int, int] | None = None
        self._unparsable: set[int] = set()

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, sub_id: int) -> Subscription | None:
        return self._subs.get(sub_id)

    def add(self, sub: Subscription, query: Query | None = None) -> None:
        query = query or compile_subscription(sub)
        self.remove(sub.id)
        self.matcher.add(sub.id, query)
        self._subs[sub.id] = sub
        if any(isinstance(leaf, Upvotes) for leaf in leaves(query)):
            self._upvote_subs.add(sub.id)

    def remove(self, sub_id: int) -> None:
        if self._subs.pop(sub_id, None) is not None:
            self.matcher.remove(sub_id)
            self._upvote_subs.discard(sub_id)

    async def load(self, store: Store) -> None:
        """Compile every stored subscription."""
        await self.sync(store, force=True)

    async def sync(self, store: Store, *, force: bool = False) -> None:
        """Catch up with subscriptions another process (the CLI) or a path that bypasses
        the index (an unsubscribe link) added or removed; a cheap check when none did."""
        marker = await store.subscriptions_marker()
        if marker == self._marker and not force:
            return
        # Only what was indexed before the read: a subscribe finishing meanwhile stays.
        before = set(self._subs)
        stored = {sub.id: sub for sub in await store.list_subscriptions()}
        for sub_id in before - stored.keys():
            self.remove(sub_id)
        for sub in stored.values():
            if sub.id not in self._subs and sub.id not in self._unparsable:
                self._add_stored(sub)
        self._marker = marker

    def _add_stored(self, sub: Subscription) -> None:
        try:
            self.add(sub)
        except QueryError as exc:  # stored by an older paperbell with other rules
            self._unparsable.add(sub.id)  # warned once, not at every sync
            log.warning("subscription %s no longer parses (%s); skipped", sub.id, exc)

    def records(self, paper: Paper, now: datetime, *, upvotes_only: bool) -> list[MatchRecord]:
        """One record per owner whose subscriptions match ``paper``."""
        by_owner: dict[Owner, list[Match]] = defaultdict(list)
        wanted = self._upvote_subs if upvotes_only else self._subs
        for match in self.matcher.match_terms(analyze_paper(paper), only=wanted):
            by_owner[self._subs[match.sub_id].owner].append(match)
        return [_record(owner, paper, matches, now) for owner, matches in by_owner.items()]


async def recent_key_weights(store: Store, papers: int = 2000) -> dict[Key, float]:
    """How common each term is among recent papers: the presearcher indexes each
    subscription under its rarest terms, so fewer candidates need checking."""
    return key_frequencies(analyze_paper(p) for p in await store.list_papers(limit=papers))


def _record(owner: Owner, paper: Paper, matches: Sequence[Match], now: datetime) -> MatchRecord:
    words = dict.fromkeys(w for m in matches for w in m.matched_words)
    return MatchRecord(
        owner=owner,
        paper_key=paper.key,
        sub_ids=tuple(sorted(m.sub_id for m in matches)),
        words=tuple(words),
        score=max(m.score for m in matches),
        matched_at=now,
    )


@dataclass(frozen=True, slots=True)
class MatchSummary:
    papers: int  # papers looked at
    matched: int  # (owner, paper) records that were new
    owners: int  # distinct owners who will hear of something


async def match_cycle(
    index: SubscriptionIndex, store: Store, now: datetime, plan: MatchPlanner
) -> MatchSummary:
    """Match every paper waiting in the store's match queue and store the records.

    New papers are matched against every subscription; updated ones only against those
    with an ``upvotes:`` filter (a replacement is never news, but a paper that reached N
    upvotes is). The queue is cleared in the transaction that stores the records, so an
    interrupted cycle is finished by the next one. ``plan`` decides each record's
    deliveries (a record whose subscriptions are all gone is dropped).
    """
    await index.sync(store)
    queued = await store.queued_for_matching()
    records = _collect(index, queued.new, now, upvotes_only=False)
    records += _collect(index, queued.updated, now, upvotes_only=True)
    if not queued.versions:
        return MatchSummary(0, 0, 0)
    planned = await plan(store, records)
    stored = await store.record_matches(planned, now, matched=queued.versions)
    return MatchSummary(len(queued.versions), len(stored), len({r.owner for r in stored}))


def _collect(
    index: SubscriptionIndex, papers: Iterable[Paper], now: datetime, *, upvotes_only: bool
) -> list[MatchRecord]:
    return [r for p in papers for r in index.records(p, now, upvotes_only=upvotes_only)]
