"""Ingest → match → records, as one step per cycle.

``SubscriptionIndex`` keeps every subscription compiled in a ``Matcher`` (loaded once,
then edited in place as people subscribe and unsubscribe, and synced with the store at
each cycle for changes made elsewhere: the CLI's process, unsubscribe links).
``match_cycle`` matches a cycle's papers and stores one ``MatchRecord`` per (owner,
paper) — together with the deliveries it calls for, in the store's same transaction.
Which deliveries is delivery's decision, not ours: the caller passes its planner
(``bot.delivery.planning.plan_matches``), as matching may not import delivery; the step
lends it the index's subscriptions, so planning need not read them back from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter

from bot.errors import QueryError
from bot.matching.analysis import Key, analyze_paper, key_frequencies, with_likes
from bot.matching.explain import new_match
from bot.matching.matcher import Match, Matcher
from bot.matching.query import STORED_LIMITS, Query, Upvotes, leaves, like_keys, parse_query
from bot.memory import cyclic_gc_off, release_free_memory
from bot.messages import PlannedMatch
from bot.models import DeliveryMode, MatchRecord, Owner, Paper, Subscription
from bot.relevance.corpus import vectorize_new
from bot.relevance.similar import LikeTargets
from bot.store.paging import every_subscription
from bot.store.protocols import Store

log = logging.getLogger(__name__)

PAIR_SHARE_KEPT = 0.01  # see recent_key_weights

# New records, and the subscriptions by id (None once gone) -> the rows the store writes
# for them (delivery policy decides).
MatchPlanner = Callable[
    [Store, Sequence[MatchRecord], Callable[[int], Subscription | None]],
    Awaitable[Sequence[PlannedMatch]],
]


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
        self._marker: int | None = None
        self._unparsable: set[int] = set()
        # The papers each subscription's ``like:`` atoms name.
        self._likes: dict[int, frozenset[str]] = {}
        # Subscriptions whose alerts learned relevance may hold (``min_relevance``).
        self._by_relevance: set[int] = set()
        self._shared = _SharedParts()

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, sub_id: int) -> Subscription | None:
        return self._subs.get(sub_id)

    def add(self, sub: Subscription, query: Query | None = None) -> None:
        query = query or compile_subscription(sub)
        self.remove(sub.id)
        self.matcher.add(sub.id, query)
        self._keep(sub)
        if any(isinstance(leaf, Upvotes) for leaf in leaves(query)):
            self._upvote_subs.add(sub.id)
        if likes := like_keys(query):
            self._likes[sub.id] = likes

    def remove(self, sub_id: int) -> None:
        if self._subs.pop(sub_id, None) is not None:
            self.matcher.remove(sub_id)
            self._upvote_subs.discard(sub_id)
            self._likes.pop(sub_id, None)
            self._by_relevance.discard(sub_id)

    def _keep(self, sub: Subscription) -> None:
        self._subs[sub.id] = self._shared(sub)
        if sub.min_relevance is None:
            self._by_relevance.discard(sub.id)
        else:
            self._by_relevance.add(sub.id)

    def needs_vectors(self) -> bool:
        """Whether matching needs the new papers' vectors: for ``like:``, or to plan the
        alerts of a subscription held by learned relevance (``min_relevance``)."""
        return bool(self._likes or self._by_relevance)

    def like_targets(self) -> frozenset[str]:
        """Every paper a ``like:`` atom of some subscription names."""
        return frozenset[str]().union(*self._likes.values())

    async def load(self, store: Store) -> None:
        """Compile every stored subscription."""
        await self.sync(store, force=True)

    async def sync(self, store: Store, *, force: bool = False) -> None:
        """Catch up with subscriptions another process (the CLI) or a path that bypasses
        the index (an unsubscribe link) added, removed or changed; a cheap check (one
        counter) when none did."""
        marker = await store.subscriptions_marker()
        if marker == self._marker and not force:
            return
        # Only what was indexed before the read: a subscribe finishing meanwhile stays.
        before = set(self._subs)
        active: set[int] = set()
        async for sub in every_subscription(store):
            if not sub.paused:  # a paused one matches nothing until resumed: not indexed
                active.add(sub.id)
                self._refresh(sub)
        for sub_id in before - active:
            self.remove(sub_id)
        self._marker = marker

    def _refresh(self, sub: Subscription) -> None:
        indexed = self._subs.get(sub.id)
        if indexed is None:
            if sub.id not in self._unparsable:
                self._add_stored(sub)
        elif indexed.normalized != sub.normalized:
            self.remove(sub.id)  # another query under the same id: compiled again
            self._add_stored(sub)
        elif indexed != sub:
            self._keep(sub)  # how it delivers changed: nothing to compile

    def _add_stored(self, sub: Subscription) -> None:
        try:
            self.add(sub)
        except QueryError as exc:  # stored by an older paperbell with other rules
            self._unparsable.add(sub.id)  # warned once, not at every sync
            log.warning("subscription %s no longer parses (%s); skipped", sub.id, exc)

    def records(
        self,
        paper: Paper,
        now: datetime,
        *,
        upvotes_only: bool,
        likes: frozenset[str] = frozenset(),
    ) -> list[MatchRecord]:
        """One record per owner whose subscriptions match ``paper``; ``likes``: the
        stored papers it is similar to (``like:``)."""
        by_owner: dict[Owner, list[Match]] = defaultdict(list)
        subs = self._subs
        terms = with_likes(analyze_paper(paper), likes)
        only = self._upvote_subs if upvotes_only else None
        for ids, words, score in self.matcher.match_groups(terms, only):
            for sid in ids:
                by_owner[subs[sid].owner].append(new_match(sid, words, score))
        return [_record(owner, paper, matches, now) for owner, matches in by_owner.items()]


class _SharedParts:
    """One object for the parts many subscriptions hold alike: an owner's subscriptions
    one ``Owner``, everyone's delivery modes a few sets, a query typed as normalized one
    string. The index holds every subscription for the daemon's life (50,000 copies of
    each part are some 15 MB, by tracemalloc)."""

    def __init__(self) -> None:
        self._owners: dict[Owner, Owner] = {}
        self._modes: dict[frozenset[DeliveryMode], frozenset[DeliveryMode]] = {}

    def __call__(self, sub: Subscription) -> Subscription:
        owner = self._owners.setdefault(sub.owner, sub.owner)
        deliver = self._modes.setdefault(sub.deliver, sub.deliver)
        query = sub.normalized if sub.query == sub.normalized else sub.query
        if owner is sub.owner and deliver is sub.deliver and query is sub.query:
            return sub
        return replace(sub, owner=owner, deliver=deliver, query=query)


async def recent_key_weights(store: Store, papers: int = 2000) -> dict[Key, float]:
    """How common each term is among recent papers: the presearcher indexes each
    subscription under its rarest terms, so fewer candidates need checking.

    Two-word keys held by under ``PAIR_SHARE_KEPT`` of the papers are left out: a key the
    weights lack counts as rarest anyway, and those pairs are most of the keys (at 2,000
    papers some 29,000 of 33,000, 12 MB that the index would hold all day)."""
    found = key_frequencies(analyze_paper(p) for p in await store.list_papers(limit=papers))
    return {k: w for k, w in found.items() if w >= PAIR_SHARE_KEPT or not isinstance(k, tuple)}


def _record(owner: Owner, paper: Paper, matches: Sequence[Match], now: datetime) -> MatchRecord:
    if len(matches) == 1:  # most records: one subscription of the owner caught the paper
        (match,) = matches
        return MatchRecord(owner, paper.key, (match.sub_id,), match.matched_words, match.score, now)
    matches = sorted(matches)  # by sub_id: the words in a stable order
    words = dict.fromkeys(w for m in matches for w in m.matched_words)
    return MatchRecord(
        owner=owner,
        paper_key=paper.key,
        sub_ids=tuple(m.sub_id for m in matches),
        words=tuple(words),
        score=max(m.score for m in matches),
        matched_at=now,
    )


@dataclass(frozen=True, slots=True)
class MatchSummary:
    papers: int  # papers looked at
    matched: int  # (owner, paper) records that were new
    owners: int  # distinct owners who will hear of something


# Queued papers read at a time, newest first; match records gathered before they are
# sorted by owner; match records per write transaction. Each transaction stays short (a
# fraction of a second), so a subscribe, an unsubscribe or a "mark as sent" never waits
# long behind the match step. A batch is one pass over every owner's index pages, so
# fewer, larger batches write less: at 50,000 subscriptions a page of papers brings some
# 83,000 records, one pass where a batch of 50,000 made two. Memory stays bounded: a
# record is some 200 bytes, 40 MB at most a batch.
PAGE = 200
BATCH = 200_000
CHUNK = 5_000


async def match_cycle(
    index: SubscriptionIndex, store: Store, now: datetime, plan: MatchPlanner
) -> MatchSummary:
    """Match every paper waiting in the store's match queue and store the records.

    Every stored paper without a vector gets one (``bot.relevance.corpus``) by the time
    it returns, before matching when a ``like:`` atom (which compares the new papers'
    vectors with its paper's) or a ``min_relevance`` needs them. New papers are
    matched against every subscription; updated ones only against those
    with an ``upvotes:`` filter (a replacement is never news, but a paper that reached N
    upvotes is). The queue is read page by page, newest first, until it is empty, and
    records are stored in owner-sorted chunks of ``CHUNK`` (see ``_Chunks``): a paper
    leaves the queue in the transaction that writes the last of its records, so an
    interrupted cycle loses nothing and repeats no delivery. ``plan`` decides each
    record's deliveries (a record whose subscriptions are all gone is dropped).
    """
    await index.sync(store)
    # Every new paper gets its vector. Only like: and min_relevance need them while
    # matching; otherwise a fit (a process of its own, seconds on a first cycle or a
    # refit) runs on the other core beside the matching. Delivery ranks with them after.
    vectoring = asyncio.create_task(vectorize_new(store, now))

    async def vectors_if_needed() -> None:  # asked again after each sync: people subscribe
        if index.needs_vectors():
            await vectoring

    try:
        summary = await _match_queue(index, store, now, plan, vectors_if_needed)
        await vectoring
    finally:
        if not vectoring.done():  # the matching failed or was cancelled: no orphan fit
            vectoring.cancel()
            await asyncio.gather(vectoring, return_exceptions=True)
    return summary


async def _match_queue(
    index: SubscriptionIndex,
    store: Store,
    now: datetime,
    plan: MatchPlanner,
    vectors_if_needed: Callable[[], Awaitable[None]],
) -> MatchSummary:
    async def plan_chunk(records: Sequence[MatchRecord]) -> Sequence[PlannedMatch]:
        await index.sync(store)  # what people changed since the last chunk, if anything
        await vectors_if_needed()  # for a min_relevance subscription
        return await plan(store, records, index.get)

    chunks = _Chunks(store, now, plan_chunk)
    seen: dict[str, int] = {}
    with cyclic_gc_off():  # hundreds of thousands of acyclic records
        while (queued := await store.queued_for_matching(limit=PAGE)).versions:
            if all(seen.get(k) == v for k, v in queued.versions.items()):
                break  # nothing new: papers a concurrent write keeps queued wait for next time
            seen.update(queued.versions)
            await vectors_if_needed()  # for like:
            targets = await LikeTargets.load(store, index.like_targets())
            similar = await targets.similar(store, [p.key for p in queued.new])
            for papers, upvotes_only in ((queued.new, False), (queued.updated, True)):
                for paper in papers:
                    likes = similar.get(paper.key, frozenset())
                    records = index.records(paper, now, upvotes_only=upvotes_only, likes=likes)
                    await chunks.add(paper.key, queued.versions[paper.key], records)
                    await asyncio.sleep(0)  # a web request waits one paper, not a page
            await chunks.flush()
    if seen:  # the batches' pages: the daemon idles at its size, not the step's
        release_free_memory()
    return MatchSummary(len(seen), chunks.matched, len(chunks.owners))


class _Chunks:
    """Records on their way to the store: gathered up to ``BATCH``, sorted by owner, then
    written ``CHUNK`` at a time. Each chunk is one transaction; the one that completes the
    batch also takes its papers off the queue. A chunk then covers a range of owners, and
    the tables' keys and indexes lead with the owner: a chunk of papers would touch every
    owner's pages, so the cost of writing would grow with the community (2-3× at 50,000
    subscriptions). Interrupted mid-batch, the papers stay queued and are matched again;
    the records already written are not written twice (``Store.record_matches``)."""

    def __init__(
        self,
        store: Store,
        now: datetime,
        plan: Callable[[Sequence[MatchRecord]], Awaitable[Sequence[PlannedMatch]]],
    ) -> None:
        self.store, self.now, self.plan = store, now, plan
        self.records: list[MatchRecord] = []
        self.done: dict[str, int] = {}  # papers whose records are all gathered
        self.matched = 0
        self.owners: set[Owner] = set()

    async def add(self, key: str, version: int, records: Sequence[MatchRecord]) -> None:
        self.records.extend(records)
        self.done[key] = version
        if len(self.records) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        if not self.records and not self.done:
            return
        # As the store keys them: an owner's order is its text's (``user:10`` < ``user:9``).
        batch = sorted(self.records, key=attrgetter("owner"))
        self.records = []
        for start in range(0, max(len(batch), 1), CHUNK):
            last = start + CHUNK >= len(batch)
            await self._write(batch[start : start + CHUNK], self.done if last else None)
        self.done = {}

    async def _write(self, records: Sequence[MatchRecord], done: dict[str, int] | None) -> None:
        planned = await self.plan(records)
        stored = await self.store.record_matches(planned, self.now, matched=done)
        self.matched += len(stored)
        self.owners.update(r.owner for r in stored)
