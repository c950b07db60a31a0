"""Learned relevance: vectors at ingest, ratings, the per-user model, digests in its order."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import numpy as np
import pytest

from bot.delivery.digests import DigestPlanner
from bot.delivery.planning import plan_matches, record_matches
from bot.delivery.policy import plan_match
from bot.errors import NotFoundError
from bot.matching import step
from bot.matching.step import SubscriptionIndex, match_cycle
from bot.models import Owner, Paper, Sighting, SourceState, Subscription
from bot.relevance.corpus import VectorReport, vectorize_new
from bot.relevance.fitting import fit_tfidf
from bot.relevance.ranking import load_ranker
from bot.relevance.similar import LikeTargets
from bot.relevance.vectors import load_vectorizer, pack_rows, stack, vector_text
from bot.store.protocols import Rating, Store
from tests.support_outbox import DIGEST, INSTANT, NOW, FrozenClock, record, verified_user
from tests.support_relevance import by_title, dated_corpus, store_corpus

DIFFUSION = by_title("diffusion")  # 5 listings
REASONING = by_title("reasoning")  # 18 listings


async def test_every_paper_gets_one_vector_at_ingest(store: Store) -> None:
    await store_corpus(store, NOW)
    vectors = await store.recent_vectors()
    assert len(vectors) == len(dated_corpus(NOW)) == 213
    state = await store.vectorizer_state()
    assert state is not None and state.n_docs == 213
    again = await vectorize_new(store, NOW)
    assert (again.vectorized, again.refitted) == (0, False)  # once: nothing to redo


async def test_new_papers_are_vectorized_and_a_grown_corpus_refits(store: Store) -> None:
    await store_corpus(store, NOW)
    few = [Paper(key=f"2412.{i:05d}", title=f"Diffusion sampler {i}") for i in range(10)]
    await store.ingest([Sighting(p) for p in few], SourceState("hf"), NOW)
    report = await vectorize_new(store, NOW)
    assert (report.vectorized, report.refitted) == (10, False)
    more = [Paper(key=f"2412.{i:05d}", title=f"Graph paper {i} on rivers") for i in range(10, 70)]
    await store.ingest([Sighting(p) for p in more], SourceState("hf"), NOW)
    report = await vectorize_new(store, NOW)
    assert report.refitted  # 283 papers >= 1.25 x 213: a new vocabulary for everyone
    state = await store.vectorizer_state()
    assert state is not None and state.version == 2 and state.n_docs == 283
    assert len(await store.recent_vectors()) == 283


def test_stored_vectors_are_what_the_fitted_vectorizer_gives() -> None:
    texts = [vector_text(p) for p in dated_corpus(NOW)]
    fitted = fit_tfidf(texts)
    loaded = load_vectorizer(fitted.kind, fitted.dump())
    direct = fitted.transform(texts[:20])
    again = stack(pack_rows(loaded.transform(texts[:20])), loaded.dimension)
    assert abs(direct - again).max() < 1e-6
    norms = np.sqrt(np.asarray(direct.multiply(direct).sum(axis=1))).ravel()
    assert np.allclose(norms, 1.0, atol=1e-5)  # unit rows: a dot product is the cosine
    assert "diffusion models" in set(fitted.feature_names())  # word pairs too


async def test_ratings_are_kept_per_user_latest_wins(store: Store) -> None:
    await store_corpus(store, NOW)
    ada = await verified_user(store, "ada@example.org")
    bob = await verified_user(store, "bob@example.org")
    await store.rate(ada.id, {DIFFUSION[0]: Rating.LIKE}, NOW, {DIFFUSION[0]: 7})
    await store.rate(ada.id, {DIFFUSION[0]: Rating.DISLIKE}, NOW + timedelta(minutes=1))
    [only] = await store.list_feedback(ada.id)
    assert (only.paper_key, only.rating, only.sub_id) == (DIFFUSION[0], Rating.DISLIKE, 7)
    assert await store.list_feedback(bob.id) == []
    with pytest.raises(NotFoundError, match=r"2499\.99999"):
        await store.rate(bob.id, {"2499.99999": Rating.LIKE}, NOW)
    assert await store.list_feedback(bob.id) == []  # nothing half-written
    assert await store.reset_feedback(ada.id) == 1
    assert await store.list_feedback(ada.id) == []


async def test_a_model_ranks_the_liked_topic_first(store: Store) -> None:
    await store_corpus(store, NOW)
    ada = await verified_user(store, "ada@example.org")
    assert await load_ranker(store, ada.id) is None  # nothing to learn from yet
    liked = DIFFUSION[:3]
    disliked = REASONING[:3]
    ratings = dict.fromkeys(liked, Rating.LIKE) | dict.fromkeys(disliked, Rating.DISLIKE)
    await store.rate(ada.id, ratings, NOW)
    ranker = await load_ranker(store, ada.id)
    assert ranker is not None
    best = await ranker.recommend(NOW - timedelta(days=7), 5)
    assert {r.key for r in best} & set(DIFFUSION[3:])  # the other diffusion papers rise
    assert not {r.key for r in best} & set(liked + disliked)  # rated ones are left out
    scores = [r.score for r in best]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(r.nearest in liked or r.words for r in best)  # each says why


async def test_digest_follows_the_readers_model_and_only_theirs(store: Store) -> None:
    await store_corpus(store, NOW - timedelta(days=1))
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    bob = await verified_user(store, "bob@example.org", timezone="UTC")
    in_digest = [*REASONING[3:6], *DIFFUSION[3:5]]  # keyword scores favour reasoning
    for person in (ada, bob):
        sub = await store.add_subscription(person.owner, "x", "x", DIGEST, NOW, limit=5)
        scores = {k: (5.0 if k in REASONING else 1.0) for k in in_digest}
        records = [record(person.owner, k, sub.id, score=s, at=NOW) for k, s in scores.items()]
        await record_matches(store, records, NOW)
    planner = DigestPlanner(store, FrozenClock(), max_papers=3)

    async def order(person_id: int) -> tuple[list[str], int, list[str]]:
        person = await store.get_user(person_id)
        assert person is not None
        preview = await planner.preview(person, NOW)
        assert preview is not None
        items = [i for s in preview.sections for i in s.items]
        return [i.paper.key for i in items], preview.more, [i.because for i in items]

    bob_before = await order(bob.id)
    assert set(bob_before[0]) <= set(REASONING) and bob_before[1] == 2  # keyword order
    await store.rate(ada.id, dict.fromkeys(DIFFUSION[:3], Rating.LIKE), NOW)
    keys, more, because = await order(ada.id)
    assert keys[:2] == sorted(DIFFUSION[3:5], key=keys.index) and more == 2
    assert all("liked" in b or "words" in b for b in because[:2])
    assert await order(bob.id) == bob_before  # Ada's 👍 never moves Bob's digest
    await store.rate(bob.id, dict.fromkeys(DIFFUSION[:3], Rating.DISLIKE), NOW)
    assert (await order(ada.id))[0] == keys  # nor Bob's 👎 Ada's


async def test_match_step_vectorizes_and_matches_like_subscriptions(store: Store) -> None:
    ada = await verified_user(store, "ada@example.org")
    target = DIFFUSION[1]
    sub = await store.add_subscription(
        ada.owner, f"like:{target}", f"like:{target}", DIGEST, NOW, limit=5
    )
    papers = dated_corpus(NOW)
    await store.ingest([Sighting(p) for p in papers], SourceState("hf"), NOW)  # queued
    assert await store.vectorizer_state() is None
    index = SubscriptionIndex()
    summary = await match_cycle(index, store, NOW, plan_matches)
    assert len(await store.recent_vectors()) == 213  # vectors first, then matching
    found = await store.get_matches(ada.owner, [p.key for p in papers])
    targets = await LikeTargets.load(store, [target])
    expected = {k for k, v in (await targets.similar(store, [p.key for p in papers])).items()}
    assert set(found) == expected and target in expected and 1 < len(expected) < 20
    assert summary.matched == len(expected)
    assert all(r.sub_ids == (sub.id,) for r in found.values())


@pytest.mark.parametrize("query", ["diffusion", f"like:{DIFFUSION[1]}", "min_relevance"])
async def test_matching_waits_for_the_vectors_only_when_a_query_needs_them(
    store: Store, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    # A fit is a process of its own taking seconds: without like: or min_relevance the
    # match step runs beside it, and returns only once every paper has its vector.
    ada = await verified_user(store, "ada@example.org")
    text, floor = ("diffusion", 0.1) if query == "min_relevance" else (query, None)
    await store.add_subscription(ada.owner, text, text, INSTANT, NOW, limit=5, min_relevance=floor)
    papers = dated_corpus(NOW)
    await store.ingest([Sighting(p) for p in papers], SourceState("hf"), NOW)
    release = asyncio.Event()

    async def slow(store: Store, now: datetime) -> VectorReport:
        await release.wait()
        return await vectorize_new(store, now)

    monkeypatch.setattr(step, "vectorize_new", slow)
    cycle = asyncio.create_task(match_cycle(SubscriptionIndex(), store, NOW, plan_matches))
    for _ in range(200):  # until the queue is matched, or long enough to be sure it waits
        await asyncio.sleep(0.01)
        if not (await store.queued_for_matching(limit=1)).versions:
            break
    matched = not (await store.queued_for_matching(limit=1)).versions
    assert matched == (query == "diffusion") and not cycle.done()
    release.set()
    summary = await cycle
    assert summary.matched > 0 and len(await store.recent_vectors()) == len(papers)


async def test_the_index_knows_when_matching_needs_vectors(store: Store) -> None:
    # Asked after every sync of a match step: a min_relevance set or cleared elsewhere
    # (the CLI, the manage page) and a like: subscription are followed as they change.
    ada = await verified_user(store, "ada@example.org")
    sub = await store.add_subscription(ada.owner, "diffusion", "diffusion", INSTANT, NOW, limit=5)
    index = SubscriptionIndex()
    await index.load(store)
    assert not index.needs_vectors()
    await store.set_min_relevance(sub.id, ada.owner, 0.5, NOW)
    await index.sync(store)
    assert index.needs_vectors()
    await store.set_min_relevance(sub.id, ada.owner, None, NOW)
    await index.sync(store)
    assert not index.needs_vectors()
    like = f"like:{DIFFUSION[1]}"
    liked = await store.add_subscription(ada.owner, like, like, INSTANT, NOW, limit=5)
    await index.sync(store)
    assert index.needs_vectors()
    await store.remove_subscription(liked.id, ada.owner, NOW)
    await index.sync(store)
    assert not index.needs_vectors()


def test_policy_holds_instant_alerts_below_min_relevance() -> None:
    ada = Owner.user(1)
    floor = Subscription(1, ada, "x", "x", INSTANT, NOW, min_relevance=0.9)
    plain = Subscription(2, ada, "y", "y", INSTANT, NOW)
    rec = record(ada, "p", 1, at=NOW)
    low = plan_match(rec, [floor], None, relevance=0.2)
    assert low is not None and (low.digest, low.alerts) == (True, ())  # waits for the digest
    high = plan_match(rec, [floor], None, relevance=0.95)
    assert high is not None and (high.digest, len(high.alerts)) == (False, 1)
    unknown = plan_match(rec, [floor], None, relevance=None)  # no model: nothing held
    assert unknown is not None and len(unknown.alerts) == 1
    both = plan_match(record(ada, "p", 1, 2, at=NOW), [floor, plain], None, relevance=0.2)
    assert both is not None and both.digest and len(both.alerts) == 1  # the plain one pings


async def test_low_relevance_alerts_wait_for_the_digest(store: Store) -> None:
    await store_corpus(store, NOW)
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    sub = await store.add_subscription(
        ada.owner, "x", "x", INSTANT, NOW, limit=5, min_relevance=0.9
    )
    assert sub.min_relevance == 0.9 and sub.digest_for_held
    await store.rate(ada.id, dict.fromkeys(DIFFUSION[:3], Rating.LIKE), NOW)
    papers = [DIFFUSION[3], REASONING[4]]
    planned = await plan_matches(store, [record(ada.owner, k, sub.id, at=NOW) for k in papers])
    by_key = {p.record.paper_key: p for p in planned}
    assert by_key[DIFFUSION[3]].alerts and not by_key[DIFFUSION[3]].digest
    assert not by_key[REASONING[4]].alerts and by_key[REASONING[4]].digest
    await store.record_matches(planned, NOW)
    preview = await DigestPlanner(store, FrozenClock()).preview(ada, NOW)
    assert preview is not None
    assert [i.paper.key for s in preview.sections for i in s.items] == [REASONING[4]]
