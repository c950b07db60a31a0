"""What learned relevance costs the dispatcher, counted on the real SQLite store: a reader
with nothing to learn from costs one small read per message (their ratings) and never the
vectorizer's state; a reader with 👍 gets the vectorizer loaded once per fit and their
model trained once per change, not per message."""

from __future__ import annotations

import inspect
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.delivery.digests import DigestPlanner
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.notifier import AlertMessage, Channel
from bot.delivery.planning import record_matches
from bot.models import User
from bot.store.protocols import Rating, Store
from tests.support_outbox import (
    DIGEST,
    INSTANT,
    LINKS,
    NOW,
    FrozenClock,
    RecordingNotifier,
    record,
    verified_user,
)
from tests.support_relevance import by_title, dated_corpus, store_corpus

DIFFUSION = by_title("diffusion")
REASONING = by_title("reasoning")
# Every read learned relevance can make; none of them is needed without something to learn.
RELEVANCE_READS = ("vectorizer_state", "vectorizer_info", "get_vectors", "recent_vectors")


class CountingStore:
    """The real store, each async method call counted by name (a thin wrapper, no fake)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not inspect.iscoroutinefunction(found):
            return found
        return self._counted(name, found)

    def _counted(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted


async def alerts_for(store: Store, user: User, keys: list[str]) -> None:
    """An instant alert waiting for ``user`` for each paper of ``keys``."""
    subs = await store.list_subscriptions(user.owner)
    if not subs:
        subs = [await store.add_subscription(user.owner, "x", "x", INSTANT, NOW, limit=5)]
    sub = subs[0]
    for i, key in enumerate(keys):
        at = NOW + timedelta(minutes=i)
        await record_matches(store, [record(user.owner, key, sub.id, at=at)], at)


async def dispatch(counting: CountingStore, clock: FrozenClock) -> list[AlertMessage]:
    email = RecordingNotifier(Channel.EMAIL)
    store: Any = counting  # duck-typed: every Store method passes through
    await Dispatcher(store, {Channel.EMAIL: email}, LINKS, clock, random.Random(1)).run_once()
    return [m for m in email.sent if isinstance(m, AlertMessage)]


async def test_alerts_to_a_reader_without_feedback_read_no_vectors(store: Store) -> None:
    await store_corpus(store, NOW)
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    await alerts_for(store, ada, REASONING[:3])
    counting = CountingStore(store)
    sent = await dispatch(counting, FrozenClock(NOW + timedelta(minutes=5)))
    assert len(sent) >= 1 and sum(len(m.items) for m in sent) == 3
    assert all(counting.calls[name] == 0 for name in RELEVANCE_READS), counting.calls
    # The ratings of the claim's readers are read once, with the claim, not per message.
    assert counting.calls["list_feedback"] == 0 and counting.calls["feedback_of"] >= 1
    assert counting.calls["list_subscriptions"] == 0  # the claim's reads serve the ranking


async def test_a_digest_for_a_reader_without_feedback_reads_no_vectors(store: Store) -> None:
    await store_corpus(store, NOW - timedelta(days=1))
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    sub = await store.add_subscription(ada.owner, "x", "x", DIGEST, NOW, limit=5)
    await record_matches(store, [record(ada.owner, k, sub.id, at=NOW) for k in REASONING[:4]], NOW)
    counting = CountingStore(store)
    planner = DigestPlanner(counting, FrozenClock())  # type: ignore[arg-type]
    preview = await planner.preview(ada, NOW)
    assert preview is not None and sum(len(s.items) for s in preview.sections) == 4
    assert all(counting.calls[name] == 0 for name in RELEVANCE_READS), counting.calls
    assert counting.calls["list_feedback"] == 1


async def test_a_reader_with_feedback_loads_and_trains_once_per_change(store: Store) -> None:
    await store_corpus(store, NOW)
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    await store.rate(ada.id, dict.fromkeys(DIFFUSION[:2], Rating.LIKE), NOW)
    counting = CountingStore(store)
    clock = FrozenClock(NOW + timedelta(minutes=5))

    async def one_message(key: str) -> AlertMessage:
        await alerts_for(store, ada, [key])
        clock.advance(timedelta(minutes=5))
        [message] = await dispatch(counting, clock)
        assert message.items[0].because  # ranked, saying why
        return message

    for key in (DIFFUSION[2], REASONING[0], DIFFUSION[3]):
        await one_message(key)
    assert counting.calls["vectorizer_info"] == 3
    assert counting.calls["list_feedback"] == 0 and counting.calls["feedback_of"] >= 3
    assert counting.calls["vectorizer_state"] == 1  # the state blob once, then cached
    # Trained once: the background (2,000 vectors) read once; later messages only read
    # the newest paper's key to see that nothing changed.
    assert counting.calls["recent_vectors"] == 1 + 3

    # A new 👍 trains again (the vectorizer stays cached).
    await store.rate(ada.id, {REASONING[2]: Rating.LIKE}, NOW)
    await one_message(REASONING[3])
    assert counting.calls["recent_vectors"] == 1 + 3 + 2
    assert counting.calls["vectorizer_state"] == 1

    # A refit elsewhere is noticed by its version: loaded once more, then cached again.
    state = await store.vectorizer_state()
    assert state is not None
    vectors = await store.get_vectors([p.key for p in dated_corpus(NOW)])
    await store.replace_vectorizer(replace(state, version=state.version + 1), vectors)
    for key in (DIFFUSION[4], REASONING[1]):
        await one_message(key)
    assert counting.calls["vectorizer_state"] == 2
    assert counting.calls["recent_vectors"] == 1 + 3 + 2 + 3


async def test_feedback_links_are_signed_only_for_the_papers_shown_in_full(store: Store) -> None:
    await store_corpus(store, NOW)
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    await alerts_for(store, ada, REASONING[:5])
    email = RecordingNotifier(Channel.EMAIL)
    links = replace(LINKS, feedback_papers=2)  # PAPERBELL_EMAIL__ALERT_FULL_PAPERS
    clock = FrozenClock(NOW + timedelta(minutes=6))
    await Dispatcher(store, {Channel.EMAIL: email}, links, clock, random.Random(1)).run_once()
    [message] = [m for m in email.sent if isinstance(m, AlertMessage)]
    assert [i.feedback is not None for i in message.items] == [True, True, False, False, False]
    first = message.items[0]
    assert first.feedback == links.feedback_links(
        ada.id, first.paper.key, first.subscriptions[0].sub_id
    )
