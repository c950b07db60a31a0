"""``paperbell run`` as a child process, end to end: a loopback feed (aiohttp) and a
loopback SMTP server (aiosmtpd) run in the test's event loop; the database is a file in
tmp_path, filled beforehand the way a person would have, and read afterwards.

Every wait is bounded (``eventually``, ``exit_code(within=...)``): a bound only turns a
hang into a failure, nothing is timed. How long shutdown may take is checked the same
way: ``exit_code`` raises if the child is still running after the grace plus a margin.
"""

from __future__ import annotations

import json
import signal
import socket
import zoneinfo
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.daemon.state import HEARTBEAT
from bot.models import DeliveryMode, SourceKind, User
from bot.settings import Settings, SourceConfig
from bot.store.protocols import DeliveryKind
from bot.store.sqlite.store import SqliteStore, open_sqlite_store
from tests.smtp_server import Received, SmtpTestServer
from tests.support_daemon import (
    Child,
    GatedSmtpServer,
    Item,
    child_env,
    eventually,
    netlog_lines,
    prepare_users,
    process_running,
    rss,
    run_paperbell,
    write_slot_zone,
)
from tests.support_email import bodies
from tests.support_http import Reply, ScriptedServer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "papers.xml"
FILE_FEED = json.dumps([{"kind": "feed", "url": f"file:{EXAMPLE}"}])
FEED = "/feed.xml"
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
PAPER = Item(
    "Sparse Autoencoders Hear the Bell",
    "We train sparse autoencoders on recordings of church bells and find clean features.",
    "sae-bells",
)
OTHER = Item("Graph Colouring for Train Timetables", "Scheduling trains with colours.", "trains")
QUERY = "autoencoders"
INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
BOTH = frozenset({DeliveryMode.EMAIL_INSTANT, DeliveryMode.EMAIL_DIGEST})
ADA, BOB, CY = "ada@example.org", "bob@example.org", "cy@example.org"
PUBLIC_URL = "https://bell.example.org"  # HTTPS: mail offers one-click unsubscribe
MARGIN = 15.0  # seconds beyond the grace before a shutdown counts as hung


@dataclass(frozen=True)
class Harness:
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def zones(self) -> Path:
        return self.root / "zones"

    @property
    def netlog(self) -> Path:
        return self.root / "network.log"

    def env(self, **settings: str) -> dict[str, str]:
        return child_env(self.data_dir, self.netlog, self.zones, settings)

    def loopback_env(
        self, feed: ScriptedServer, smtp: SmtpTestServer, grace: float
    ) -> dict[str, str]:
        """The daemon on the loopback feed and SMTP server, ticking every second."""
        return self.env(
            PAPERBELL_SOURCES=json.dumps(
                [{"kind": "feed", "url": feed.url(FEED), "interval_minutes": 1}]
            ),
            PAPERBELL_SMTP__HOST="127.0.0.1",
            PAPERBELL_SMTP__PORT=str(smtp.port),
            PAPERBELL_SMTP__SECURITY="none",
            PAPERBELL_SMTP__EHLO_NAME="test.example.org",
            PAPERBELL_SMTP__FROM_ADDRESS="bell@example.org",
            PAPERBELL_WEB__PORT="0",
            PAPERBELL_PUBLIC_URL=PUBLIC_URL,
            PAPERBELL_DISPATCH_SECONDS="1",
            PAPERBELL_DIGEST_SECONDS="1",
            PAPERBELL_SHUTDOWN_GRACE=str(grace),
        )

    def settings(self, feed: ScriptedServer) -> Settings:
        """What the child reads from ``loopback_env``, as far as preparing users needs."""
        source = SourceConfig(kind=SourceKind.FEED, url=feed.url(FEED), interval_minutes=1)
        return Settings(data_dir=self.data_dir, sources=[source], public_url=PUBLIC_URL)

    @asynccontextmanager
    async def store(self) -> AsyncIterator[SqliteStore]:
        store = await open_sqlite_store(self.data_dir / "paperbell.db")
        try:
            yield store
        finally:
            await store.close()

    async def alert_states(self) -> list[str]:
        async with self.store() as store:
            rows = await store.list_deliveries()
        return sorted(d.state.value for d in rows if d.kind is DeliveryKind.ALERT)

    def assert_loopback_only(self) -> None:
        refused = [line for line in netlog_lines(self.netlog) if "REFUSED" in line]
        assert not refused, refused


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    harness.zones.mkdir()
    before = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[str(harness.zones), *before])  # this process finds them too
    yield harness
    zoneinfo.reset_tzpath(to=before)


def serve_feed(feed: ScriptedServer, delay: float = 0.0) -> None:
    body = rss([PAPER, OTHER], datetime.now(UTC))
    feed.script(FEED, Reply(200, body, headers=RSS, delay=delay))


def recipients(received: Sequence[Received]) -> list[str]:
    return sorted(address for got in received for address in got.rcpt_tos)


def assert_tells_of_paper(message: EmailMessage) -> None:
    """The matching paper, its link, and not the other one, in the text and the HTML."""
    for part in bodies(message):
        plain = part.replace("*", "")  # matched words are highlighted
        assert "Hear the Bell" in plain and "papers.example.org/sae-bells" in plain
        assert "Train Timetables" not in plain and "papers.example.org/trains" not in plain


def assert_list_headers(message: EmailMessage) -> None:
    unsubscribe = str(message["List-Unsubscribe"])
    assert f"<{PUBLIC_URL}/unsubscribe/" in unsubscribe
    assert "mailto:" not in unsubscribe  # nothing reads mail sent to paperbell
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def wait_for_match(h: Harness, user: User) -> datetime:
    """When the daemon matched the paper for ``user`` (it waits for their digest)."""
    async with h.store() as store:
        [record] = await store.waiting_digest_matches(user.owner)
    return record.matched_at


async def move_digest_slot(h: Harness, user: User, at: datetime) -> None:
    key, hour = write_slot_zone(h.zones, at)
    async with h.store() as store:
        await store.update_user(user.id, datetime.now(UTC), timezone=key, digest_hour=hour)


# --- a paper's way through the running daemon ---------------------------------------------


async def test_new_paper_becomes_an_instant_email_then_a_digest(h: Harness) -> None:
    async with ScriptedServer() as feed, SmtpTestServer() as smtp:
        serve_feed(feed)
        [ada] = await prepare_users(h.settings(feed), [ADA], QUERY, BOTH)
        env = h.loopback_env(feed, smtp, grace=5)
        async with Child(h.root, env, "run") as daemon:
            await eventually(lambda: len(smtp.received) == 1, "the instant alert")
            alert = smtp.received[0].message
            assert alert["To"] == ADA and "1 new paper" in str(alert["Subject"])
            assert_tells_of_paper(alert)
            assert_list_headers(alert)

            # The match waits for the next digest slot; put that slot one second after it.
            matched_at = await wait_for_match(h, ada)
            await move_digest_slot(h, ada, matched_at.replace(microsecond=0) + timedelta(seconds=1))
            await eventually(lambda: len(smtp.received) == 2, "the digest")
            digest = smtp.received[1].message
            assert digest["To"] == ADA and "paperbell digest" in str(digest["Subject"])
            assert_tells_of_paper(digest)
            assert_list_headers(digest)

            status = await run_paperbell(h.root, env, "status")
            check = await run_paperbell(h.root, env, "check")
            daemon.send(signal.SIGTERM)
            assert await daemon.exit_code(within=5 + MARGIN) == 0

    assert status.proc.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    [source] = [line for line in lines if "127.0.0.1" in line and " feed " in line]
    assert "last success 20" in source and "error" not in source
    assert "users: 1   subscriptions: 1" in lines
    assert not any(line.startswith("email: sent by") for line in lines)  # no helpers here
    # The confirmation queued with the address went unsent: it was confirmed by link first.
    assert "outbox: pending 0, sending 0, sent 2, failed 0, suppressed 1" in lines
    assert any(line.strip().startswith(ADA) for line in lines[lines.index("next digests:") :])
    assert check.proc.returncode == 0 and check.stdout.startswith("ok: last ingest cycle")
    assert len(smtp.received) == 2  # nothing more came after the digest
    assert "stopped" in daemon.stderr and "Traceback" not in daemon.stderr
    h.assert_loopback_only()

    # Stopped, and as if an hour had passed since: the heartbeat is stale.
    async with h.store() as store:
        await store.set_meta(HEARTBEAT, (datetime.now(UTC) - timedelta(hours=1)).isoformat())
    stale = await run_paperbell(h.root, env, "check")
    assert stale.proc.returncode == 1
    assert stale.stdout.splitlines() == [
        "unhealthy: the scheduler has not ticked recently (is paperbell run running?)"
    ]


async def test_check_without_a_database_is_unhealthy_and_creates_nothing(h: Harness) -> None:
    empty = h.root / "empty"
    check = await run_paperbell(
        h.root, h.env(PAPERBELL_SOURCES=FILE_FEED, PAPERBELL_DATA_DIR=str(empty)), "check"
    )
    assert check.proc.returncode == 1
    assert check.stdout.splitlines() == [
        f"unhealthy: no database yet at {empty / 'paperbell.db'}"
        " — run `paperbell run` or `paperbell ingest` first"
    ]
    assert not empty.exists()


# --- stopping ------------------------------------------------------------------------------


async def test_sigterm_while_fetching_lets_the_cycle_finish(h: Harness) -> None:
    async with ScriptedServer() as feed, SmtpTestServer() as smtp:
        serve_feed(feed, delay=1.5)
        await prepare_users(h.settings(feed), [ADA, BOB], QUERY, INSTANT)
        async with Child(h.root, h.loopback_env(feed, smtp, grace=10), "run") as daemon:
            await daemon.logged("paperbell running")
            await eventually(lambda: feed.max_active == 1, "the feed request")
            daemon.send(signal.SIGTERM)  # the reply is still 1.5 s away
            assert await daemon.exit_code(within=10 + MARGIN) == 0
    log = daemon.stderr
    assert log.index("SIGTERM: finishing work in flight") < log.index("cycle 127.0.0.1")
    assert "matches 2 | deliveries: email sent 2" in log and "cancelled" not in log
    assert recipients(smtp.received) == [ADA, BOB]
    assert await h.alert_states() == ["sent", "sent"]
    h.assert_loopback_only()


async def test_sigterm_past_the_grace_keeps_the_rest_for_the_next_start(h: Harness) -> None:
    async with ScriptedServer() as feed, GatedSmtpServer() as smtp:
        serve_feed(feed)
        await prepare_users(h.settings(feed), [ADA, BOB, CY], QUERY, INSTANT)
        # One SMTP connection: the alerts reach DATA one after the other, however many
        # messages the dispatcher has in flight, so the test can stop between two.
        env = {**h.loopback_env(feed, smtp, grace=1), "PAPERBELL_SMTP__CONNECTIONS": "1"}
        async with Child(h.root, env, "run") as first:
            await eventually(lambda: smtp.gate.waiting == 1, "the first alert at DATA")
            smtp.gate.allow(1)
            await eventually(
                lambda: len(smtp.received) == 1 and smtp.gate.waiting == 1,
                "the first alert accepted and the second at DATA",
            )
            first.send(signal.SIGTERM)  # the second alert never gets through: grace runs out
            assert await first.exit_code(within=1 + MARGIN) == 0
        assert "cancelled" in first.stderr and "Traceback" not in first.stderr
        states = await h.alert_states()
        # Nothing lost: what was not sent, or cut off mid-send, is pending again.
        assert states.count("sent") == 1 and len(states) == 3
        assert set(states) == {"sent", "pending"}

        smtp.gate.open()
        async with Child(h.root, env, "run") as second:
            await eventually(lambda: len(smtp.received) == 3, "the two alerts left over")
            await eventually(lambda: "deliveries: email sent 2" in second.stderr, "their commit")
            second.send(signal.SIGTERM)
            assert await second.exit_code(within=1 + MARGIN) == 0
    assert recipients(smtp.received) == [ADA, BOB, CY]  # each exactly once
    assert await h.alert_states() == ["sent", "sent", "sent"]
    h.assert_loopback_only()


async def test_a_second_sigterm_exits_at_once(h: Harness) -> None:
    async with ScriptedServer() as feed, GatedSmtpServer() as smtp:
        serve_feed(feed)
        await prepare_users(h.settings(feed), [ADA], QUERY, INSTANT)
        async with Child(h.root, h.loopback_env(feed, smtp, grace=120), "run") as daemon:
            await eventually(lambda: smtp.gate.waiting == 1, "the alert at DATA")
            daemon.send(signal.SIGTERM)
            await daemon.logged("SIGTERM: finishing work in flight")
            daemon.send(signal.SIGTERM)
            # Far sooner than the 120 s grace the first signal would have waited.
            assert await daemon.exit_code(within=MARGIN) == 128 + signal.SIGTERM
    assert "second SIGTERM: exiting at once" in daemon.stderr
    assert smtp.received == []
    # Left mid-send, not lost: the next start puts it back to pending (see above).
    assert await h.alert_states() == ["sending"]


# --- starting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"PAPERBELL_SOURCES": '[{"kind":"nope"}]'}, "PAPERBELL_SOURCES[0].kind"),
        ({"PAPERBELL_SHUTDOWN_GRACE": "-1"}, "PAPERBELL_SHUTDOWN_GRACE"),
    ],
)
async def test_bad_configuration_exits_78_with_one_line(
    h: Harness, settings: dict[str, str], named: str
) -> None:
    env = h.env(PAPERBELL_SOURCES=FILE_FEED, PAPERBELL_WEB__PORT="0") | settings
    run = await run_paperbell(h.root, env, "run")
    assert run.proc.returncode == 78
    [line] = run.stderr.splitlines()
    assert line.startswith(f"paperbell: configuration error: {named}: ")
    assert not h.data_dir.exists() and netlog_lines(h.netlog) == []


def _port_in_use(taken: socket.socket) -> dict[str, str]:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return {"PAPERBELL_WEB__PORT": str(taken.getsockname()[1])}


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"PAPERBELL_SMTP__HOST": "127.0.0.1", "PAPERBELL_SMTP__EHLO_NAME": "my host",
          "PAPERBELL_WEB__PORT": "0"}, "PAPERBELL_SMTP__EHLO_NAME"),
        (None, "PAPERBELL_WEB__PORT"),
    ],
)  # fmt: skip
async def test_configuration_found_bad_at_startup_exits_78_naming_it(
    h: Harness, settings: dict[str, str] | None, named: str
) -> None:
    """Problems only opening a channel reveals: what was logged before, then one line."""
    with socket.socket() as taken:
        env = h.env(PAPERBELL_SOURCES=FILE_FEED) | (settings or _port_in_use(taken))
        run = await run_paperbell(h.root, env, "run")
    assert run.proc.returncode == 78
    *before, line = run.stderr.splitlines()
    assert line.startswith(f"paperbell: configuration error: {named}: ")
    assert all(" INFO " in earlier for earlier in before), before
    assert netlog_lines(h.netlog) == []


async def test_a_file_feed_alone_runs_offline_and_stops_on_sigint(h: Harness) -> None:
    # Port 0 only so a busy 8080 on the test machine cannot fail the test.
    env = h.env(PAPERBELL_SOURCES=FILE_FEED, PAPERBELL_WEB__PORT="0")
    async with Child(h.root, env, "run") as daemon:
        await daemon.logged("cycle papers: fetched 6, new 6")
        daemon.send(signal.SIGINT)
        assert await daemon.exit_code(within=20 + MARGIN) == 0  # the default grace: 20 s
    log = daemon.stderr
    assert "Discord: off" in log and "SIGINT: finishing work in flight" in log
    assert "Traceback" not in log and " ERROR " not in log
    assert netlog_lines(h.netlog) == []  # not one connection, not one name looked up
    async with h.store() as store:
        assert len(await store.list_papers()) == 6
        assert await store.list_deliveries() == []


def spawned_children(pid: int) -> list[int]:
    """``pid``'s children started by multiprocessing's spawn (its resource tracker aside)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in command:
                found.append(int(child))
    return found


async def test_email_helpers_send_beside_the_daemon_and_stop_with_it(h: Harness) -> None:
    async with ScriptedServer() as feed, SmtpTestServer() as smtp:
        serve_feed(feed)
        readers = [f"r{n}@example.org" for n in range(20)]
        await prepare_users(h.settings(feed), readers, QUERY, INSTANT)
        env = h.loopback_env(feed, smtp, grace=5) | {"PAPERBELL_EMAIL__PROCESSES": "3"}
        async with Child(h.root, env, "run") as daemon:
            await daemon.logged("2 email helper process(es) started")
            helpers = spawned_children(daemon.proc.pid)
            assert len(helpers) == 2
            await eventually(lambda: len(smtp.received) == len(readers), "every alert")
            status = await run_paperbell(h.root, env, "status")
            daemon.send(signal.SIGTERM)
            assert await daemon.exit_code(within=5 + MARGIN) == 0
    assert "email: sent by the daemon and 2 helper process(es)" in status.stdout.splitlines()
    assert recipients(smtp.received) == sorted(readers)  # each reader once
    assert not any(process_running(pid) for pid in helpers)
    assert await h.alert_states() == ["sent"] * len(readers)
    assert "stopped" in daemon.stderr and "Traceback" not in daemon.stderr
    h.assert_loopback_only()
