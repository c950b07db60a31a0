"""The ``RelevanceStore`` contract: vectors, the vectorizer they share, ratings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import NotFoundError
from bot.store.protocols import Rating, Store, VectorizerState
from tests.support_outbox import DIGEST, NOW, add_papers, verified_user

STATE = VectorizerState(1, "tfidf", 3, NOW, b"fitted")


async def test_a_refit_replaces_every_vector_at_once(store: Store) -> None:
    await add_papers(store, "p1", "p2", "p3")
    assert await store.vectorizer_state() is None
    assert await store.vectorizer_info() is None
    assert await store.count_papers() == 3
    missing = await store.paper_texts(missing_vectors=True, limit=10)
    assert sorted(k for k, _, _ in missing) == ["p1", "p2", "p3"]
    await store.replace_vectorizer(STATE, {"p1": b"a", "p2": b"b", "gone": b"x"})
    assert await store.vectorizer_state() == STATE
    assert await store.vectorizer_info() == STATE.info  # the same, without the state
    assert await store.get_vectors(["p1", "p2", "p3", "gone"]) == {"p1": b"a", "p2": b"b"}
    assert [k for k, _, _ in await store.paper_texts(missing_vectors=True, limit=10)] == ["p3"]
    assert await store.save_vectors(1, {"p3": b"c"})
    assert not await store.save_vectors(7, {"p3": b"stale"})  # made with another vocabulary
    assert (await store.get_vectors(["p3"]))["p3"] == b"c"
    newer = VectorizerState(2, "tfidf", 3, NOW, b"refitted")
    await store.replace_vectorizer(newer, {"p1": b"A"})
    assert await store.vectorizer_info() == newer.info
    assert await store.get_vectors(["p1", "p2", "p3"]) == {"p1": b"A"}  # old ones dropped
    assert await store.recent_vectors(since=NOW - timedelta(days=400)) == {"p1": b"A"}


async def test_ratings_per_user_and_their_reset(store: Store) -> None:
    await add_papers(store, "p1", "p2")
    ada = await verified_user(store, "ada@example.org")
    bob = await verified_user(store, "bob@example.org")
    await store.rate(ada.id, {"p1": Rating.LIKE, "p2": Rating.DISLIKE}, NOW, {"p1": 3})
    with pytest.raises(NotFoundError, match="p9"):
        await store.rate(ada.id, {"p1": Rating.DISLIKE, "p9": Rating.LIKE}, NOW)
    got = {f.paper_key: (f.rating, f.sub_id) for f in await store.list_feedback(ada.id)}
    assert got == {"p1": (Rating.LIKE, 3), "p2": (Rating.DISLIKE, None)}  # nothing half-done
    assert await store.list_feedback(bob.id) == []
    # Many users' ratings in one read: each asked for, newest first, the same as one by one.
    many = await store.feedback_of([bob.id, ada.id, 999_999])
    assert many == {ada.id: await store.list_feedback(ada.id), bob.id: [], 999_999: []}
    assert await store.feedback_of([]) == {}
    assert await store.reset_feedback(bob.id) == 0
    assert await store.reset_feedback(ada.id) == 2
    assert await store.list_feedback(ada.id) == []


async def test_min_relevance_is_kept_and_changed(store: Store) -> None:
    ada = await verified_user(store, "ada@example.org")
    sub = await store.add_subscription(ada.owner, "x", "x", DIGEST, NOW, limit=5)
    assert sub.min_relevance is None
    changed = await store.set_min_relevance(sub.id, ada.owner, 0.8, NOW)
    assert changed.min_relevance == 0.8
    assert (await store.get_subscription(sub.id)) == changed
    cleared = await store.set_min_relevance(sub.id, None, None, NOW)
    assert cleared.min_relevance is None
    with pytest.raises(NotFoundError):
        await store.set_min_relevance(sub.id + 1, ada.owner, 0.5, NOW)
