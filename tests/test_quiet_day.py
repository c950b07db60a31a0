"""An empty day explained in ``status``: arXiv's weekend, a failing source and "0 matched"
told apart, from sources answering on a loopback server through the real ingest cycle."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.cli.ops import status_lines
from bot.delivery.digests import DigestPlanner
from bot.models import SourceKind
from bot.settings import SourceConfig, load_settings
from bot.sources import build_source
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.sqlite.store import open_sqlite_store
from handlers.email.render import Renderer
from tests.support_http import Reply, ScriptedServer, fixture
from tests.support_outbox import DIGEST, add_papers, verified_user


async def test_status_tells_a_quiet_day_apart(server: ScriptedServer, tmp_path: Path) -> None:
    server.script("/rss/cs.LG", Reply(200, fixture("arxiv_rss_weekend.xml")))
    server.script("/blog.xml", Reply(503, b"down for maintenance"))
    sources = [
        SourceConfig(
            kind=SourceKind.ARXIV_RSS, url=server.url("/rss/cs.LG"), min_request_interval=0
        ),
        SourceConfig(kind=SourceKind.FEED, url=server.url("/blog.xml"), name="blog"),
    ]
    settings = load_settings(data_dir=tmp_path, sources=sources)
    store = await open_sqlite_store(settings.database_path)
    try:
        async with HttpClient(settings.http.model_copy(update={"retries": 0})) as http:
            await run_cycle([build_source(c, http) for c in sources], store)
        lines = await status_lines(store, settings)
    finally:
        await store.close()
    today = lines[lines.index("today:") + 1 :]
    assert today[0] == "  arXiv made no announcement today (weekend/holiday)"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    assert today[1].startswith(f"  source 127.0.0.1 failed since {stamp} ")
    assert "1 attempt(s)" in today[1] and "503" in today[1]
    assert today[2] == "  last 24 hours: 0 new papers arrived, 0 papers matched"


async def test_an_empty_digest_says_whether_papers_came(tmp_path: Path) -> None:
    """With all-quiet digests on: "none matched" when papers came, "none arrived" when the
    sources were quiet, each on the real digest planner and in the mail itself."""
    settings = load_settings(data_dir=tmp_path)
    store = await open_sqlite_store(settings.database_path)
    try:
        now = datetime.now(UTC)
        planner = DigestPlanner(store, lambda: now, all_quiet=True)
        ada = await verified_user(store, "ada@example.org", now=now)
        await store.add_subscription(ada.owner, "quux", "quux", DIGEST, now, limit=5)
        empty = await planner.preview(ada, now)
        assert empty is not None and empty.arrived == 0
        assert empty.quiet_line == "All quiet: 0 new papers arrived today."
        await add_papers(store, "2612.00001", "2612.00002", now=now)
        quiet = await planner.preview(ada, now)
        assert quiet is not None and quiet.arrived == 2
        words = "All quiet: 2 new papers arrived today, 0 papers matched."
        assert quiet.quiet_line == words
        mail = Renderer(settings.smtp, settings.email).digest_bytes(quiet).decode()
        assert words in mail.replace("=\n", "")
    finally:
        await store.close()
