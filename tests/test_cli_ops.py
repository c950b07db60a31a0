"""Operator CLI: digest (preview, now), outbox listing, status; mail goes to the file outbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.cli.main import main
from bot.daemon.resources import build_service
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.settings import load_settings
from bot.store import paging
from bot.store.protocols import Delivery
from bot.store.sqlite.store import SqliteStore, open_sqlite_store
from tests.conftest import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "papers.xml"


def confirm(address: str) -> None:
    """Confirm the address as its owner would by the link (the link path is tested in web)."""

    async def run() -> None:
        settings = load_settings()
        store = await open_sqlite_store(settings.database_path)
        try:
            user = await store.find_user(email=address)
            assert user is not None and user.email
            await store.verify_email(user.id, user.email, datetime.now(UTC))
            service = await build_service(settings, store)
            await match_cycle(service.index, store, datetime.now(UTC), plan_matches)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def subscribed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    """ada@example.org, confirmed, subscribed for a digest; the bundled feed ingested."""
    yesterday = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)[:16]
    feed = tmp_path / "papers.xml"
    feed.write_text(EXAMPLE.read_text().replace("Fri, 20 Nov 2026", yesterday))
    assert main(["subscribe", "--email", "ada@example.org", "llm OR circuit*"]) == 0
    main(["ingest", "--source", f"feed:file:{feed}"])
    confirm("ada@example.org")
    capsys.readouterr()
    return "ada@example.org"


def test_digest_preview_prints_and_sends_nothing(
    subscribed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(Path("data/outbox").glob("*.eml"))
    assert main(["digest", "--preview", "--email", subscribed]) == 0
    out = capsys.readouterr().out
    assert "llm OR circuit*" in out and "LLM Circuit Analyses" in out
    assert sorted(Path("data/outbox").glob("*.eml")) == before


def test_digest_now_writes_one_digest_then_none(
    subscribed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["digest", "--now", "--email", subscribed]) == 0
    assert "1 digest(s) created" in capsys.readouterr().out
    digests = list(Path("data/outbox").glob("digest*.eml"))
    assert len(digests) == 1
    mail = message_from_bytes(digests[0].read_bytes())
    assert mail["To"] == subscribed and "paperbell digest" in mail["Subject"]
    assert main(["digest", "--now", "--email", subscribed]) == 0  # same local date: no second
    assert "0 digest(s) created" in capsys.readouterr().out


def test_outbox_lists_states(subscribed: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["digest", "--now", "--email", subscribed])
    capsys.readouterr()
    assert main(["outbox", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {(r["kind"], r["state"]) for r in rows}
    assert ("confirm", "sent") in kinds and ("digest", "sent") in kinds
    assert main(["outbox", "--status", "failed"]) == 0
    assert "the outbox is empty of failed deliveries" in capsys.readouterr().out


def test_digest_for_unknown_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digest", "--now", "--email", "nobody@example.org"]) == 1
    assert "no account has the address" in capsys.readouterr().err


def test_status_lists_everything(subscribed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "users: 1   subscriptions: 1" in out
    assert "outbox: pending 0" in out
    assert "ada@example.org" in out  # the next digest time


def test_status_lists_the_soonest_digests_then_how_many_more(
    subscribed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A community's status is not a line per reader: the ten soonest, then a count.
    zones = ["Pacific/Auckland", "Asia/Tokyo", "Europe/Berlin", "America/New_York"] * 3
    for n, zone in enumerate(zones):
        address = f"r{n}@example.org"
        assert main(["subscribe", "--email", address, "llm"]) == 0
        confirm(address)
        assert main(["settings", "--email", address, "--timezone", zone]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = out[out.index("next digests:") + 1 : out.index("today:")]
    assert len(listed) == 11 and listed[-1] == "  … and 3 more (13 scheduled in all)"
    assert "users: 13   subscriptions: 13" in out
    shown = [
        datetime.strptime(" ".join(line.split()[2:4]), "%Y-%m-%d %H:%M") for line in listed[:-1]
    ]
    zones_shown = [line.split()[-1] for line in listed[:-1]]
    utc = [
        t.replace(tzinfo=ZoneInfo(z)).astimezone(UTC)
        for t, z in zip(shown, zones_shown, strict=True)
    ]
    assert utc == sorted(utc)  # soonest first, whatever each reader's zone


def test_outbox_lists_the_newest_rows_and_says_how_many_more(
    subscribed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        assert main(["subscribe", "--email", f"r{n}@example.org", "llm"]) == 0
    capsys.readouterr()
    assert main(["outbox", "--all"]) == 0
    every = capsys.readouterr().out.splitlines()
    assert len(every) == 4 and all(line.startswith("#") for line in every)
    assert main(["outbox", "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [*every[-2:], "the newest 2 of 4 deliveries; --limit N or --all lists more"]
    assert main(["outbox", "--limit", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["id"] for line in captured.out.splitlines()] == [
        int(line.split()[0][1:]) for line in every[-2:]
    ]
    assert "the newest 2 of 4 deliveries" in captured.err
    with pytest.raises(SystemExit):
        main(["outbox", "--limit", "0"])
    assert "argument --limit: 0 is not a positive number" in capsys.readouterr().err


def test_outbox_all_reads_the_table_a_page_at_a_time(
    subscribed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        assert main(["subscribe", "--email", f"r{n}@example.org", "llm"]) == 0
    capsys.readouterr()
    assert main(["outbox", "--limit", "100"]) == 0
    listed = capsys.readouterr().out.splitlines()
    reads: list[int | None] = []
    original = SqliteStore.list_deliveries

    async def counted(self: SqliteStore, *args: Any, **kw: Any) -> list[Delivery]:
        reads.append(kw.get("limit"))
        return await original(self, *args, **kw)

    monkeypatch.setattr(SqliteStore, "list_deliveries", counted)
    monkeypatch.setattr(paging, "DELIVERY_PAGE", 1)
    assert main(["outbox", "--all"]) == 0
    assert capsys.readouterr().out.splitlines() == listed  # same rows, same order, no note
    assert reads == [1] * (len(listed) + 1)  # one row a read, then an empty page
    assert main(["outbox", "--all", "--status", "sent", "--json"]) == 0
    ids = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert ids == [int(line.split()[0][1:]) for line in listed]


@pytest.mark.parametrize(
    "argv",
    [["outbox", "--limit"], ["papers", "--limit"], ["unsubscribe"], ["search", "llm", "--limit"]],
)
def test_a_number_no_store_could_hold_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "99999999999999999999"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "99999999999999999999 is too large (at most 9223372036854775807)" in err


def test_digest_now_for_everyone_skips_unconfirmed(
    subscribed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # bob (id 2) is not confirmed; carol comes after him and must still get her digest
    # (an "all quiet" one: she subscribed after the papers were matched).
    monkeypatch.setenv("PAPERBELL_EMAIL__ALL_QUIET", "true")
    assert main(["subscribe", "--email", "bob@example.org", "llm"]) == 0
    assert main(["subscribe", "--email", "carol@example.org", "circuit*"]) == 0
    confirm("carol@example.org")
    capsys.readouterr()
    assert main(["digest", "--now"]) == 0
    out = capsys.readouterr().out
    assert "2 digest(s) created" in out
    assert "skipped 1 address(es) not confirmed (or suppressed): bob@example.org" in out
    assert {m["To"] for m in map(_mail, Path("data/outbox").glob("digest*.eml"))} == {
        subscribed,
        "carol@example.org",
    }
    assert main(["digest", "--now", "--email", "bob@example.org"]) == 1  # asked for: an error
    assert "bob@example.org is not confirmed" in capsys.readouterr().err


def _mail(path: Path) -> Message:
    return message_from_bytes(path.read_bytes())
