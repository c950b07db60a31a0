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


def test_everyones_subscriptions_grouped_by_owner_with_names_and_counts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Interleaved: listed by owner, in the order owners first subscribed, oldest first;
    # the store counts one subscription at a time here, to cross its batches' edges.
    monkeypatch.setattr("bot.store.sqlite._codec.CHUNK", 1)
    subs = [("ada@x.org", "circuit*"), ("bob@x.org", "circuit*"), ("ada@x.org", "zzyzx")]
    for address, query in subs:
        assert main(["subscribe", "--email", address, query]) == 0
        assert main(["confirm", "--email", address]) == 0
    # The autouse fixture stored the feed before anyone subscribed: a copy with other
    # ids brings new papers.
    feed = tmp_path / "papers.xml"
    feed.write_text(feed.read_text().replace("reading-group-note-", "second-note-"))
    main(["ingest", "--source", f"feed:file:{feed}"])
    capsys.readouterr()
    assert main(["subscriptions", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["owner"], r["normalized"], r["matches"]) for r in rows] == [
        (1, "ada@x.org", "circuit*", 1),
        (3, "ada@x.org", "zzyzx", 0),
        (2, "bob@x.org", "circuit*", 1),
    ]


def test_subscribe_bad_address_is_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--email", "not-an-address", "llm"]) == 1
    err = capsys.readouterr().err
    assert "is not an email address" in err and "Traceback" not in err


def test_unknown_subscription(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unsubscribe", "42"]) == 1
    assert "#42" in capsys.readouterr().err
