"""Why (not) this paper: one scenario per verdict and reason, each through the real path.

Sources answer on a loopback server (an arXiv RSS listing and a plain feed), the ingest
cycle stores what they list, the daemon's match step matches, the dispatcher sends to a
recording notifier; then ``Paperbell.why`` replays the paper's path and the CLI shows it.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from bot.cli.main import main
from bot.daemon.resources import build_service
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.planning import plan_matches
from bot.delivery.why_model import Reason, Verdict, Why
from bot.errors import PermanentDeliveryError, TransientDeliveryError, UsageError
from bot.matching.step import match_cycle
from bot.messages import Channel
from bot.models import DeliveryMode, SourceKind, User
from bot.service import Paperbell
from bot.settings import EmailSettings, Settings, SourceConfig, load_settings
from bot.sources import build_source
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.protocols import Store
from bot.store.records import DeliveryState
from bot.store.sqlite.store import open_sqlite_store
from tests.support_http import Reply, ScriptedServer
from tests.support_outbox import RecordingNotifier

INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
DIGEST = frozenset({DeliveryMode.EMAIL_DIGEST})
SURVEY = "2612.00001"  # cs.CV, a survey of video diffusion
SPARSE = "2612.00002"  # cs.LG, sparse attention
OLD = "2001.00003"  # listed by the feed, published years before it was seen


@dataclass(frozen=True)
class Listed:
    key: str
    title: str
    abstract: str
    categories: tuple[str, ...]


LISTING = (
    Listed(SURVEY, "Video Diffusion Models: A Survey",
           "We survey diffusion models for video generation.", ("cs.CV", "cs.LG")),
    Listed(SPARSE, "Sparse Attention for Long Transformers",
           "Sparse attention lets transformers read long documents.", ("cs.LG",)),
)  # fmt: skip


def arxiv_rss(items: Sequence[Listed], day: datetime) -> bytes:
    """An arXiv RSS listing as rss.arxiv.org writes it (see tests/fixtures/sources)."""
    body = "".join(
        f"<item><title>{escape(i.title)}</title><link>https://arxiv.org/abs/{i.key}</link>"
        f"<description>arXiv:{i.key}v1 Announce Type: new \nAbstract: {escape(i.abstract)}"
        f'</description><guid isPermaLink="false">oai:arXiv.org:{i.key}v1</guid>'
        + "".join(f"<category>{c}</category>" for c in i.categories)
        + "<arxiv:announce_type>new</arxiv:announce_type>"
        "<dc:creator>Ada Lovelace, Alan Turing</dc:creator></item>"
        for i in items
    )
    ns = 'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    head = f"<title>cs.LG updates on arXiv.org</title><pubDate>{format_datetime(day)}</pubDate>"
    return f'<?xml version="1.0"?><rss {ns} version="2.0"><channel>{head}{body}</channel></rss>'.encode()  # noqa: E501


def old_feed() -> bytes:
    item = (
        f"<item><title>An Old Paper on Attention</title><link>https://arxiv.org/abs/{OLD}</link>"
        f"<guid>{OLD}</guid><pubDate>Wed, 01 Jan 2020 00:00:00 GMT</pubDate>"
        "<description>Attention, long ago.</description></item>"
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{item}</channel></rss>'.encode()  # noqa: E501


@dataclass
class World:
    settings: Settings
    store: Store
    service: Paperbell
    server: ScriptedServer
    email: RecordingNotifier

    async def person(self, address: str, *, confirm: bool = True, **changes: object) -> User:
        now = datetime.now(UTC)
        user = await self.store.get_or_create_user(discord_id=f"d-{address}", now=now)
        await self.store.set_email(user.id, address, now)
        if confirm:
            await self.store.verify_email(user.id, address, now)
        return await self.store.update_user(user.id, now, **changes)

    async def subscribe(self, user: User, query: str, deliver: frozenset[DeliveryMode]) -> None:
        await self.service.subscribe(user.owner, query, deliver)

    async def run(self) -> None:
        """One daemon cycle: ingest every source, match, then send what is due."""
        async with HttpClient(self.settings.http) as http:
            sources = [build_source(c, http) for c in self.settings.sources]
            await run_cycle(sources, self.store, alert_max_age_days=3)
        await match_cycle(self.service.index, self.store, datetime.now(UTC), plan_matches)
        links = self.service.links
        dispatcher = Dispatcher(
            self.store, {Channel.EMAIL: self.email}, links, _now, random.Random(1)
        )
        await dispatcher.run_once()

    async def why(self, address: str, paper: str) -> Why:
        user = await self.store.find_user(email=address)
        assert user is not None
        return await self.service.why(user, paper)


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async with ScriptedServer() as server:
        server.script("/rss/cs.LG+cs.CL", Reply(200, arxiv_rss(LISTING, datetime.now(UTC))))
        server.script("/old.xml", Reply(200, old_feed()))
        sources = [
            SourceConfig(
                kind=SourceKind.ARXIV_RSS,
                url=server.url("/rss/cs.LG+cs.CL"),
                min_request_interval=0,
            ),
            SourceConfig(kind=SourceKind.FEED, url=server.url("/old.xml"), name="old"),
        ]
        settings = load_settings(
            data_dir=tmp_path,
            sources=sources,
            alert_max_age_days=3,
            email=EmailSettings(digest_max_papers=1),
        )
        for name, value in (
            ("PAPERBELL_DATA_DIR", str(tmp_path)),
            ("PAPERBELL_SOURCES", json.dumps([s.model_dump(mode="json") for s in sources])),
            ("PAPERBELL_ALERT_MAX_AGE_DAYS", "3"),
        ):
            monkeypatch.setenv(name, value)  # for the CLI, in this process
        store = await open_sqlite_store(settings.database_path)
        try:
            service = await build_service(settings, store, clock=_now)
            yield World(settings, store, service, server, RecordingNotifier(Channel.EMAIL))
        finally:
            await store.close()


# --- one scenario per verdict -------------------------------------------------------------


async def test_not_seen_names_the_sources_that_would_list_it(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", "https://arxiv.org/abs/2612.09999v2")
    assert why.verdict is Verdict.NOT_SEEN
    evidence = " ".join(why.steps[0].evidence)
    assert "cs.LG, cs.CL" in evidence and "primary category" in evidence
    assert "Hugging Face Daily Papers is not among your sources" in evidence


async def test_too_old_says_published_and_seen(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", OLD)
    assert why.verdict is Verdict.TOO_OLD
    assert "published 2020-01-01" in why.summary and "3 day(s)" in why.summary


async def test_no_match_names_the_excluding_clause_and_a_suggestion(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "diffusion -survey", INSTANT)
    await world.subscribe(ada, "cat:cs.CV attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", f"{SURVEY}v1")
    assert why.verdict is Verdict.NO_MATCH
    first, second = why.steps[-1].subscriptions
    assert first.clause == "NOT survey"
    assert first.reason == '`NOT survey` excluded it: the paper says "Survey"'
    assert first.suggestion == "diffusion" and first.suggestion_hits == 1
    assert first.suggestion_total == 2  # the papers of the last 7 days, as test-query counts
    assert second.clause == "attention"
    assert why.suggestion == "diffusion"
    why = await world.why("ada@example.org", SPARSE)
    assert why.steps[-1].subscriptions[1].reason == "`cat:cs.cv`: but the paper is cs.LG"
    assert why.steps[-1].subscriptions[1].suggestion == "attention"


async def test_delivered_says_when_where_and_which_message(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    assert len(world.email.sent) == 1
    why = await world.why("ada@example.org", f"https://huggingface.co/papers/{SPARSE}")
    assert why.verdict is Verdict.DELIVERED
    assert "delivered in an instant email alert on" in why.summary
    [row] = await world.store.list_deliveries(ada.owner, DeliveryState.SENT)
    assert f"(message {row.key})" in why.summary  # which message, by its outbox key


# --- matched, not delivered: one scenario per reason --------------------------------------


async def test_paused_user(world: World) -> None:
    ada = await world.person("ada@example.org", paused=True)
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.PAUSED)
    assert "paused" in why.summary


async def test_unconfirmed_address(world: World) -> None:
    ada = await world.person("ada@example.org", confirm=False)
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.UNCONFIRMED)
    assert "email address not confirmed" in why.summary


async def test_suppressed_after_bounces(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    await world.store.suppress_email("ada@example.org", "3 deliveries failed", datetime.now(UTC))
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.SUPPRESSED)
    assert "3 deliveries failed" in why.summary


async def test_held_for_the_digest(world: World) -> None:
    ada = await world.person("ada@example.org", digest_hour=(datetime.now(UTC).hour + 12) % 24)
    await world.subscribe(ada, "attention", DIGEST)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.HELD_FOR_DIGEST)
    assert "held for your next email digest" in why.summary


async def test_failed_on_the_channel_shows_state_and_error(world: World) -> None:
    world.email.fail = lambda _m: PermanentDeliveryError("550 mailbox unavailable")
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.FAILED)
    assert "550 mailbox unavailable" in why.summary
    assert "outbox state failed" in why.steps[-1].evidence[0]


async def test_below_min_relevance(world: World) -> None:
    """The reader's model (from 👍 / 👎) scores the paper under the subscription's floor:
    the instant alert waits for the digest."""
    day = datetime.now(UTC)
    world.server.script(
        "/rss/cs.LG+cs.CL",
        Reply(200, arxiv_rss(LISTING[:1], day)),
        Reply(200, arxiv_rss(LISTING, day)),
    )
    ada = await world.person("ada@example.org")
    await world.run()  # the survey and the old paper arrive first: something to rate
    await world.service.rate(ada.id, like=[OLD], dislike=[SURVEY])
    sub = await world.service.subscribe(ada.owner, "attention", INSTANT, min_relevance=1.0)
    await world.run()  # now the sparse-attention paper
    assert world.email.sent == []
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.BELOW_MIN_RELEVANCE)
    assert f"below min_relevance 1.00 of #{sub.subscription.id}" in why.summary


async def test_capped_behind_and_n_more(world: World) -> None:
    """A digest shows at most PAPERBELL_EMAIL__DIGEST_MAX_PAPERS (1 here): the other
    paper was listed only as "and 1 more"."""
    ada = await world.person("ada@example.org", digest_hour=(datetime.now(UTC).hour + 12) % 24)
    await world.subscribe(ada, "attention OR diffusion", DIGEST)
    await world.run()
    now = datetime.now(UTC)
    assert await world.store.create_digest(ada.owner, now.date(), now) is not None
    await world.run()  # sends it
    assert len(world.email.sent) == 1
    verdicts = [await world.why("ada@example.org", key) for key in (SURVEY, SPARSE)]
    capped = [w for w in verdicts if w.reason is Reason.CAPPED]
    shown = [w for w in verdicts if w.verdict is Verdict.DELIVERED]
    assert len(capped) == 1 and len(shown) == 1
    assert '"and 1 more"' in capped[0].summary
    assert "delivered in your email digest of" in shown[0].summary


async def test_pending_on_a_retry(world: World) -> None:
    world.email.script = [TransientDeliveryError("421 try again later")]
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.PENDING)
    assert "421 try again later" in " ".join(why.steps[-1].evidence)


async def test_a_row_still_on_its_way_comes_first_and_the_others_are_listed(
    world: World,
) -> None:
    """Discord has no notifier in this dispatcher, so its alert stays pending while the
    email alert was held: the paper may still arrive, and the hold is listed too."""
    ada = await world.person("ada@example.org", confirm=False)
    await world.subscribe(ada, "attention", INSTANT | {DeliveryMode.DISCORD})
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.PENDING)
    assert why.summary.startswith("queued on discord, not sent yet")
    assert why.steps[-1].evidence[-1] == (
        "also: alert on email, outbox state suppressed, error: email address not confirmed"
    )


async def test_seen_before_the_subscription_existed(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.run()
    await world.subscribe(ada, "attention", INSTANT)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert why.verdict is Verdict.TOO_OLD
    assert "before your matching subscription existed" in why.summary


async def test_paused_subscription(world: World) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "attention", INSTANT)
    [sub] = await world.store.list_subscriptions(ada.owner)
    await world.store.update_subscription(sub.id, ada.owner, datetime.now(UTC), paused=True)
    await world.run()
    why = await world.why("ada@example.org", SPARSE)
    assert (why.verdict, why.reason) == (Verdict.NOT_DELIVERED, Reason.PAUSED)
    assert f"#{sub.id} would match it but is paused" in why.summary


async def test_bad_input_is_refused(world: World) -> None:
    ada = await world.person("ada@example.org")
    with pytest.raises(UsageError, match="not a paper id"):
        await world.service.why(ada, "not-an-id")
    with pytest.raises(UsageError):
        await world.service.why(ada, "https://example.org/abs/2612.00002")


# --- the command line ---------------------------------------------------------------------


async def test_cli_words_and_json(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ada = await world.person("ada@example.org")
    await world.subscribe(ada, "diffusion -survey", INSTANT)
    await world.run()
    await world.store.close()  # the CLI opens its own
    import asyncio

    code = await asyncio.to_thread(main, ["why", "--email", "ada@example.org", SURVEY])
    out = capsys.readouterr().out
    assert code == 0
    assert "verdict: seen, but no subscription matched" in out
    assert '`NOT survey` excluded it: the paper says "Survey"' in out
    code = await asyncio.to_thread(main, ["why", "--email", "ada@example.org", SURVEY, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["verdict"] == "no_match" and data["suggestion"] == "diffusion"
    assert [s["step"] for s in data["steps"]] == ["sources", "age", "match"]
    assert data["reason"] is None and data["summary"] == "no subscription of yours matched it"
    assert data["steps"][-1]["subscriptions"][0]["clause"] == "NOT survey"
    world.store = await open_sqlite_store(world.settings.database_path)


def test_cli_malformed_id_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["why", "--email", "ada@example.org", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a paper id" in err[0]


def test_cli_unknown_address_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["why", "--email", "nobody@example.org", SPARSE]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no account has the address 'nobody@example.org'" in err[0]
