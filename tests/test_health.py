"""Health that tells the truth: failure streaks and their hints, the WARNING and recovered
lines, the reasons behind ``check`` and ``/healthz``, and what the daemon records for
other processes (its sources, its channels)."""

from __future__ import annotations

import json
import logging
import random
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.accounts.addresses import LinkBuilder
from bot.daemon import run as daemon_run
from bot.daemon.health import check_health, source_reason
from bot.daemon.resources import Resources, open_resources
from bot.daemon.run import Worker, source_trigger
from bot.daemon.state import (
    CHANNELS,
    HEARTBEAT,
    RecordedSource,
    read_daemon_record,
    record_daemon_start,
    recorded_source,
    redact_url,
)
from bot.delivery.channel_status import ChannelStatus
from bot.delivery.dispatcher import Dispatcher
from bot.matching.step import MatchSummary, match_cycle
from bot.messages import Channel
from bot.models import IngestReport, SourceKind, SourceState
from bot.settings import HttpSettings, Settings, SourceConfig
from bot.sources import build_source
from bot.sources.failures import get_streak, source_key
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle, utc_now
from bot.store.protocols import Store
from tests.support_daemon import Child, child_env, run_paperbell
from tests.support_http import Reply, ScriptedServer

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
FEED = "/feed.xml"
LOGGER = "paperbell.daemon"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "papers.xml"
FILE_FEED = json.dumps([{"kind": "feed", "url": f"file:{EXAMPLE}"}])
RSS_BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with HttpClient(HttpSettings(timeout=2, retries=0, backoff=0.01)) as client:
        yield client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- streaks and hints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "hint"),
    [
        (None, "network or host down?"),  # nothing listens on the port
        (Reply(404, b"gone"), "check the URL"),
        (Reply(410, b"gone"), "check the URL"),
        (Reply(429), "rate limited; backing off until the next attempt"),
        (Reply(200, b"<html><body>a web page</body>"), "not a feed?"),
        (Reply(503), "the server is failing; it usually recovers by itself"),
    ],
)
async def test_a_failure_is_counted_with_a_hint_at_its_cause(
    store: Store, http: HttpClient, reply: Reply | None, hint: str
) -> None:
    async with ScriptedServer() as server:
        url = server.url(FEED) if reply else f"http://127.0.0.1:{closed_port()}/feed.xml"
        if reply:
            server.script(FEED, reply)
        source = build_source(SourceConfig(kind=SourceKind.FEED, url=url), http)
        [first] = (await run_cycle([source], store, clock=lambda: NOW)).summaries
        later = NOW + timedelta(hours=1)
        [second] = (await run_cycle([source], store, clock=lambda: later)).summaries
    assert first.error and first.failing and second.failing
    assert (first.failing.count, first.failing.since, first.failing.hint) == (1, NOW, hint)
    assert (second.failing.count, second.failing.since) == (2, NOW)


async def test_a_success_ends_the_streak_and_says_which(store: Store, http: HttpClient) -> None:
    async with ScriptedServer() as server:
        server.script(FEED, Reply(500), Reply(500), Reply(200, RSS_BODY))
        source = build_source(SourceConfig(kind=SourceKind.FEED, url=server.url(FEED)), http)
        for _ in range(2):
            await run_cycle([source], store, clock=lambda: NOW)
        [ok] = (await run_cycle([source], store, clock=lambda: NOW)).summaries
        [again] = (await run_cycle([source], store, clock=lambda: NOW)).summaries
    assert ok.error is None and ok.recovered is not None and ok.recovered.count == 2
    assert again.recovered is None
    assert await get_streak(store, source_key(source.config.source_id)) is None


# --- the daemon's lines -------------------------------------------------------------------------


async def test_second_failure_in_a_row_is_a_warning_with_next_attempt_and_hint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with ScriptedServer() as server:
        server.script(FEED, Reply(500), Reply(500), Reply(200, RSS_BODY))
        config = SourceConfig(kind=SourceKind.FEED, url=server.url(FEED), interval_minutes=30)
        settings = Settings(data_dir=tmp_path / "data", sources=[config])
        settings = settings.model_copy(update={"http": HttpSettings(retries=0)})
        async with open_resources(settings) as res:
            worker, scheduler = _worker(res)
            [source] = res.sources()
            job = scheduler.add_job(_nothing, source_trigger(config))
            worker.ingest_jobs[config.source_id] = job.id
            scheduler.start(paused=True)  # next_run_time is set, nothing runs
            try:
                records = []
                for _ in range(3):
                    caplog.clear()
                    with caplog.at_level(logging.INFO, logger=LOGGER):
                        await worker.ingest(source)
                    records.append(
                        [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]
                    )
                next_run = worker.next_attempt(config.source_id)
            finally:
                scheduler.shutdown(wait=False)
    assert next_run is not None
    (level1, line1), (level2, line2), (level3a, line3a), (level3b, line3b) = (
        records[0] + records[1] + records[2]
    )
    assert level1 == logging.INFO and "error: " in line1 and "HTTP 500" in line1
    assert level2 == logging.WARNING and "HTTP 500" in line2
    assert "127.0.0.1 failed 2 times in a row since " in line2
    assert "(the server is failing; it usually recovers by itself)" in line2
    assert f"next attempt {next_run.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in line2
    assert level3a == logging.INFO and "(ok)" in line3a
    assert level3b == logging.INFO
    assert line3b.startswith("127.0.0.1 recovered after 2 failed attempts (failing since ")


async def test_the_daemon_lets_the_fetched_papers_go_before_matching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They are in the store by then: a big day's thousands of papers held through the
    match step and the sending would only add to their peak memory."""
    reports: list[IngestReport] = []
    held: list[int] = []

    async def fetch(*args: Any, **kwargs: Any) -> IngestReport:
        reports.append(await run_cycle(*args, **kwargs))
        return reports[-1]

    async def match(*args: Any, **kwargs: Any) -> MatchSummary:
        held.append(sys.getrefcount(reports[-1]) - 2)  # less ``reports`` and the argument
        return await match_cycle(*args, **kwargs)

    monkeypatch.setattr(daemon_run, "run_cycle", fetch)
    monkeypatch.setattr(daemon_run, "match_cycle", match)
    config = SourceConfig(kind=SourceKind.FEED, url=f"file:{EXAMPLE}")
    async with open_resources(Settings(data_dir=tmp_path / "data", sources=[config])) as res:
        worker, _ = _worker(res)
        [source] = res.sources()
        [summary] = await worker.ingest(source)
    assert summary.ok and summary.new == len(reports[0].new_papers) > 0
    assert held == [0]


async def _nothing() -> None:
    return None


def _worker(res: Resources) -> tuple[Worker, AsyncIOScheduler]:
    links = LinkBuilder.from_settings(res.settings, res.service.signer)
    dispatcher = Dispatcher(res.store, {}, links, lambda: datetime.now(UTC), random.Random())
    worker = Worker(res, dispatcher, lambda: datetime.now(UTC), ChannelStatus(utc_now))
    worker.scheduler = AsyncIOScheduler(timezone=UTC)
    return worker, worker.scheduler


# --- the rules --------------------------------------------------------------------------------

HOURLY = RecordedSource(
    source_key("feed:x"), "feed", "blog", "https://b.example/", timedelta(hours=1), "every 60 min"
)


def test_a_source_that_never_succeeded_gets_a_grace_only_before_its_first_failure() -> None:
    started = NOW
    untried = SourceState("feed:x")
    failed = SourceState("feed:x", last_error="HTTP 500", last_error_at=NOW + timedelta(seconds=5))
    stale_error = SourceState(
        "feed:x", last_error="HTTP 500", last_error_at=NOW - timedelta(days=1)
    )
    soon, late = NOW + timedelta(minutes=2), NOW + timedelta(minutes=11)
    assert source_reason(HOURLY, None, started, soon) is None
    assert source_reason(HOURLY, untried, started, soon) is None
    assert source_reason(HOURLY, stale_error, started, soon) is None  # this run has not tried
    assert (
        source_reason(HOURLY, failed, started, soon) == "source blog has never succeeded: HTTP 500"
    )
    assert source_reason(HOURLY, None, started, late) == (
        "source blog has never succeeded: no attempt has finished"
    )


def test_a_source_is_unhealthy_after_three_intervals_without_success_while_running() -> None:
    last_ok = NOW - timedelta(days=7)  # the daemon was off for a week, then restarted at NOW
    state = SourceState("feed:x", last_success=last_ok, last_error="timeout", last_error_at=NOW)
    assert source_reason(HOURLY, state, NOW, NOW + timedelta(hours=3)) is None
    assert source_reason(HOURLY, state, NOW, NOW + timedelta(hours=3, minutes=11)) == (
        "source blog has not succeeded for 3 h 11 min (more than 3 x 1 h): timeout"
    )


def test_arxiv_counts_as_polled_daily_and_passwords_are_redacted() -> None:
    arxiv = SourceConfig(kind=SourceKind.ARXIV_RSS, url="https://rss.arxiv.org/rss/cs.LG")
    assert recorded_source(arxiv, "cron").interval == timedelta(hours=24)
    assert redact_url("https://ada:s3cret@feeds.example/x?y=1") == (
        "https://***@feeds.example/x?y=1"
    )
    assert redact_url("https://:pw@[::1]:8080/x") == "https://***@[::1]:8080/x"
    assert redact_url("https://feeds.example/x") == "https://feeds.example/x"


async def test_a_down_channel_and_overdue_deliveries_are_reasons(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, sources=[SourceConfig(kind=SourceKind.HF_DAILY)])
    now = datetime.now(UTC)
    await record_daemon_start(store, [], 30.0, now)
    await store.set_meta(HEARTBEAT, now.isoformat())
    assert (await check_health(store, settings, now)).ok
    user = await store.get_or_create_user(email="ada@example.org", now=now)
    await store.set_email(user.id, "ada@example.org", now - timedelta(minutes=20))
    # Written as the daemon writes it: its ChannelStatus's snapshot.
    status = ChannelStatus(lambda: now)
    status.opened(Channel.EMAIL)
    await store.set_meta(CHANNELS, status.snapshot())
    health = await check_health(store, settings, now)
    assert health.reasons == ("1 email delivery(ies) overdue, the oldest due 20 min ago",)
    status.waiting(Channel.EMAIL, "SMTP unreachable")
    await store.set_meta(CHANNELS, status.snapshot())
    health = await check_health(store, settings, now)
    assert health.reasons == (
        f"email channel is down since {now:%Y-%m-%d %H:%M} UTC: SMTP unreachable; "
        "its deliveries wait in the outbox",
    )


async def test_without_a_daemon_record_the_shell_settings_are_used_with_a_note(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, sources=[SourceConfig(kind=SourceKind.HF_DAILY)])
    record = await read_daemon_record(store, settings)
    assert record.started_at is None and [s.name for s in record.sources] == ["hf"]
    await store.set_meta(HEARTBEAT, NOW.isoformat())
    health = await check_health(store, settings, NOW)
    assert health.reasons == ("source hf has never succeeded: no attempt has finished",)
    assert health.notes and "this shell's PAPERBELL_SOURCES" in health.notes[0]


# --- end to end: the daemon, and check/status/healthz from another shell ------------------------


async def test_check_and_healthz_tell_a_never_successful_source_then_recover(
    tmp_path: Path,
) -> None:
    async with ScriptedServer() as server:
        server.script(FEED, Reply(500, b"broken"))
        # A password in the URL: status must show the URL, never the password.
        url = server.url(FEED).replace("http://", "http://ada:s3cret@")
        daemon_env = _env(tmp_path, json.dumps([{"kind": "feed", "url": url}]))
        # The operator's shell: other sources, or none at all.
        shell_env = _env(tmp_path, FILE_FEED)
        async with Child(tmp_path, daemon_env, "run") as daemon:
            await daemon.logged("error: ")
            check = await run_paperbell(tmp_path, shell_env, "check")
            status = await run_paperbell(tmp_path, shell_env, "status")
            code, body = await _healthz(await _web_base(daemon))
            daemon.send(signal.SIGTERM)
            assert await daemon.exit_code(within=30) == 0

        assert check.proc.returncode == 1, check.stdout
        [reason] = check.stdout.splitlines()
        assert reason.startswith("unhealthy: source 127.0.0.1 has never succeeded: ")
        assert "HTTP 500" in reason and "(the server is failing" in reason
        assert code == 503 and body["ok"] is False and body["reasons"] == [reason[11:]]
        lines = status.stdout.splitlines()
        assert lines[0].startswith("sources (of the daemon started ")
        assert f"http://***@127.0.0.1:{server.base_url.rsplit(':', 1)[1]}" in lines[2]
        before_today = "\n".join(lines[: lines.index("today:")])  # today: counts papers
        assert "every 60 min" in lines[2] and "papers" not in before_today
        # (Error texts quoting the URL are redacted by the logging/storage fix, not here.)
        assert "s3cret" not in lines[2]

        server.script(FEED, Reply(200, RSS_BODY))
        async with Child(tmp_path, daemon_env, "run") as daemon:
            await daemon.logged("(ok)")
            code, body = await _healthz(await _web_base(daemon))
            check = await run_paperbell(tmp_path, shell_env, "check")
            daemon.send(signal.SIGTERM)
            assert await daemon.exit_code(within=30) == 0
    assert code == 200 and body["ok"] is True and body["reasons"] == []
    assert check.proc.returncode == 0 and check.stdout.startswith("ok: "), check.stdout


def _env(root: Path, sources: str) -> dict[str, str]:
    (root / "zones").mkdir(exist_ok=True)
    return child_env(
        root / "data",
        root / "network.log",
        root / "zones",
        {
            "PAPERBELL_SOURCES": sources,
            "PAPERBELL_HTTP__RETRIES": "0",
            "PAPERBELL_WEB__PORT": "0",
            "PAPERBELL_DISPATCH_SECONDS": "1",
            "PAPERBELL_SHUTDOWN_GRACE": "5",
        },
    )


async def _web_base(daemon: Child) -> str:
    await daemon.logged("web endpoint on http://")
    match = re.search(r"web endpoint on (http://[\d.]+:\d+)", daemon.stderr)
    assert match is not None
    return match.group(1)


async def _healthz(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
        body: dict[str, Any] = await response.json()
        return response.status, body
