"""Three ``paperbell run`` processes on one PostgreSQL database and a loopback SMTP sink.

5,000 alert deliveries (one message per person) wait in the outbox; the processes share
them. Once a third has arrived the leader is killed with SIGKILL: another process takes the
lease and polls, every message arrives, at most one is sent twice (each process has one
SMTP connection, so one message in flight), and the feed never sees two polls at once.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from bot.daemon.leader import LEADER
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.planning import record_matches
from bot.messages import Channel
from bot.models import DeliveryMode
from bot.store.postgres import PostgresStore
from bot.store.protocols import DeliveryState
from bot.store.sqlite.store import open_sqlite_store
from bot.store.transfer import copy_store
from tests.smtp_server import SmtpTestServer
from tests.support_daemon import Child, Item, child_env, eventually, rss
from tests.support_http import Reply, ScriptedServer
from tests.support_outbox import (
    LINKS,
    NOW,
    FrozenClock,
    RecordingNotifier,
    add_papers,
    record,
    verified_user,
)
from tests.test_daemon import FEED, RSS

pytestmark = pytest.mark.slow

PEOPLE = 5000
PROCESSES = 3
INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
PAPER = Item("Sparse autoencoders in depth", "Features of sparse autoencoders.", "sae-depth")
DONE = 240.0  # seconds: the bound on delivering everything (it only turns a hang into a failure)


async def _seed(path: Path) -> list[str]:
    """People with confirmed addresses (their confirmations already sent), each with one
    instant alert pending."""
    store = await open_sqlite_store(path)
    try:
        await add_papers(store, "p0")
        people = [await verified_user(store, f"u{n}@example.org") for n in range(PEOPLE)]
        subs = [
            await store.add_subscription(u.owner, "g", "graph", INSTANT, NOW, limit=5)
            for u in people
        ]
        email = RecordingNotifier(Channel.EMAIL)
        sender = Dispatcher(store, {Channel.EMAIL: email}, LINKS, FrozenClock(), random.Random(1))
        await sender.run_once(NOW)  # the confirmations
        records = [record(s.owner, "p0", s.id) for s in subs]
        await record_matches(store, records, NOW)
        return [u.email or "" for u in people]
    finally:
        await store.close()


@asynccontextmanager
async def _processes(
    root: Path, url: str, feed: ScriptedServer, smtp: SmtpTestServer
) -> AsyncIterator[list[Child]]:
    async with AsyncExitStack() as stack:
        children = []
        for n in range(PROCESSES):
            env = child_env(
                root / f"data{n}", root / f"net{n}.log", root / "zones", _settings(url, feed, smtp)
            )
            children.append(await stack.enter_async_context(Child(root, env, "run")))
        yield children


def _settings(url: str, feed: ScriptedServer, smtp: SmtpTestServer) -> dict[str, str]:
    return {
        "PAPERBELL_DATABASE_URL": url,
        "PAPERBELL_SOURCES": json.dumps(
            [{"kind": "feed", "url": feed.url(FEED), "interval_minutes": 1}]
        ),
        "PAPERBELL_SMTP__HOST": "127.0.0.1",
        "PAPERBELL_SMTP__PORT": str(smtp.port),
        "PAPERBELL_SMTP__SECURITY": "none",
        "PAPERBELL_SMTP__EHLO_NAME": "test.example.org",
        "PAPERBELL_SMTP__FROM_ADDRESS": "bell@example.org",
        "PAPERBELL_SMTP__CONNECTIONS": "1",
        "PAPERBELL_WEB__PORT": "0",
        "PAPERBELL_PUBLIC_URL": "https://bell.example.org",
        "PAPERBELL_DISPATCH_SECONDS": "1",
        "PAPERBELL_DIGEST_SECONDS": "1",
        "PAPERBELL_LEADER_LEASE": "3",
        "PAPERBELL_DELIVERY_LEASE": "10",
        "PAPERBELL_SECRET_KEY": "multi-process-test-key-" * 2,
    }


async def _leader_pid(store: PostgresStore) -> int | None:
    lease = await store.get_lease(LEADER)
    return int(lease.holder.split(":")[1]) if lease else None


async def _eventually_async(check: Callable[[], Awaitable[bool]], what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def test_three_processes_share_the_outbox_and_survive_the_leader_killed(
    tmp_path: Path, postgres_url: str
) -> None:
    addresses = await _seed(tmp_path / "seed.db")
    await copy_store(tmp_path / "seed.db", postgres_url, lambda *_: None)
    store = await PostgresStore.open(postgres_url)
    async with ScriptedServer() as feed, SmtpTestServer() as smtp, AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        body = rss([PAPER], NOW)
        feed.script(FEED, Reply(200, body, headers=RSS, delay=0.3))
        children = await stack.enter_async_context(_processes(tmp_path, postgres_url, feed, smtp))
        pids = {c.proc.pid: c for c in children}

        async def leading() -> bool:
            return await _leader_pid(store) in pids

        await _eventually_async(leading, "a leader", 60)
        await eventually(lambda: len(smtp.received) >= PEOPLE // 3, "a third of the mail", DONE)
        leader = await _leader_pid(store)
        assert leader is not None
        pids[leader].send(signal.SIGKILL)
        killed_at = time.monotonic()
        await pids[leader].exit_code(within=30)

        async def taken_over() -> bool:
            now = await _leader_pid(store)
            return now is not None and now != leader

        await _eventually_async(taken_over, "another leader", 60)
        await eventually(
            lambda: len({a for r in smtp.received for a in r.rcpt_tos}) >= PEOPLE,
            "every message",
            DONE,
        )
        await eventually(
            lambda: any(r.started > killed_at for r in feed.requests_to(FEED)),
            "a poll by the new leader",
            60,
        )

        per_address = Counter(a for r in smtp.received for a in r.rcpt_tos)
        assert set(per_address) == set(addresses)
        assert sum(n - 1 for n in per_address.values()) <= 1  # one kill, one message in flight
        assert feed.max_active == 1  # never two processes polling at once
        sent = await store.list_deliveries(state=DeliveryState.SENT)
        assert len(sent) >= PEOPLE
        for child in children:
            if child.proc.returncode is None:
                assert "Traceback" not in child.stderr, child.stderr
