"""The command line over PostgreSQL: ``PAPERBELL_DATABASE_URL`` picks the store, and a URL
that leads nowhere is one clear line (exit 78) that never shows the password."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.cli.main import main
from tests.support_postgres import PostgresServer, empty_database
from tests.test_cli import EXAMPLE, run_cli

SECRET = "s3cret-Pa55"


def _with_password(url: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{SECRET}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, f"/{database}" if database else parts.path, "", ""))


def test_ingest_search_papers_and_status_use_the_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBELL_DATABASE_URL", postgres_url)
    assert main(["ingest", "--source", f"feed:file:{EXAMPLE}"]) == 0
    capsys.readouterr()
    assert main(["search", "circuits", "--json"]) == 0
    titles = [json.loads(line)["title"] for line in capsys.readouterr().out.splitlines()]
    assert titles == ["LLM Circuit Analyses Are Consistent Across Training and Scale"]
    assert main(["papers", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert main(["status"]) == 0
    assert "users: 0   subscriptions: 0" in capsys.readouterr().out
    # Nothing went to SQLite: the data directory holds no database file.
    assert not list(Path("data").glob("paperbell.db*"))


def test_migrate_names_the_database_without_its_password(
    postgres_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERBELL_DATABASE_URL", _with_password(postgres_url))
    assert main(["migrate"]) == 0  # trust authentication: the password is not checked
    out = capsys.readouterr().out
    assert out.strip() == f"{postgres_url.replace('paperbell@', '')} is up to date"
    assert SECRET not in out


async def test_migrate_says_it_created_the_tables_then_that_they_are_current(
    postgres_server: PostgresServer,
) -> None:
    url = await empty_database(postgres_server)
    env = {"PAPERBELL_DATABASE_URL": url}
    first, again = run_cli("migrate", env=env), run_cli("migrate", env=env)
    assert (first.returncode, again.returncode) == (0, 0)
    assert first.stdout.strip().endswith(": created")
    assert again.stdout.strip().endswith(" is up to date")


async def test_a_database_paperbell_never_opened_reads_as_empty(
    postgres_server: PostgresServer,
) -> None:
    url = await empty_database(postgres_server)
    result = run_cli("papers", env={"PAPERBELL_DATABASE_URL": url})
    assert result.returncode == 0
    assert "no paperbell tables yet" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("database", "says"),
    [("no_such_db", 'database "no_such_db" does not exist'), (None, "cannot connect")],
)
def test_a_bad_url_is_one_line_exit_78_without_the_password(
    postgres_server: PostgresServer, database: str | None, says: str
) -> None:
    if database is None:  # a port nothing listens on
        url = f"postgresql://paperbell:{SECRET}@127.0.0.1:1/paperbell"
    else:
        url = _with_password(postgres_server.url("postgres"), database)
    result = run_cli("status", env={"PAPERBELL_DATABASE_URL": url})
    assert result.returncode == 78, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("paperbell: configuration error: cannot connect to postgresql://")
    assert says in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"mysql://u:{SECRET}@db/x", "must start with postgresql://"),
        (f"postgresql://u:{SECRET}@db:99999/x", "Port out of range"),
    ],
)
def test_a_malformed_url_is_refused_without_echoing_it(url: str, says: str) -> None:
    result = run_cli("papers", env={"PAPERBELL_DATABASE_URL": url})
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("paperbell: configuration error: PAPERBELL_DATABASE_URL: ")
    assert says in lines[0]
    assert SECRET not in result.stderr
