"""CLI for subscriptions: the query tester, subscribe by email, list, unsubscribe."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.conftest import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "papers.xml"


@pytest.fixture(autouse=True)
def _papers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The bundled feed, re-dated to yesterday so "the last 7 days" always holds it."""
    yesterday = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)[:16]
    feed = tmp_path / "papers.xml"
    feed.write_text(EXAMPLE.read_text().replace("Fri, 20 Nov 2026", yesterday))
    main(["ingest", "--source", f"feed:file:{feed}"])
    capsys.readouterr()


def test_query_tester_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-query", 'llm OR "state space"', "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["query"] == 'llm OR "state space"'
    assert result["count"] == len(result["matches"]) == 4
    assert result["days"] == 7
    assert all(key.startswith("feed:") for key in result["matches"])


def test_query_tester_marks_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-query", "circuits"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("query:   circuits")
    assert "**Circuit**" in out  # the stem matched the title's singular


def test_query_tester_error_names_column(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-query", "title:(diffusion"]) == 2  # a bad query is a usage error
    err = capsys.readouterr().err
    assert "unbalanced parenthesis at column" in err and "Traceback" not in err


def test_bad_query_exits_2_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", "ada@example.org", "llm AND"]) == 2
    assert main(["search", '"unclosed']) == 2
    err = capsys.readouterr().err
    assert err.count("at column") == 2 and "Traceback" not in err


def test_subscribe_list_unsubscribe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", "Ada@Example.org", "circuit*"]) == 0
    out = capsys.readouterr().out
    assert "subscription #1 for Ada@example.org: circuit*" in out
    assert "a confirmation for Ada@example.org was written to data/outbox" in out
    assert main(["subscribe", "--email", "ada@example.org", "--deliver", "both", "ssd"]) == 0
    capsys.readouterr()
    assert main(["subscriptions", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["normalized"] for r in rows] == ["circuit*", "ssd"]
    assert rows[1]["deliver"] == ["email_digest", "email_instant"]
    assert main(["unsubscribe", "1"]) == 0
    assert "removed subscription #1" in capsys.readouterr().out
    assert main(["subscriptions", "--email", "ada@example.org"]) == 0
    assert "circuit*" not in capsys.readouterr().out


def test_subscribe_bad_address_is_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", "not-an-address", "llm"]) == 1
    err = capsys.readouterr().err
    assert "is not an email address" in err and "Traceback" not in err


def test_unknown_subscription(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unsubscribe", "42"]) == 1
    assert "#42" in capsys.readouterr().err
