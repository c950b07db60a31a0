"""A channel that is down holds its mail; a retried message goes out as one message.

The dispatcher over a real SQLite store and the real SMTP notifier against a loopback
aiosmtpd server (``tests/smtp_server.py``), with a hand-moved clock.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage

import pytest

from bot.cli.ops import delivery_line
from bot.delivery.channel_status import ChannelState, ChannelStatus, waiting_reasons
from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher
from bot.delivery.notifier import AlertMessage, Channel
from bot.delivery.planning import record_matches
from bot.models import User
from bot.settings import EmailSettings
from bot.store.protocols import DEFAULT_LEASE, Delivery, DeliveryKind, DeliveryState, Store
from handlers.email.smtp import SmtpNotifier
from tests.smtp_server import Faults, SmtpTestServer
from tests.support_outbox import (
    INSTANT,
    LINKS,
    NOW,
    FrozenClock,
    RecordingNotifier,
    add_papers,
    record,
    verified_user,
)

PAPERS = ("p1", "p2", "p3", "p4", "p5")


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpTestServer]:
    async with SmtpTestServer() as server:
        yield server


async def five_paper_alert(store: Store) -> User:
    user = await verified_user(store)
    sub = await store.add_subscription(user.owner, "Graphs", "graph", INSTANT, NOW, limit=5)
    await add_papers(store, *PAPERS)
    await record_matches(store, [record(user.owner, k, sub.id) for k in PAPERS], NOW)
    return user


async def alerts(store: Store, user: User) -> list[Delivery]:
    rows = await store.list_deliveries(user.owner)
    return [d for d in rows if d.kind is DeliveryKind.ALERT]


def alert_mail(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if "new paper" in str(m["Subject"])]


async def test_two_temporary_failures_then_one_email_with_one_message_id(
    store: Store, smtp: SmtpTestServer
) -> None:
    user = await five_paper_alert(store)
    clock = FrozenClock()
    notifier = SmtpNotifier(smtp.settings(), EmailSettings())
    # Jitter on: each row used to draw its own delay and the message fell apart.
    outbox = Dispatcher(store, {Channel.EMAIL: notifier}, LINKS, clock, random.Random(3))
    try:
        smtp.faults = Faults(data="451 4.3.0 try again later")
        for _ in range(2):
            report = await outbox.run_once()
            assert report.count(DeliveryOutcome.RETRIED) == len(PAPERS)
            rows = await alerts(store, user)
            assert len({(d.next_attempt_at, d.attempts, d.state) for d in rows}) == 1
            clock.now = min(d.next_attempt_at for d in rows)
        smtp.faults = Faults()
        await outbox.run_once()
    finally:
        await notifier.close()
    [sent] = alert_mail([got.message for got in smtp.received])
    assert "5 new papers" in str(sent["Subject"])
    tries = alert_mail([got.message for got in smtp.refused])
    assert len(tries) == 2
    assert {str(m["Message-ID"]) for m in [*tries, sent]} == {str(sent["Message-ID"])}
    assert {d.state for d in await alerts(store, user)} == {DeliveryState.SENT}


async def test_an_unreachable_smtp_server_holds_mail_pending_until_it_is_back(
    store: Store,
) -> None:
    user = await five_paper_alert(store)
    async with SmtpTestServer() as gone:
        settings = gone.settings()
    clock = FrozenClock()
    status = ChannelStatus(clock, first_probe=timedelta(seconds=30))
    notifier = SmtpNotifier(settings, EmailSettings())
    outbox = Dispatcher(
        store, {Channel.EMAIL: notifier}, LINKS, clock, random.Random(3), status=status
    )
    try:
        assert (await outbox.run_once()).down  # refused: the channel waits
        assert (await outbox.run_once()).counts == {}  # no second try before the probe time
        for _ in range(12):  # far more tries than max_attempts (8) would allow
            clock.advance(timedelta(hours=1))
            report = await outbox.run_once()
            assert report.down and report.count(DeliveryOutcome.FAILED) == 0
        rows = await alerts(store, user)
        assert {(d.state, d.attempts) for d in rows} == {(DeliveryState.PENDING, 0)}
        health = status.not_up()[Channel.EMAIL]
        assert health.state is ChannelState.WAITING
        assert "cannot reach the SMTP server" in health.why
        why = waiting_reasons(status.snapshot())[Channel.EMAIL]
        assert why.startswith("waiting: email channel down since ")
        assert "waiting: email channel down" in delivery_line(rows[0], why)

        async with SmtpTestServer(port=settings.port) as back:
            clock.advance(timedelta(hours=1))
            report = await outbox.run_once()
            await notifier.close()
        assert report.count(DeliveryOutcome.SENT) == len(PAPERS)
        [sent] = alert_mail([got.message for got in back.received])
        assert "5 new papers" in str(sent["Subject"])
        assert Channel.EMAIL not in status.not_up()
    finally:
        await notifier.close()


async def test_rows_another_process_took_after_our_lease_ran_out_are_left_to_it(
    store: Store,
) -> None:
    for address in ("ada@example.org", "bob@example.org"):
        user = await verified_user(store, address)
        sub = await store.add_subscription(user.owner, "g", "graph", INSTANT, NOW, limit=5)
        await add_papers(store, f"paper-of-{address}")
        await record_matches(store, [record(user.owner, f"paper-of-{address}", sub.id)], NOW)
    clock = FrozenClock()
    taken: list[int] = []

    email = RecordingNotifier(Channel.EMAIL, concurrency=1)  # the second waits for the first

    async def slow_then_robbed() -> None:
        if taken or not any(isinstance(m, AlertMessage) for m in email.sent):
            return
        clock.advance(DEFAULT_LEASE * 2)  # this run is far slower than the lease, and
        # meanwhile another process claims what our lease no longer covers
        taken.extend(d.id for b in await store.claim_due(clock()) for d in b.deliveries)

    outbox = Dispatcher(
        store, {Channel.EMAIL: email}, LINKS, clock, random.Random(3), progress=slow_then_robbed
    )
    report = await outbox.run_once()
    sent = [m for m in email.sent if isinstance(m, AlertMessage)]
    assert len(sent) == 1  # the other alert was theirs to send
    assert report.count(DeliveryOutcome.SENT) == 1
    rows = await store.list_deliveries()
    [robbed] = [d for d in rows if d.id in taken and d.kind is DeliveryKind.ALERT]
    assert (robbed.state, robbed.attempts) == (DeliveryState.SENDING, 2)
