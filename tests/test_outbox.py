"""The dispatcher over a real SQLite store, with recording notifiers scripted to fail."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.accounts.addresses import confirm_email
from bot.delivery.digests import DigestPlanner
from bot.delivery.dispatcher import DEFAULT_CONCURRENCY, DeliveryOutcome, Dispatcher
from bot.delivery.notifier import AlertMessage, Channel, ConfirmationMessage, DigestMessage
from bot.delivery.planning import record_matches
from bot.delivery.retries import RetryPolicy
from bot.errors import ChannelDownError, PermanentDeliveryError, TransientDeliveryError
from bot.models import DeliveryMode, Owner, User
from bot.store.protocols import DEFAULT_LEASE, Delivery, DeliveryKind, DeliveryState, Store
from bot.store.sqlite.store import open_sqlite_store
from tests.support_outbox import (
    DISCORD,
    INSTANT,
    LINKS,
    NOW,
    SIGNER,
    FrozenClock,
    RecordingNotifier,
    add_papers,
    record,
    tick_made,
    verified_user,
)

WORKER = Path(__file__).with_name("outbox_worker.py")
LEASE = timedelta(seconds=1)  # tests/outbox_worker.py's


def dispatcher(
    store: Store, *notifiers: RecordingNotifier, clock: FrozenClock | None = None, **options: Any
) -> Dispatcher:
    channels = {n.channel: n for n in notifiers}
    return Dispatcher(store, channels, LINKS, clock or FrozenClock(), random.Random(7), **options)


async def subscribed(store: Store, modes: frozenset[DeliveryMode], *keys: str) -> User:
    """A confirmed user (Discord id 500) whose one subscription matched ``keys``."""
    user = await verified_user(store, discord_id="500")
    sub = await store.add_subscription(user.owner, "Graphs", "graph", modes, NOW, limit=5)
    await add_papers(store, *keys)
    await record_matches(store, [record(user.owner, k, sub.id) for k in keys], NOW)
    return user


async def states(store: Store, owner: Owner, channel: Channel) -> list[tuple[str, str | None]]:
    rows = await store.list_deliveries(owner)
    return [(d.state, d.last_error) for d in rows if d.channel is channel and d.kind == "alert"]


async def test_one_message_per_recipient_with_every_paper(store: Store) -> None:
    user = await subscribed(store, INSTANT, "p1", "p2", "p3")
    email = RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(store, email).run_once()
    [message] = [m for m in email.sent if isinstance(m, AlertMessage)]
    assert sorted(item.paper.key for item in message.items) == ["p1", "p2", "p3"]
    assert message.recipient.address == "ada@example.org"
    assert message.links.unsubscribe_all is not None
    assert message.links.unsubscribe_all.startswith("https://bell.example.org/unsubscribe/")
    [matched] = message.items[0].subscriptions
    assert (matched.query, matched.words) == ("graph", ("graph",))
    assert matched.unsubscribe_url is not None
    assert report.count(DeliveryOutcome.SENT, Channel.EMAIL) == 3
    assert await states(store, user.owner, Channel.EMAIL) == [("sent", None)] * 3


async def test_channel_posts_go_to_the_channel(store: Store) -> None:
    channel = Owner.channel("4242")
    sub = await store.add_subscription(channel, "g", "g", DISCORD, NOW, limit=5)
    await add_papers(store, "p1")
    await record_matches(store, [record(channel, "p1", sub.id)], NOW)
    discord = RecordingNotifier(Channel.DISCORD)
    await dispatcher(store, discord).run_once()
    [message] = discord.sent
    assert isinstance(message, AlertMessage)
    assert (message.recipient.kind, message.recipient.owner_id, message.recipient.address) == (
        "channel",
        4242,
        "4242",
    )
    assert message.key == "alert:discord:channel:4242:p1"


async def test_transient_failures_back_off_then_fail(store: Store) -> None:
    user = await subscribed(store, INSTANT, "p1")
    clock = FrozenClock()
    email = RecordingNotifier(Channel.EMAIL, fail=lambda m: TransientDeliveryError("421 busy"))
    outbox = dispatcher(store, email, clock=clock, max_attempts=3)
    for attempt, base in ((1, 60), (2, 120)):
        report = await outbox.run_once()
        assert report.count(DeliveryOutcome.RETRIED) == 1
        [row] = [d for d in await store.list_deliveries(user.owner) if d.kind == "alert"]
        assert (row.state, row.attempts, row.last_error) == ("pending", attempt, "421 busy")
        wait = row.next_attempt_at - clock.now
        assert timedelta(seconds=base * 0.9) <= wait <= timedelta(seconds=base * 1.1)
        assert (await outbox.run_once()).counts == {}  # not due yet
        clock.now = row.next_attempt_at
    report = await outbox.run_once()
    assert report.count(DeliveryOutcome.FAILED) == 1
    assert await states(store, user.owner, Channel.EMAIL) == [
        ("failed", "gave up after 3 attempts: 421 busy")
    ]


def test_backoff_is_capped_and_jittered() -> None:
    outbox = Dispatcher(None, {}, LINKS, FrozenClock(), random.Random(3))  # type: ignore[arg-type]
    delays = [outbox.backoff(n) for n in range(1, 40)]
    assert all(
        timedelta(hours=5, minutes=24) <= d <= timedelta(hours=6, minutes=36) for d in delays[10:]
    )
    assert len(set(delays)) == len(delays)  # jitter spreads retries of many recipients


@pytest.mark.parametrize(
    "bad", [{"jitter": 1.0}, {"jitter": -0.1}, {"max_attempts": 0}, {"base_delay": timedelta(0)}]
)
def test_a_retry_policy_refuses_settings_that_cannot_work(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="need 0 <= jitter < 1, max_attempts >= 1"):
        RetryPolicy(random.Random(1), **bad)


def test_a_retried_message_goes_again_as_one() -> None:
    policy = RetryPolicy(random.Random(1), max_attempts=3, jitter=0.0)

    def row(row_id: int, attempts: int) -> Delivery:
        return Delivery(
            row_id, f"k{row_id}", Owner.user(1), Channel.EMAIL, DeliveryKind.ALERT,
            DeliveryState.SENDING, attempts, NOW, NOW, paper_key=f"p{row_id}",
        )  # fmt: skip

    retry = policy.retry([row(1, 3), row(2, 2), row(3, 1)], NOW)
    assert (retry.spent, retry.attempts) == ([1], 2)  # row 1 used up its own attempts
    assert retry.again == {2: NOW + timedelta(minutes=2), 3: NOW + timedelta(minutes=2)}
    assert policy.retry([row(1, 3)], NOW).again == {}


async def test_permanent_failure_is_kept(store: Store) -> None:
    user = await subscribed(store, INSTANT, "p1")
    error = PermanentDeliveryError("552 message too large")
    email = RecordingNotifier(Channel.EMAIL, script=[error])
    report = await dispatcher(store, email).run_once()
    assert report.count(DeliveryOutcome.FAILED, Channel.EMAIL) == 1
    assert await states(store, user.owner, Channel.EMAIL) == [("failed", "552 message too large")]
    fresh = await store.get_user(user.id)
    assert fresh is not None
    assert fresh.email_strikes == 0  # the message, not the address, was the problem


async def test_three_unreachable_failures_suppress_the_address(store: Store) -> None:
    user = await subscribed(store, INSTANT, "p1")
    bounce = PermanentDeliveryError("550 no such user", recipient_unreachable=True)
    email = RecordingNotifier(Channel.EMAIL, fail=lambda m: bounce)
    outbox = dispatcher(store, email)
    [sub] = await store.list_subscriptions(user.owner)
    for n in range(2, 5):
        await outbox.run_once()
        await add_papers(store, f"p{n}")
        await record_matches(store, [record(user.owner, f"p{n}", sub.id)], NOW)
    await outbox.run_once()
    fresh = await store.get_user(user.id)
    assert fresh is not None
    assert (fresh.email_strikes, fresh.email_suppressed) == (3, True)
    why = "3 deliveries failed permanently, the last: 550 no such user"
    assert await states(store, user.owner, Channel.EMAIL) == [
        *[("failed", "550 no such user")] * 3,
        ("suppressed", f"email suppressed: {why}"),
    ]
    assert email.calls == 3


async def test_unreachable_discord_user_falls_back_to_email(store: Store) -> None:
    user = await subscribed(store, DISCORD, "p1", "p2")
    blocked = PermanentDeliveryError("50007 cannot DM", recipient_unreachable=True)
    discord = RecordingNotifier(Channel.DISCORD, script=[blocked])
    email = RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(store, discord, email).run_once()
    assert report.count(DeliveryOutcome.FAILED, Channel.DISCORD) == 2
    [message] = [m for m in email.sent if isinstance(m, AlertMessage)]
    assert sorted(i.paper.key for i in message.items) == ["p1", "p2"]
    fresh = await store.get_user(user.id)
    assert fresh is not None
    assert fresh.discord_unreachable and fresh.discord_notice_pending
    # Later matches go straight to email while the user is unreachable.
    [sub] = await store.list_subscriptions(user.owner)
    await add_papers(store, "p3")
    await record_matches(store, [record(user.owner, "p3", sub.id)], NOW)
    await dispatcher(store, discord, email).run_once()
    assert discord.calls == 1
    assert [m.items[0].paper.key for m in email.sent if isinstance(m, AlertMessage)][-1] == "p3"


async def test_pending_discord_alert_of_unreachable_user_moves_to_email(store: Store) -> None:
    user = await subscribed(store, DISCORD, "p1")
    await store.update_user(user.id, NOW, discord_unreachable=True)
    discord, email = RecordingNotifier(Channel.DISCORD), RecordingNotifier(Channel.EMAIL)
    await dispatcher(store, discord, email).run_once()
    assert discord.calls == 0
    assert await states(store, user.owner, Channel.DISCORD) == [
        ("suppressed", "Discord user unreachable; sent by email instead")
    ]
    assert await states(store, user.owner, Channel.EMAIL) == [("sent", None)]


async def test_channel_down_loses_nothing(store: Store) -> None:
    both = frozenset({DeliveryMode.DISCORD, DeliveryMode.EMAIL_INSTANT})
    user = await subscribed(store, both, "p1", "p2")
    email = RecordingNotifier(Channel.EMAIL, script=[ChannelDownError("535 login refused")])
    discord = RecordingNotifier(Channel.DISCORD)
    report = await dispatcher(store, email, discord).run_once()
    assert report.down == {Channel.EMAIL: "535 login refused"}
    assert email.calls == 1  # the channel sat out the rest of the run
    assert report.count(DeliveryOutcome.SENT, Channel.DISCORD) == 2
    assert {d.attempts for d in await store.list_deliveries(user.owner, DeliveryState.PENDING)} == {
        0
    }
    report = await dispatcher(store, email, discord).run_once()
    assert report.count(DeliveryOutcome.SENT, Channel.EMAIL) == 2
    assert await states(store, user.owner, Channel.EMAIL) == [("sent", None)] * 2


async def test_stale_sending_rows_are_sent_once_their_lease_has_passed(
    store: Store,
) -> None:
    user = await subscribed(store, INSTANT, "p1", "p2")
    assert await store.claim_due(NOW)  # a dispatcher claimed them, then died
    email = RecordingNotifier(Channel.EMAIL)
    clock = FrozenClock()
    assert (await dispatcher(store, email, clock=clock).run_once()).count(DeliveryOutcome.SENT) == 0
    clock.advance(DEFAULT_LEASE)
    await dispatcher(store, email, clock=clock).run_once()
    assert await states(store, user.owner, Channel.EMAIL) == [("sent", None)] * 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"paused": True}, "the user paused notifications"),
        ({"unverify": True}, "email address not confirmed"),
        ({"stop_email": True}, "subscription no longer sends email alerts"),
        ({"remove": True}, "subscription removed"),
    ],
)
async def test_suppressed_with_the_reason(
    store: Store, change: dict[str, bool], reason: str
) -> None:
    user = await subscribed(store, INSTANT, "p1")
    [sub] = await store.list_subscriptions(user.owner)
    if "paused" in change:
        await store.update_user(user.id, NOW, paused=True)
    if "unverify" in change:
        await store.set_email(user.id, "new@example.org", NOW)
    if "stop_email" in change:
        await store.set_subscription_delivery(sub.id, user.owner, DISCORD, NOW)
    if "remove" in change:
        await store.remove_subscription(sub.id, user.owner, NOW)
    email = RecordingNotifier(Channel.EMAIL)
    await dispatcher(store, email).run_once()
    assert await states(store, user.owner, Channel.EMAIL) == [("suppressed", reason)]
    assert not any(isinstance(m, AlertMessage) for m in email.sent)


async def test_confirmation_mail_carries_a_working_link_and_code(store: Store) -> None:
    user = await store.get_or_create_user(discord_id="1", now=NOW)
    await store.set_email(user.id, "ada@example.org", NOW)
    email = RecordingNotifier(Channel.EMAIL)
    await dispatcher(store, email).run_once()
    [message] = email.sent
    assert isinstance(message, ConfirmationMessage)
    assert message.address == "ada@example.org"
    assert message.code == LINKS.confirm_code(user.id, "ada@example.org", NOW)
    token = message.confirm_url.rpartition("/")[2]
    confirmed = await confirm_email(store, SIGNER, token, NOW + timedelta(hours=1))
    assert confirmed.email_verified


async def test_confirmation_for_a_changed_address_is_not_sent(store: Store) -> None:
    user = await store.get_or_create_user(discord_id="1", now=NOW)
    await store.set_email(user.id, "old@example.org", NOW)
    await store.set_email(user.id, "new@example.org", NOW + timedelta(seconds=1))
    email = RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(store, email).run_once(NOW + timedelta(seconds=1))
    assert [m.address for m in email.sent if isinstance(m, ConfirmationMessage)] == [
        "new@example.org"
    ]
    assert report.count(DeliveryOutcome.SUPPRESSED) == 1


async def test_a_bug_in_a_notifier_is_retried_not_fatal(store: Store) -> None:
    user = await subscribed(store, INSTANT, "p1")
    email = RecordingNotifier(Channel.EMAIL, script=[KeyError("template")])
    report = await dispatcher(store, email).run_once()
    assert report.count(DeliveryOutcome.RETRIED) == 1
    [(state, error)] = await states(store, user.owner, Channel.EMAIL)
    assert (state, error) == ("pending", "internal error (KeyError: 'template')")


# --- a real crash -----------------------------------------------------------------------------


async def _crash_fixture(path: Path, recipients: int) -> list[str]:
    store = await open_sqlite_store(path)
    try:
        await add_papers(store, "p1")
        keys = []
        for n in range(recipients):
            owner = Owner.channel(str(1000 + n))
            sub = await store.add_subscription(owner, "g", "g", DISCORD, NOW, limit=5)
            await record_matches(store, [record(owner, "p1", sub.id)], NOW)
            keys.append(f"alert:discord:{owner}:p1")
        return keys
    finally:
        await store.close()


def _worker(db: Path, received: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent.parent)}
    command = [sys.executable, str(WORKER), str(db), str(received), "0.02"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_sigkill_mid_delivery_then_restart_delivers_everything(tmp_path: Path) -> None:
    db, received = tmp_path / "crash.db", tmp_path / "received.txt"
    keys = asyncio.run(_crash_fixture(db, 30))
    worker = _worker(db, received)
    deadline = time.monotonic() + 30
    while len(_lines(received)) < 5 and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    delivered_before = len(_lines(received))
    assert 5 <= delivered_before < 30
    time.sleep(LEASE.total_seconds() + 0.5)  # no startup requeue: the lease expires
    assert _worker(db, received).wait(timeout=60) == 0
    lines = _lines(received)
    assert set(lines) == set(keys)
    # At most the messages in flight and the finished ones of a wave not yet written.
    assert len(lines) - len(set(lines)) <= 2 * DEFAULT_CONCURRENCY
    assert asyncio.run(_all_sent(db)) == len(keys)


async def _all_sent(path: Path) -> int:
    store = await open_sqlite_store(path)
    try:
        return len(await store.list_deliveries(state=DeliveryState.SENT))
    finally:
        await store.close()


async def test_each_row_keeps_its_own_attempt_count(store: Store) -> None:
    user = await subscribed(store, INSTANT, "old")
    clock = FrozenClock()
    email = RecordingNotifier(Channel.EMAIL, fail=lambda m: TransientDeliveryError("421"))
    outbox = dispatcher(store, email, clock=clock, max_attempts=2)
    await outbox.run_once()
    [old] = [d for d in await store.list_deliveries(user.owner) if d.kind == "alert"]
    clock.now = old.next_attempt_at
    [sub] = await store.list_subscriptions(user.owner)
    await add_papers(store, "new")
    await record_matches(store, [record(user.owner, "new", sub.id)], clock.now)
    report = await outbox.run_once()
    assert email.calls == 2  # one message carried both rows
    assert (report.count(DeliveryOutcome.FAILED), report.count(DeliveryOutcome.RETRIED)) == (1, 1)
    rows = {d.paper_key: d for d in await store.list_deliveries(user.owner) if d.kind == "alert"}
    assert (rows["old"].state, rows["old"].last_error) == (
        "failed",
        "gave up after 2 attempts: 421",
    )
    assert (rows["new"].state, rows["new"].attempts) == ("pending", 1)


class AlertsOnly:
    """A channel that cannot send confirmation mails."""

    channel = Channel.EMAIL

    async def send_alerts(self, message: AlertMessage) -> None:
        raise AssertionError("not expected")

    async def send_digest(self, message: DigestMessage) -> None:
        raise AssertionError("not expected")

    async def close(self) -> None:
        return None


async def test_a_channel_without_confirmations_fails_them_clearly(store: Store) -> None:
    user = await store.get_or_create_user(discord_id="1", now=NOW)
    await store.set_email(user.id, "ada@example.org", NOW)
    outbox = Dispatcher(store, {Channel.EMAIL: AlertsOnly()}, LINKS, FrozenClock(), random.Random())
    report = await outbox.run_once()
    assert report.count(DeliveryOutcome.FAILED) == 1
    [row] = await store.list_deliveries(user.owner)
    assert row.last_error == "the email channel cannot send confirmations"


async def test_a_digest_goes_out_as_one_message(store: Store) -> None:
    user = await subscribed(store, frozenset({DeliveryMode.EMAIL_DIGEST}), "p1", "p2")
    clock = FrozenClock(NOW + timedelta(days=1))
    planner = DigestPlanner(store, clock)
    [digest] = await tick_made(planner, store, clock())
    email = RecordingNotifier(Channel.EMAIL)
    report = await dispatcher(store, email, clock=clock, digests=planner).run_once()
    [message] = [m for m in email.sent if isinstance(m, DigestMessage)]
    assert message.key == digest.key
    assert sorted(i.paper.key for s in message.sections for i in s.items) == ["p1", "p2"]
    assert report.count(DeliveryOutcome.SENT) == 1
    sent = await store.get_delivery(digest.key)
    assert sent is not None
    assert sent.state is DeliveryState.SENT
    assert user.id == message.recipient.owner_id
