"""The dispatcher when the database fails it while recording outcomes, and who goes first.

A real SQLite store throughout; ``LockedStore`` wraps it and makes ``settle`` (the one
write that records what a wave of messages came to) raise SQLite's own "database is
locked" a given number of times.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import cast

import pytest

from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher
from bot.delivery.notifier import AlertMessage, Channel, ConfirmationMessage
from bot.delivery.outcomes import SETTLE_TRIES
from bot.delivery.planning import record_matches
from bot.models import Owner
from bot.store.protocols import DeliveryKind, DeliveryState, Store
from bot.store.sqlite.store import SqliteStore
from tests.support_outbox import (
    INSTANT,
    LINKS,
    NOW,
    FrozenClock,
    Message,
    RecordingNotifier,
    add_papers,
    record,
    verified_user,
)


class LockedStore:
    """The store, except that its next ``failures`` settles fail as a locked database."""

    def __init__(self, store: SqliteStore, failures: int) -> None:
        self._store = store
        self.failures = failures
        self.settles = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def settle(
        self, sent: Sequence[int], suppressed: Mapping[str, Sequence[int]], now: datetime
    ) -> None:
        self.settles += 1
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        await self._store.settle(sent, suppressed, now)


def dispatcher(store: Store | LockedStore, email: RecordingNotifier) -> Dispatcher:
    return Dispatcher(
        cast(Store, store), {Channel.EMAIL: email}, LINKS, FrozenClock(), random.Random(1)
    )


async def users_with_alerts(store: Store, users: int, papers: int) -> list[Owner]:
    """``users`` confirmed users, each matched by the same ``papers`` papers: then only
    users * papers alert rows are pending (their confirmations were dealt with)."""
    owners, keys = [], [f"p{n}" for n in range(papers)]
    await add_papers(store, *keys)
    for n in range(users):
        user = await verified_user(store, f"u{n}@example.org")
        await store.add_subscription(user.owner, "g", "graph", INSTANT, NOW, limit=5)
        owners.append(user.owner)
    await dispatcher(store, RecordingNotifier(Channel.EMAIL)).run_once(NOW)
    for sub in await store.list_subscriptions():
        await record_matches(store, [record(sub.owner, k, sub.id) for k in keys], NOW)
    return owners


async def alert_states(store: Store) -> set[tuple[DeliveryState, int]]:
    rows = await store.list_deliveries()
    return {(d.state, d.attempts) for d in rows if d.kind is DeliveryKind.ALERT}


async def sending(store: Store) -> list[int]:
    return [d.id for d in await store.list_deliveries(state=DeliveryState.SENDING)]


async def test_a_settle_that_fails_once_is_tried_again(sqlite_store: SqliteStore) -> None:
    await users_with_alerts(sqlite_store, 6, 3)
    locked, email = LockedStore(sqlite_store, failures=1), RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(locked, email).run_once()
    assert report.count(DeliveryOutcome.SENT) == 6 * 3
    assert await sending(sqlite_store) == []
    assert await alert_states(sqlite_store) == {(DeliveryState.SENT, 1)}
    assert len(email.sent) == 6  # each message once: the failed write was tried again
    assert locked.settles >= 2


async def test_a_settle_that_keeps_failing_gives_the_rows_back(
    sqlite_store: SqliteStore,
) -> None:
    owners = await users_with_alerts(sqlite_store, 6, 3)
    locked, email = LockedStore(sqlite_store, failures=10**6), RecordingNotifier(Channel.EMAIL)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await dispatcher(locked, email).run_once()
    assert locked.settles >= SETTLE_TRIES  # tried again, then gave up
    assert await sending(sqlite_store) == []  # nothing left to wait for its lease
    assert await alert_states(sqlite_store) == {(DeliveryState.PENDING, 0)}
    # The database is back: the next run sends everything (some messages a second time).
    again = RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(sqlite_store, again).run_once()
    assert report.count(DeliveryOutcome.SENT) == 6 * 3
    assert sorted(m.recipient.owner_id for m in again.sent) == sorted(int(o.id) for o in owners)
    assert await alert_states(sqlite_store) == {(DeliveryState.SENT, 1)}


class SlowNotifier(RecordingNotifier):
    """Each send takes a few milliseconds, so the messages in flight finish together."""

    async def _deliver(self, message: Message) -> None:
        await asyncio.sleep(0.005)
        await super()._deliver(message)


async def send_together(store: SqliteStore, failures: int) -> tuple[LockedStore, int]:
    """Twelve one-message readers sent four at a time, the first ``failures`` writes
    failing; the store as counted and how many messages went out."""
    await users_with_alerts(store, 12, 3)
    locked, email = LockedStore(store, failures=failures), SlowNotifier(Channel.EMAIL)
    report = await dispatcher(locked, email).run_once()
    assert report.count(DeliveryOutcome.SENT) == 12 * 3
    assert await sending(store) == []
    assert await alert_states(store) == {(DeliveryState.SENT, 1)}
    return locked, len(email.sent)


async def test_messages_that_finish_together_are_written_sent_together(
    sqlite_store: SqliteStore,
) -> None:
    counting, sent = await send_together(sqlite_store, failures=0)
    assert sent == 12
    # One transaction per group of messages that finished while a write was under way
    # (four in flight: the first writes alone, the next three together), not one each.
    assert 0 < counting.settles < sent


async def test_a_group_whose_write_fails_is_written_with_the_wave(
    sqlite_store: SqliteStore,
) -> None:
    locked, sent = await send_together(sqlite_store, failures=2)
    assert sent == 12  # each message once, though its first write failed
    assert locked.settles > 2


async def test_a_confirmation_jumps_a_backlog_of_alerts(store: Store) -> None:
    await users_with_alerts(store, 250, 20)
    backlog = await store.list_deliveries(state=DeliveryState.PENDING)
    assert len(backlog) == 5000
    assert {d.kind for d in backlog} == {DeliveryKind.ALERT}
    newcomer = await store.get_or_create_user(discord_id="new", now=NOW)
    await store.set_email(newcomer.id, "new@example.org", NOW)  # queued after the alerts
    email = RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(store, email).run_once(NOW)
    first, *rest = email.sent
    assert isinstance(first, ConfirmationMessage)
    assert first.address == "new@example.org"
    assert len(rest) == 250
    assert all(isinstance(m, AlertMessage) for m in rest)
    assert report.count(DeliveryOutcome.SENT) == 5001


class HangingNotifier(RecordingNotifier):
    """Sends the first message, then hangs on the second until ``go`` is set: where a
    process killed mid-run would be."""

    def __init__(self) -> None:
        super().__init__(Channel.EMAIL, concurrency=1)
        self.hanging = asyncio.Event()
        self.go = asyncio.Event()

    async def _deliver(self, message: Message) -> None:
        if self.sent:
            self.hanging.set()
            await self.go.wait()
        await super()._deliver(message)


async def test_a_sent_message_is_written_before_the_next_one_goes(store: Store) -> None:
    await users_with_alerts(store, 3, 1)
    email = HangingNotifier()
    run = asyncio.create_task(dispatcher(store, email).run_once())
    await email.hanging.wait()
    # Killed here, only the message in flight would go again: the first is already 'sent'.
    sent = await store.list_deliveries(state=DeliveryState.SENT)
    assert len([d for d in sent if d.kind is DeliveryKind.ALERT]) == 1
    email.go.set()
    report = await run
    assert report.count(DeliveryOutcome.SENT) == 3


class GatedNotifier(RecordingNotifier):
    """Holds the first message until ``go`` is set; notes each message as it starts."""

    def __init__(self) -> None:
        super().__init__(Channel.EMAIL, concurrency=2)
        self.started: list[int] = []
        self.two_started = asyncio.Event()
        self.go = asyncio.Event()

    async def _deliver(self, message: Message) -> None:
        assert isinstance(message, AlertMessage)
        self.started.append(message.recipient.owner_id or 0)
        if len(self.started) == 2:
            self.two_started.set()
        if len(self.started) == 1:
            await self.go.wait()
        await super()._deliver(message)


def one_reader_a_claim(store: Store | LockedStore, email: RecordingNotifier) -> Dispatcher:
    return Dispatcher(
        cast(Store, store), {Channel.EMAIL: email}, LINKS, FrozenClock(), random.Random(1),
        batch_limit=1,
    )  # fmt: skip


async def test_the_next_claims_messages_start_while_this_ones_last_is_in_flight(
    store: Store,
) -> None:
    """No pause at each claim's end for its slowest message: a free slot takes the next
    claim's first message at once."""
    await users_with_alerts(store, 2, 2)
    email = GatedNotifier()
    run = asyncio.create_task(one_reader_a_claim(store, email).run_once())
    await asyncio.wait_for(email.two_started.wait(), 10)
    held = email.started[0]  # the first message is still in flight
    assert all(isinstance(m, AlertMessage) and m.recipient.owner_id != held for m in email.sent)
    email.go.set()
    report = await run
    assert report.count(DeliveryOutcome.SENT) == 2 * 2
    assert await alert_states(store) == {(DeliveryState.SENT, 1)}


class FailingClaims:
    """The store, except that claims fail from the ``ok + 1``-th on."""

    def __init__(self, store: Store, ok: int) -> None:
        self._store, self.ok = store, ok

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def claim_due(self, *args: object, **kwargs: object) -> object:
        if self.ok <= 0:
            raise sqlite3.OperationalError("disk I/O error")
        self.ok -= 1
        return await self._store.claim_due(*args, **kwargs)  # type: ignore[arg-type]


async def test_a_failed_claim_gives_back_the_previous_claims_message_in_flight(
    store: Store,
) -> None:
    """The next claim fails while this one's message is still in flight: that message is
    cancelled and its rows go back to pending (none waits for its lease)."""
    await users_with_alerts(store, 2, 2)
    email = GatedNotifier()
    failing = FailingClaims(store, ok=1)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        await one_reader_a_claim(cast(Store, failing), email).run_once()
    assert len(email.started) == 1 and email.sent == []
    assert await sending(store) == []
    assert await alert_states(store) == {(DeliveryState.PENDING, 0)}
