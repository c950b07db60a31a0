"""The daemon while something is wrong around it: SMTP down, a second daemon, long work.

``paperbell run`` as a child process where it matters (see ``tests/test_daemon.py``, whose
harness this reuses), the daemon's ``Worker`` in process for the heartbeat.
"""

from __future__ import annotations

import random
import signal
from datetime import datetime, timedelta
from pathlib import Path

from bot.daemon.resources import open_resources
from bot.daemon.run import HEARTBEAT, Worker
from bot.delivery.channel_status import ChannelStatus
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.notifier import AlertMessage, Channel, DigestMessage
from bot.delivery.planning import record_matches
from bot.settings import load_settings
from bot.store.protocols import Store
from tests.smtp_server import SmtpTestServer
from tests.support_daemon import Child, eventually, prepare_users, run_paperbell
from tests.support_http import ScriptedServer
from tests.support_outbox import INSTANT, LINKS, FrozenClock, add_papers, record, verified_user
from tests.test_daemon import (
    ADA,
    FILE_FEED,
    MARGIN,
    QUERY,
    Harness,
    h,
    serve_feed,
)

__all__ = ["h"]


async def test_a_second_daemon_on_the_same_data_directory_exits_78(h: Harness) -> None:
    env = h.env(PAPERBELL_SOURCES=FILE_FEED, PAPERBELL_WEB__PORT="0")
    async with Child(h.root, env, "run") as first:
        await first.logged("paperbell running")
        second = await run_paperbell(h.root, env, "run")
        assert second.proc.returncode == 78
        [line] = second.stderr.splitlines()
        assert line.startswith("paperbell: configuration error: another paperbell run ")
        assert f"(pid {first.proc.pid})" in line and str(h.data_dir) in line
        first.send(signal.SIGTERM)
        assert await first.exit_code(within=20 + MARGIN) == 0
    async with Child(h.root, env, "run") as killed:
        await killed.logged("paperbell running")
        killed.send(signal.SIGKILL)
        await killed.exit_code(within=MARGIN)
    assert (h.data_dir / "paperbell.pid").exists()  # left behind, and harmless:
    async with Child(h.root, env, "run") as after:
        await after.logged("paperbell running")
        after.send(signal.SIGTERM)
        assert await after.exit_code(within=20 + MARGIN) == 0


async def test_smtp_down_then_up_holds_the_alert_then_sends_it(h: Harness) -> None:
    async with ScriptedServer() as feed:
        async with SmtpTestServer() as gone:
            pass  # its port now refuses connections
        serve_feed(feed)
        await prepare_users(h.settings(feed), [ADA], QUERY, INSTANT)
        env = h.loopback_env(feed, gone, grace=5)
        async with Child(h.root, env, "run") as daemon:
            await daemon.logged("email channel is down: cannot reach the SMTP server")
            outbox = await run_paperbell(h.root, env, "outbox")
            [alert] = [line for line in outbox.stdout.splitlines() if " alert " in line]
            assert " pending " in alert and "waiting: email channel down since " in alert
            async with SmtpTestServer(port=gone.port) as smtp:
                await eventually(lambda: len(smtp.received) == 1, "the alert, SMTP back")
            daemon.send(signal.SIGTERM)
            assert await daemon.exit_code(within=5 + MARGIN) == 0
        assert "email channel is back" in daemon.stderr
        assert await h.alert_states() == ["sent"]


class SlowNotifier:
    """Each message takes a minute of the test's clock; notes how old the heartbeat is."""

    channel = Channel.EMAIL
    concurrency = 1  # a minute each, one after the other: the clock is the test's

    def __init__(self, store: Store, clock: FrozenClock) -> None:
        self.store, self.clock = store, clock
        self.beat_ages: list[timedelta] = []

    async def send_alerts(self, message: AlertMessage) -> None:
        self.clock.advance(timedelta(minutes=1))
        beat = await self.store.get_meta(HEARTBEAT)
        assert beat is not None
        self.beat_ages.append(self.clock() - datetime.fromisoformat(beat))

    async def send_digest(self, message: DigestMessage) -> None:
        raise AssertionError("no digest here")

    async def close(self) -> None:
        return None


async def test_a_long_delivery_run_keeps_the_heartbeat_fresh(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    clock = FrozenClock()
    async with open_resources(settings, clock) as res:
        for n in range(6):  # six recipients: six messages, six minutes
            user = await verified_user(res.store, f"u{n}@example.org", now=clock())
            sub = await res.store.add_subscription(user.owner, "g", "g", INSTANT, clock(), limit=5)
            await add_papers(res.store, f"p{n}")
            await record_matches(res.store, [record(user.owner, f"p{n}", sub.id)], clock())
        slow = SlowNotifier(res.store, clock)
        status = ChannelStatus(clock)
        dispatcher = Dispatcher(res.store, {Channel.EMAIL: slow}, LINKS, clock, random.Random(1))
        worker = Worker(res, dispatcher, clock, status)
        dispatcher.progress = worker.beat
        await worker.dispatch()
    assert len(slow.beat_ages) == 6
    assert max(slow.beat_ages) <= timedelta(minutes=2), slow.beat_ages
