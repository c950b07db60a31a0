"""A password in a feed URL is used to fetch, and is never shown, logged or stored."""

from __future__ import annotations

import base64
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import pytest

from bot.models import SourceKind
from bot.settings import HttpSettings, SourceConfig
from bot.sources import build_source
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.sqlite.store import SqliteStore
from bot.text import redact_url
from tests.support_http import Reply, ScriptedServer, fixture

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://ada:s3cr3t@host.org/feed", "https://***@host.org/feed"),
        ("https://token@host.org/", "https://***@host.org/"),
        ("GET http://a:b@h:8080/f?who=x@y: HTTP 500", "GET http://***@h:8080/f?who=x@y: HTTP 500"),
        ("https://host.org/p@x?q=a@b", "https://host.org/p@x?q=a@b"),
        ("file:feeds/a@b.xml", "file:feeds/a@b.xml"),
    ],
)
def test_redact_url_hides_userinfo_only(text: str, shown: str) -> None:
    assert redact_url(text) == shown


def test_a_bad_url_error_does_not_quote_the_password() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        SourceConfig(kind=SourceKind.FEED, url=f"ftp://a:{SECRET}@h/")
    assert SECRET not in str(caught.value)


def _everything_stored(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return "\n".join(db.iterdump())


async def test_credentials_fetch_but_stay_out_of_errors_logs_and_database(
    sqlite_store: SqliteStore, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The SQLite store: the test reads back every byte it stored, through its file.
    store = sqlite_store
    caplog.set_level(logging.DEBUG)
    etag = {"ETag": '"v1"'}
    async with (
        ScriptedServer() as server,
        HttpClient(HttpSettings(timeout=2, retries=1, backoff=0.01)) as http,
    ):
        server.script("/ok", Reply(200, fixture("feed_blog_rss.xml"), headers=etag))
        server.script("/down", Reply(503))

        def with_password(path: str) -> str:
            return server.url(path).replace("://", f"://ada:{SECRET}@")

        configs = [
            SourceConfig(kind=SourceKind.FEED, url=with_password("/ok"), name="ok"),
            SourceConfig(kind=SourceKind.FEED, url=with_password("/down"), name="down"),
        ]
        report = await run_cycle([build_source(c, http) for c in configs], store, lambda: NOW)
        await run_cycle([build_source(c, http) for c in configs], store, lambda: NOW)
    assert server.requests_to("/ok")[1].headers["If-None-Match"] == '"v1"'  # validators found
    sent = server.requests_to("/ok")[0].headers["Authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")) == f"ada:{SECRET}".encode()
    by_name = {s.name: s for s in report.summaries}
    assert by_name["ok"].ok and by_name["down"].error
    assert "***@" in by_name["down"].error and SECRET not in by_name["down"].error
    assert all(SECRET not in c.source_id for c in configs)
    stored = _everything_stored(db_path)
    assert "***@127.0.0.1" in stored  # source ids, validators' keys, the error
    assert SECRET not in stored
    assert SECRET not in caplog.text
