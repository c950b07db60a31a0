"""Papers followed through their life: one scenario per change, each through the real path.

An arXiv API source and Hugging Face Daily Papers answer on a loopback server (recorded
responses: ``arxiv_api_follow_v1.xml`` then ``_v2.xml``), the ingest cycle stores what they
list, the daemon's match step matches and the follow notes are queued, the dispatcher sends
to a recording notifier. Then the CLI: follow, list, unfollow, and its errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.daemon.resources import build_service
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.notifier import Notifier
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.messages import AlertMessage, Channel, FollowNoteMessage
from bot.models import DeliveryMode, SourceKind, User
from bot.service import Paperbell
from bot.settings import EmailSettings, Settings, SourceConfig, load_settings
from bot.sources import build_source
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.protocols import Store
from bot.store.sqlite.store import open_sqlite_store
from handlers.email.smtp import SmtpNotifier
from tests.smtp_server import SmtpTestServer
from tests.support_http import Reply, ScriptedServer, fixture
from tests.support_outbox import RecordingNotifier

KEY = "2611.04321"
API = "/api/query"
HF = "/api/daily_papers"
INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
CODE = "https://github.com/mquint/sparse-routing"


def hf_day(upvotes: int, repo: str | None = None) -> bytes:
    """Daily Papers listing the paper, in the 2026 layout (see hf_2026.json)."""
    paper: dict[str, object] = {
        "id": KEY,
        "authors": [{"name": "Mara Quint", "hidden": False}],
        "publishedAt": "2026-11-23T17:02:11.000Z",
        "title": "Sparse Attention Routing for Long-Context Transformers",
        "summary": "We route each query to a few key blocks.",
        "upvotes": upvotes,
    }
    if repo:
        paper["githubRepo"] = repo
    item = {"paper": paper, "publishedAt": "2026-11-23T17:02:11.000Z", "numComments": 0}
    return json.dumps([item]).encode()


@dataclass
class World:
    settings: Settings
    store: Store
    service: Paperbell
    server: ScriptedServer
    email: RecordingNotifier
    smtp: Notifier | None = None  # when set, mail goes out over SMTP instead

    async def person(self, address: str) -> User:
        now = datetime.now(UTC)
        user = await self.store.get_or_create_user(now=now, email=address)
        await self.store.verify_email(user.id, address, now)
        found = await self.store.find_user(email=address)
        assert found is not None
        return found

    def listing(self, api: str, hf: bytes = b"[]") -> None:
        self.server.script(API, Reply(200, fixture(api)))
        self.server.script(HF, Reply(200, hf))

    async def run(self) -> None:
        """One daemon cycle: ingest, match, queue follow notes, then send what is due."""
        settings = self.settings
        async with HttpClient(settings.http) as http:
            sources = [build_source(c, http) for c in settings.sources]
            await run_cycle(
                sources,
                self.store,
                alert_max_age_days=settings.alert_max_age_days,
                follow_upvotes=settings.follow_upvotes,
            )
        now = datetime.now(UTC)
        await match_cycle(self.service.index, self.store, now, plan_matches)
        await self.store.queue_follow_notes(now)
        notifier = self.smtp or self.email
        dispatcher = Dispatcher(
            self.store, {Channel.EMAIL: notifier}, self.service.links, _now, random.Random(1)
        )
        await dispatcher.run_once()

    def notes(self) -> list[FollowNoteMessage]:
        return [m for m in self.email.sent if isinstance(m, FollowNoteMessage)]

    def alerts(self) -> list[AlertMessage]:
        return [m for m in self.email.sent if isinstance(m, AlertMessage)]


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(tmp_path: Path, server: ScriptedServer, upvotes: int) -> Settings:
    sources = [
        SourceConfig(
            kind=SourceKind.ARXIV_API,
            url=server.url(API),
            query="cat:cs.LG",
            min_request_interval=0,
        ),
        SourceConfig(kind=SourceKind.HF_DAILY, url=server.url(HF), days=1, min_request_interval=0),
    ]
    # The recorded papers are from November 2026: alerted whatever day the test runs.
    return load_settings(
        data_dir=tmp_path, sources=sources, alert_max_age_days=3650, follow_upvotes=upvotes
    )


@pytest.fixture
async def world(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    upvotes = getattr(request, "param", 50)
    # A CLI run earlier in the session may have left logging aimed at a closed stream.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    async with ScriptedServer() as server:
        settings = _settings(tmp_path, server, upvotes)
        sources = json.dumps([s.model_dump(mode="json") for s in settings.sources])
        monkeypatch.setenv("PAPERBELL_DATA_DIR", str(tmp_path))  # for the CLI, in this process
        monkeypatch.setenv("PAPERBELL_SOURCES", sources)
        store = await open_sqlite_store(settings.database_path)
        try:
            service = await build_service(settings, store, clock=_now)
            yield World(settings, store, service, server, RecordingNotifier(Channel.EMAIL))
        finally:
            await store.close()


async def _received_and_followed(world: World, hf: bytes = b"[]") -> User:
    """Ada subscribes, gets the paper's alert (v1), and follows it."""
    ada = await world.person("ada@example.org")
    await world.service.subscribe(ada.owner, "sparse attention", INSTANT)
    world.listing("arxiv_api_follow_v1.xml", hf)
    await world.run()
    assert [i.paper.key for m in world.alerts() for i in m.items] == [KEY]
    _, new = await world.service.follow(ada.owner, f"https://arxiv.org/abs/{KEY}v1", Channel.EMAIL)
    assert new
    return ada


# --- one scenario per change ----------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    api: str  # the arXiv API's answer on the second cycle
    hf_before: bytes
    hf_after: bytes
    headline: str
    lines: tuple[str, ...]


SCENARIOS = [
    Scenario(
        "new version",
        "arxiv_api_follow_v2.xml",
        b"[]",
        b"[]",
        "new version v2 (was v1)",
        (
            "title: {+Learned+} Sparse Attention Routing for …",
            "abstract: … attention reads documents of [-a-] {+two+} million tokens. On "
            "long-context benchmarks the router keeps [-97%-] {+98%+} of dense accuracy at …",
            "authors: Mara Quint, Tomás Ribeiro, {+Ines Valk+}",
            "comments: [-12-] {+14+} pages, [-5 figures-] {+6 figures; v2 adds a 2M-token "
            "benchmark+}",
            "journal reference: {+Proc. NeurIPS 2026 Workshop on Long Context+}",
        ),
    ),
    Scenario(
        "code released",
        "arxiv_api_follow_v1.xml",
        hf_day(12),
        hf_day(12, CODE),
        "code released",
        (f"repository: {CODE}",),
    ),
    Scenario(
        "upvote threshold",
        "arxiv_api_follow_v1.xml",
        hf_day(12),
        hf_day(64),
        "reached 64 upvotes on Hugging Face",
        (),
    ),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_a_followed_paper_that_changes_brings_one_note(world: World, case: Scenario) -> None:
    await _received_and_followed(world, case.hf_before)
    assert world.notes() == []  # following is quiet; nothing changed yet
    world.listing(case.api, case.hf_after)
    await world.run()
    [note] = world.notes()
    assert note.paper_key == KEY and note.headline == case.headline
    assert note.lines == case.lines
    assert note.recipient.address == "ada@example.org"
    assert len(world.alerts()) == 1  # a new version is never announced as a new paper
    await world.run()  # the same listing again: nothing new to say
    assert len(world.notes()) == 1


async def test_the_version_note_goes_out_as_mail_over_smtp(world: World) -> None:
    await _received_and_followed(world)
    async with SmtpTestServer() as server:
        world.smtp = SmtpNotifier(server.settings(), EmailSettings())
        world.listing("arxiv_api_follow_v2.xml")
        await world.run()
        await world.smtp.close()
    [mail] = [r.message for r in server.received]
    assert mail["To"] == "ada@example.org"
    assert mail["Subject"] == (
        "paperbell · new version v2 (was v1): Learned Sparse Attention Routing for "
        "Long-Context Transformers"
    )
    body = mail.get_body(("plain",))
    assert body is not None
    assert "authors: Mara Quint, Tomás Ribeiro, {+Ines Valk+}" in body.get_content()
    [row] = [d for d in await world.store.list_deliveries() if d.key.startswith("follow:")]
    assert str(row.state) == "sent"


async def test_a_paper_nobody_follows_changes_quietly(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.service.subscribe(ada.owner, "sparse attention", INSTANT)
    world.listing("arxiv_api_follow_v1.xml")
    await world.run()
    world.listing("arxiv_api_follow_v2.xml", hf_day(80, CODE))
    await world.run()
    assert world.notes() == [] and len(world.alerts()) == 1
    assert await world.store.paper_change_log([KEY]) == {}


@pytest.mark.parametrize("world", [0], indirect=True)
async def test_upvote_notes_off_at_zero(world: World) -> None:
    await _received_and_followed(world, hf_day(12))
    world.listing("arxiv_api_follow_v1.xml", hf_day(500))
    await world.run()
    assert world.notes() == []


async def test_unfollowed_paper_brings_no_note(world: World) -> None:
    ada = await _received_and_followed(world)
    assert await world.service.unfollow(ada.owner, f"{KEY}v1") == KEY
    world.listing("arxiv_api_follow_v2.xml")
    await world.run()
    assert world.notes() == []


# --- the command line ---------------------------------------------------------------------


async def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()  # only what the command itself says
    try:
        code = await asyncio.to_thread(main, list(args))
    finally:  # the CLI logs to this test's captured stderr: not past it
        root.handlers[:], root.level = handlers, level
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_cli_follow_list_and_unfollow(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = await world.person("ada@example.org")
    await world.service.subscribe(ada.owner, "sparse attention", INSTANT)
    world.listing("arxiv_api_follow_v1.xml")
    await world.run()
    addr = ("--email", "ada@example.org")
    code, out, _ = await _cli(capsys, "follow", *addr, f"https://huggingface.co/papers/{KEY}")
    assert code == 0
    assert out.strip() == (
        f"now following {KEY} (Sparse Attention Routing for Long-Context Transformers): "
        "a note by email when it changes"
    )
    code, out, _ = await _cli(capsys, "follow", *addr, f"{KEY}v1")
    assert code == 0 and out.startswith(f"already following {KEY}")
    world.listing("arxiv_api_follow_v2.xml")
    await world.run()
    code, out, _ = await _cli(capsys, "follow", *addr, "--list")
    assert code == 0
    assert out.splitlines()[0].startswith(f"{KEY}  Learned Sparse Attention Routing")
    assert out.splitlines()[1].endswith("UTC  new version v2 (was v1)")
    code, out, _ = await _cli(capsys, "follow", *addr, "--list", "--json")
    [item] = json.loads(out)
    assert item["paper"] == KEY and item["channel"] == "email"
    [change] = item["changes"]
    assert change["kind"] == "version" and change["text"] == "new version v2 (was v1)"
    assert change["lines"][2] == "authors: Mara Quint, Tomás Ribeiro, {+Ines Valk+}"
    assert (await _cli(capsys, "unfollow", *addr, KEY))[1].strip() == f"stopped following {KEY}"
    code, out, _ = await _cli(capsys, "follow", *addr, "--list")
    assert out.startswith("you follow no paper")


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (("follow", "2611.99999"), 1, "paperbell has never seen paper 2611.99999: only papers "
         "it sent you can be followed"),
        (("follow", "2611.04321"), 2, "you did not receive paper 2611.04321: only papers "
         "paperbell sent you can be followed (ask `why` about it to see where it stopped)"),
        (("follow", "nonsense"), 2, "'nonsense' is not a paper id: give an arXiv id "
         "(2406.11779 or 2406.11779v2) or an arxiv.org/abs, arxiv.org/pdf or "
         "huggingface.co/papers URL"),
        (("unfollow", "2611.04321"), 1, "you do not follow paper 2611.04321: nothing to stop"),
        (("follow",), 2, "give a paper ID to follow, or --list to see the papers you follow"),
        (("follow", "--json", "2611.04321"), 2, "--json goes with --list"),
    ],
)  # fmt: skip
async def test_cli_errors_are_one_clear_line(
    world: World,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    error: str,
) -> None:
    await world.person("ada@example.org")  # no subscription: receives nothing
    world.listing("arxiv_api_follow_v1.xml")
    await world.run()
    command, *rest = args
    got, out, err = await _cli(capsys, command, "--email", "ada@example.org", *rest)
    assert (got, out) == (code, "")
    assert err.strip().splitlines() == [f"paperbell: {error}"]


# --- why: a paper never seen, its primary category asked of arXiv --------------------------


@pytest.mark.parametrize(
    ("key", "reply", "line"),
    [
        ("2605.30001", "arxiv_api_current.xml",
         "its primary category is cs.CL, not in your arXiv feeds (cs.LG)"),
        ("2606.01234", "arxiv_api_current.xml",
         "arXiv lists it under cs.LG, which your arXiv feeds (cs.LG) include: it was "
         "announced 2026-06-01, when none of your sources fetched that listing"),
        ("2605.99999", "arxiv_api_empty.xml", "arXiv knows no paper 2605.99999"),
    ],
)  # fmt: skip
async def test_why_not_seen_asks_arxiv_for_the_primary_category(
    world: World, key: str, reply: str, line: str
) -> None:
    ada = await world.person("ada@example.org")
    world.listing("arxiv_api_follow_v1.xml")
    await world.run()
    world.server.script(f"{API}?id_list={key}&max_results=1", Reply(200, fixture(reply)))
    why = await world.service.why(ada, f"https://arxiv.org/abs/{key}v1")
    assert str(why.verdict) == "not_seen"
    assert why.steps[0].evidence[0] == line
    assert "Hugging Face Daily Papers (last 1 days) never featured it" in " ".join(
        why.steps[0].evidence
    )
