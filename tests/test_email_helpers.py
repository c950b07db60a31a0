"""Email helper processes (``PAPERBELL_EMAIL__PROCESSES``): real processes, a real store
file and a loopback SMTP server; no daemon, so what arrives was sent by a helper."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.daemon.helpers import EmailHelpers
from bot.delivery.planning import record_matches
from bot.models import DeliveryMode
from bot.settings import Settings, SmtpSettings, WebSettings
from bot.store.protocols import DeliveryKind, DeliveryState
from bot.store.sqlite.store import open_sqlite_store
from tests.smtp_server import SmtpTestServer
from tests.support_daemon import eventually, prepare_users
from tests.support_daemon import process_running as alive
from tests.support_outbox import NOW, add_papers, record

INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
PAPERS = ("p1", "p2")


def settings(data_dir: Path, smtp: SmtpTestServer) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        smtp=SmtpSettings(
            host="127.0.0.1",
            port=smtp.port,
            security="none",
            ehlo_name="test.example.org",
            from_address="bell@example.org",
        ),
        web=WebSettings(enabled=False),
        public_url="https://bell.example.org",
        shutdown_grace=5,
    )


async def queue_alerts(config: Settings, addresses: Sequence[str]) -> None:
    """Confirmed readers, each with one alert of two papers waiting in the outbox."""
    users = await prepare_users(config, addresses, "graph", INSTANT)
    store = await open_sqlite_store(config.database_path)
    try:
        await add_papers(store, *PAPERS)
        subs = {s.owner: s.id for s in await store.list_subscriptions()}
        planned = [record(u.owner, key, subs[u.owner]) for u in users for key in PAPERS]
        await record_matches(store, planned, NOW)
    finally:
        await store.close()


async def alert_states(config: Settings) -> list[DeliveryState]:
    store = await open_sqlite_store(config.database_path)
    try:
        rows = await store.list_deliveries()
    finally:
        await store.close()
    return sorted(d.state for d in rows if d.kind is DeliveryKind.ALERT)


@asynccontextmanager
async def running(config: Settings, count: int) -> AsyncIterator[EmailHelpers]:
    helpers = EmailHelpers(config, count)
    helpers.start()
    try:
        yield helpers
    finally:
        await helpers.stop(config.shutdown_grace)


async def test_helpers_send_the_queued_mail_each_message_once(tmp_path: Path) -> None:
    async with SmtpTestServer() as smtp:
        config = settings(tmp_path / "data", smtp)
        readers = [f"r{n}@example.org" for n in range(12)]
        await queue_alerts(config, readers)
        async with running(config, 2) as helpers:
            assert len(helpers.pids) == 2
            helpers.wake()
            await eventually(lambda: len(smtp.received) == len(readers), "twelve alerts")
            await asyncio.sleep(0.3)  # nothing more comes
        assert sorted(a for got in smtp.received for a in got.rcpt_tos) == sorted(readers)
        assert await alert_states(config) == [DeliveryState.SENT] * 2 * len(readers)
        assert all("2 new papers" in str(got.message["Subject"]) for got in smtp.received)


async def test_a_helper_waits_to_be_woken_and_stops_when_told(tmp_path: Path) -> None:
    async with SmtpTestServer() as smtp:
        config = settings(tmp_path / "data", smtp)
        await queue_alerts(config, ["ada@example.org"])
        helpers = EmailHelpers(config, 1)
        helpers.start()
        [pid] = helpers.pids
        await asyncio.sleep(2)
        assert smtp.received == []  # started, but nobody said there was mail
        await helpers.stop(config.shutdown_grace)
        assert not alive(pid) and helpers.pids == []
        assert await alert_states(config) == [DeliveryState.PENDING] * 2


async def test_a_helper_outlives_sigterm_but_not_its_daemon(tmp_path: Path) -> None:
    async with SmtpTestServer() as smtp:
        config = settings(tmp_path / "data", smtp)
        await queue_alerts(config, [])
        helpers = EmailHelpers(config, 1)
        helpers.start()
        [pid] = helpers.pids
        await asyncio.sleep(1.5)  # past the imports, into its loop
        os.kill(pid, signal.SIGTERM)  # systemd signals the whole group: the daemon stops it
        await asyncio.sleep(0.5)
        assert alive(pid)
        for _, pipe in helpers._running:
            pipe.close()  # as when the daemon dies: the helper reads end-of-file
        await eventually(lambda: not alive(pid), "the orphaned helper to exit")
        [(process, _)] = helpers._running
        await asyncio.get_running_loop().run_in_executor(None, process.join, 5)
        assert process.exitcode == 0


async def test_a_helper_that_died_is_started_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SmtpTestServer() as smtp:
        config = settings(tmp_path / "data", smtp)
        await queue_alerts(config, ["ada@example.org"])
        async with running(config, 1) as helpers:
            [first] = helpers.pids
            os.kill(first, signal.SIGKILL)
            await eventually(lambda: not alive(first), "the helper to die")
            with caplog.at_level(logging.INFO, logger="paperbell.helpers"):
                helpers.wake()  # the new one is woken too: it sends what was queued
            [second] = helpers.pids
            assert second != first and alive(second)
            assert "paperbell-email-1 exited (code -9); starting another" in caplog.text
            assert "1 email helper process(es) started" in caplog.text
            await eventually(lambda: len(smtp.received) == 1, "the alert")


async def test_a_helper_that_keeps_dying_is_started_again_ever_more_slowly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A helper that cannot open its store (its data directory is a file) exits at once;
    # spawning another at every dispatch tick would cost a second of CPU each time.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    async with SmtpTestServer() as smtp:
        config = settings(blocker / "data", smtp)
    now = [0.0]
    helpers = EmailHelpers(config, 1, monotonic=lambda: now[0])

    async def next_death() -> None:
        [pid] = helpers.pids
        await eventually(lambda: not alive(pid), "the helper to exit")

    helpers.start()
    with caplog.at_level(logging.INFO, logger="paperbell.helpers"):
        await next_death()
        helpers.wake()  # the first quick death: started again at once
        assert "paperbell-email-1 exited (code 1); starting another\n" in caplog.text
        await next_death()
        helpers.wake()  # the second in a row: 5 s later
        assert "paperbell-email-2 exited (code 1); starting another in 5 s" in caplog.text
        assert helpers.pids == []
        now[0] = 4.9
        helpers.wake()
        assert helpers.pids == []
        now[0] = 5.0
        helpers.wake()
        await next_death()
        now[0] = 6.0
        helpers.wake()  # the third: 10 s
        assert "paperbell-email-3 exited (code 1); starting another in 10 s" in caplog.text
        now[0] = 16.0
        helpers.wake()
        await next_death()
        now[0] = 200.0  # this one had lived past STEADY: a fresh start, at once
        helpers.wake()
        assert "paperbell-email-4 exited (code 1); starting another\n" in caplog.text
        await next_death()
    await helpers.stop(0)
    assert "Traceback" not in caplog.text
