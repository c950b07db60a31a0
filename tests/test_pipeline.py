"""Subscriptions through the core: subscribe, match a cycle, one record per owner and paper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.daemon.resources import build_service
from bot.delivery.planning import plan_matches, record_matches
from bot.errors import LimitError, NotFoundError, QueryError, UserError
from bot.matching.step import SubscriptionIndex, match_cycle
from bot.messages import Channel
from bot.models import (
    DeliveryMode,
    IngestReport,
    Links,
    Owner,
    Paper,
    Sighting,
    SourceState,
)
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import DeliveryKind, Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DIGEST = frozenset({DeliveryMode.EMAIL_DIGEST})
DM = frozenset({DeliveryMode.DISCORD})


def paper(key: str, title: str, abstract: str = "", **extra: object) -> Paper:
    fields: dict[str, object] = {
        "published": NOW - timedelta(days=1),
        "sources": ("arxiv",),
        "categories": ("cs.LG",),
        "links": Links(abs=f"https://arxiv.org/abs/{key}"),
    }
    fields.update(extra)
    return Paper(key=key, title=title, abstract=abstract, **fields)  # type: ignore[arg-type]


@pytest.fixture
async def service(store: Store, tmp_path: Path) -> Paperbell:
    settings = load_settings(data_dir=tmp_path, max_subscriptions=3)
    return await build_service(settings, store, clock=lambda: NOW)


async def ingest(store: Store, *papers: Paper) -> IngestReport:
    result = await store.ingest([Sighting(p) for p in papers], SourceState("test"), NOW)
    return IngestReport((), result.new, result.updated)


async def test_two_subscriptions_of_one_user_make_one_record(
    service: Paperbell, store: Store
) -> None:
    ada = await service.user_for_discord("111")
    first = await service.subscribe(ada.owner, "diffusion", DM)
    second = await service.subscribe(ada.owner, "title:video", DM)
    await ingest(store, paper("2611.00001", "Video diffusion at scale"))
    summary = await match_cycle(service.index, store, NOW, plan_matches)
    assert (summary.matched, summary.owners) == (1, 1)
    records = await store.get_matches(ada.owner, ["2611.00001"])
    record = records["2611.00001"]
    assert record.sub_ids == (first.subscription.id, second.subscription.id)
    assert {w.lower() for w in record.words} == {"video", "diffusion"}


async def test_a_paper_reaches_an_owner_once(service: Paperbell, store: Store) -> None:
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, "diffusion", DM)
    await ingest(store, paper("2611.00001", "Diffusion"))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 1
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 0


async def test_each_owner_hears_separately(service: Paperbell, store: Store) -> None:
    ada = await service.user_for_discord("111")
    bob = await service.user_for_discord("222")
    await service.subscribe(ada.owner, "diffusion", DM)
    await service.subscribe(bob.owner, "diffusion OR gan", DM)
    await service.subscribe(Owner.channel("999"), "cat:cs.LG", DM, guild_id="5")
    await ingest(store, paper("2611.00001", "Diffusion"), paper("2611.00002", "Other"))
    summary = await match_cycle(service.index, store, NOW, plan_matches)
    assert (summary.matched, summary.owners) == (4, 3)


async def test_replacement_never_matches_text_subscriptions(
    service: Paperbell, store: Store
) -> None:
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, "diffusion", DM)
    await ingest(store, paper("2611.00001", "Something else"))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 0
    updated = await ingest(store, paper("2611.00001", "Something else, now diffusion", version=2))
    assert updated.updated_papers and not updated.new_papers
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 0


async def test_paper_reaching_upvotes_matches_on_a_later_poll(
    service: Paperbell, store: Store
) -> None:
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, "diffusion upvotes:>=20", DM)
    await ingest(store, paper("2611.00001", "Diffusion", upvotes=3, sources=("hf",)))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 0
    await ingest(store, paper("2611.00001", "Diffusion", upvotes=25, sources=("hf",)))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 1


async def test_unsubscribe_takes_effect_at_once(service: Paperbell, store: Store) -> None:
    ada = await service.user_for_discord("111")
    done = await service.subscribe(ada.owner, "diffusion", DM)
    await service.unsubscribe(ada.owner, done.subscription.id)
    await ingest(store, paper("2611.00001", "Diffusion"))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 0
    with pytest.raises(NotFoundError):
        await service.unsubscribe(ada.owner, done.subscription.id)


async def test_nobody_removes_another_users_subscription(service: Paperbell) -> None:
    ada = await service.user_for_discord("111")
    bob = await service.user_for_discord("222")
    done = await service.subscribe(ada.owner, "diffusion", DM)
    with pytest.raises(NotFoundError):
        await service.unsubscribe(bob.owner, done.subscription.id)
    assert [v.subscription.id for v in await service.subscriptions(ada.owner)] == [
        done.subscription.id
    ]


async def test_subscription_limit_and_bad_queries(service: Paperbell) -> None:
    ada = await service.user_for_discord("111")
    for word in ("one", "two", "three"):
        await service.subscribe(ada.owner, word, DM)
    with pytest.raises(LimitError):
        await service.subscribe(ada.owner, "four", DM)
    with pytest.raises(QueryError, match="column"):
        await service.subscribe(ada.owner, '"open', DM)
    with pytest.raises(QueryError):
        await service.subscribe(ada.owner, "source:nowhere", DM)


async def test_subscriptions_are_reloaded_from_the_store(
    service: Paperbell, store: Store, tmp_path: Path
) -> None:
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, 'author:"Yann LeCun" OR cat:cs.*', DM)
    fresh = await build_service(service.settings, store, clock=lambda: NOW)
    assert len(fresh.index) == 1
    await ingest(store, paper("2611.00009", "X", authors=("Yann LeCun",)))
    assert (await match_cycle(fresh.index, store, NOW, plan_matches)).matched == 1


async def test_query_tester_counts_recent_papers(service: Paperbell, store: Store) -> None:
    old = paper("2601.00001", "Diffusion of old", published=NOW - timedelta(days=30))
    await ingest(store, old, paper("2611.00001", "Diffusion models"), paper("2611.2", "Other"))
    result = await service.test_query("diffusion", days=7)
    assert (result.count, result.total) == (1, 2)
    assert result.keys == ("2611.00001",)
    assert result.top[0].words == ("Diffusion",)
    assert result.share == 0.5 and not result.too_many


async def test_query_tester_warns_when_it_would_flood(service: Paperbell, store: Store) -> None:
    many = [paper(f"2611.{n:05d}", f"Learning paper {n}") for n in range(160)]
    await ingest(store, *many)
    result = await service.test_query("learning", days=7)
    assert result.count == 160 and result.too_many


async def test_settings_are_validated(service: Paperbell) -> None:
    ada = await service.user_for_discord("111")
    user = await service.update_settings(ada.id, timezone="Europe/Berlin", digest_hour=7)
    assert (user.timezone, user.digest_hour) == ("Europe/Berlin", 7)
    with pytest.raises(UserError, match="time zone"):
        await service.update_settings(ada.id, timezone="Mars/Olympus")
    with pytest.raises(UserError, match="between 0 and 23"):
        await service.update_settings(ada.id, digest_hour=24)
    assert (await service.update_settings(ada.id, paused=True)).paused


async def test_papers_stored_but_never_matched_are_matched_after_a_restart(
    service: Paperbell, store: Store
) -> None:
    """A crash between storing papers and matching them delays alerts, never loses them."""
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, "diffusion", DM)
    await ingest(store, paper("2611.00001", "Diffusion"))  # ...and the process dies here
    restarted = await build_service(service.settings, store, clock=lambda: NOW)
    assert (await match_cycle(restarted.index, store, NOW, plan_matches)).matched == 1
    assert (await store.queued_for_matching()).versions == {}


async def test_the_same_paper_from_another_source_is_not_news_again(
    service: Paperbell, store: Store
) -> None:
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, "diffusion", DM)
    await ingest(store, paper("2611.00001", "Diffusion"))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 1
    await ingest(store, paper("2611.00001", "Diffusion", sources=("hf",), upvotes=4))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 0


async def test_an_upvote_change_stored_while_matching_is_matched_next_time(
    service: Paperbell, store: Store
) -> None:
    """The match step clears only the queue versions it read: a paper queued again while it
    was matching (HF reported more upvotes) stays queued for the next step."""
    ada = await service.user_for_discord("111")
    await service.subscribe(ada.owner, "diffusion upvotes:>=20", DM)
    await ingest(store, paper("2611.00001", "Diffusion", upvotes=3, sources=("hf",)))
    read = await store.queued_for_matching()  # a match step starts and reads the queue...
    await ingest(store, paper("2611.00001", "Diffusion", upvotes=25, sources=("hf",)))
    await record_matches(store, [], NOW, matched=read.versions)  # ...and finishes
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 1


async def test_a_delivery_change_made_elsewhere_is_planned_with(
    service: Paperbell, store: Store
) -> None:
    """The step plans from its compiled index: a change another process made (the CLI, an
    unsubscribe link) must reach it before the next chunk, not at the next restart."""
    ada = await service.user_for_discord("111")
    await store.set_email(ada.id, "ada@example.org", NOW)
    done = await service.subscribe(ada.owner, "diffusion", DM)
    await match_cycle(service.index, store, NOW, plan_matches)  # the index is synced
    email = frozenset({DeliveryMode.EMAIL_INSTANT})
    await store.set_subscription_delivery(done.subscription.id, ada.owner, email, NOW)
    await ingest(store, paper("2611.00001", "Diffusion"))
    assert (await match_cycle(service.index, store, NOW, plan_matches)).matched == 1
    rows = await store.list_deliveries(ada.owner)
    channels = {d.channel for d in rows if d.kind is DeliveryKind.ALERT}
    assert channels == {Channel.EMAIL}
    assert service.index.get(done.subscription.id) == await store.get_subscription(
        done.subscription.id
    )


async def test_a_subscription_paused_elsewhere_leaves_the_index_until_resumed(
    store: Store, tmp_path: Path
) -> None:
    """Paused by another process (the web, the CLI): the next sync drops it from
    matching, and resuming brings it back."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    user = await store.get_or_create_user(discord_id="1", now=now)
    sub = await store.add_subscription(
        user.owner, "llm", "llm", frozenset({DeliveryMode.DISCORD}), now, limit=5
    )
    index = SubscriptionIndex()
    await index.load(store)
    assert index.get(sub.id) == sub
    await store.update_subscription(sub.id, user.owner, now, paused=True)
    await index.sync(store)
    assert index.get(sub.id) is None
    await store.update_subscription(sub.id, user.owner, now, paused=False)
    await index.sync(store)
    resumed = index.get(sub.id)
    assert resumed is not None and not resumed.paused


async def test_the_index_catches_up_with_the_store_a_page_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read two at a time, a sync still sees every page: subscriptions added, removed,
    paused and rewritten elsewhere land in the index exactly as stored."""
    monkeypatch.setattr("bot.store.paging.SUBSCRIPTION_PAGE", 2)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    modes = frozenset({DeliveryMode.DISCORD})
    users = [await store.get_or_create_user(discord_id=str(n), now=now) for n in range(3)]
    subs = [
        await store.add_subscription(users[n % 3].owner, f"q{n}", f"q{n}", modes, now, limit=9)
        for n in range(7)
    ]
    index = SubscriptionIndex()
    await index.load(store)
    assert [index.get(s.id) for s in subs] == subs
    await store.remove_subscription(subs[0].id, subs[0].owner, now)
    await store.update_subscription(subs[3].id, subs[3].owner, now, paused=True)
    await store.update_subscription(subs[5].id, subs[5].owner, now, query=("q55", "q55"))
    late = await store.add_subscription(users[0].owner, "late", "late", modes, now, limit=9)
    await index.sync(store)
    stored = [s for s in await store.list_subscriptions() if not s.paused]
    assert len(index) == len(stored) == 6
    assert all(index.get(s.id) == s for s in stored)
    assert index.get(subs[0].id) is None and index.get(subs[3].id) is None
    assert index.get(late.id) == late


async def test_a_service_built_without_its_index_compiles_nothing_yet_matches_alike(
    store: Store, tmp_path: Path
) -> None:
    # A CLI command that never matches skips compiling every subscription (seconds at
    # 50,000); were the step run on that service anyway, its first sync compiles them.
    settings = load_settings(data_dir=tmp_path)
    full = await build_service(settings, store, clock=lambda: NOW)
    ada = await full.user_for_discord("111")
    await full.subscribe(ada.owner, "diffusion", DM)
    lean = await build_service(settings, store, clock=lambda: NOW, index=False)
    assert len(lean.index) == 0 and len(full.index) == 1
    await lean.subscribe(ada.owner, "title:video", DM)  # edits the empty index: no harm
    await ingest(store, paper("2611.00001", "Video diffusion at scale"))
    summary = await match_cycle(lean.index, store, NOW, plan_matches)
    assert (summary.matched, len(lean.index)) == (1, 2)
    record = (await store.get_matches(ada.owner, ["2611.00001"]))["2611.00001"]
    assert {w.lower() for w in record.words} == {"video", "diffusion"}
