"""Digests: when they are due (DST, downtime, frequencies) and what they hold."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.daemon.resources import build_service
from bot.delivery import digests
from bot.delivery.digests import DigestPlanner, due_local_date, slot, source_notes
from bot.delivery.planning import record_matches
from bot.models import DigestFrequency, Owner, SourceKind, SourceState, User
from bot.settings import Settings, SourceConfig
from bot.store.protocols import Delivery, DueDigest, Store
from tests.support_outbox import (
    DIGEST,
    INSTANT,
    LINKS,
    NOW,
    FrozenClock,
    add_papers,
    add_papers_of,
    paper,
    record,
    tick_made,
    verified_user,
)

LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
# (zone, local date of the change): spring forward, then fall back.
DST_DAYS = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
]


def user(tz: str = "UTC", hour: int = 8, **fields: object) -> User:
    base = User(id=1, created_at=LONG_AGO, timezone=tz, digest_hour=hour)
    return replace(base, **fields)  # type: ignore[arg-type]


def local(tz: str, day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def midnight_before(tz: str, day: date) -> datetime:
    """Local midnight starting the day before ``day``, in UTC."""
    eve = day - timedelta(days=1)
    return datetime.combine(eve, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def ticks(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    while start < end:
        yield start
        start += step


# --- due_local_date: pure ---------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "day"), DST_DAYS)
@pytest.mark.parametrize("hour", [2, 8])
def test_each_local_date_falls_due_once_across_dst(tz: str, day: date, hour: int) -> None:
    someone = user(tz, hour)
    start = midnight_before(tz, day)
    changes: list[tuple[date, datetime]] = []
    last = None
    for now in ticks(start, start + timedelta(days=3), timedelta(minutes=5)):
        due = due_local_date(someone, now)
        if due != last:
            assert due is not None
            changes.append((due, now))
            last = due
    dates = [d for d, _ in changes]
    assert dates == [day - timedelta(days=2 - n) for n in range(4)]  # day-2 (from the start)..day+1
    for due, first_seen in changes[1:]:
        assert first_seen == slot(someone, due)  # due exactly from its slot, not before


def test_skipped_and_repeated_hours_resolve_to_one_instant() -> None:
    ny, berlin = "America/New_York", "Europe/Berlin"
    # 02:00 does not exist on these days: the slot is the first instant after the gap.
    assert slot(user(ny, 2), date(2026, 3, 8)) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert slot(user(berlin, 2), date(2026, 3, 29)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # 01:00 (New York) and 02:00 (Berlin) happen twice: the first one counts.
    assert slot(user(ny, 1), date(2026, 11, 1)) == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    assert slot(user(berlin, 2), date(2026, 10, 25)) == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)


def test_weekdays_weekly_and_off() -> None:
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert due_local_date(user(digest_frequency=DigestFrequency.WEEKDAYS), saturday) == date(
        2026, 11, 20
    )
    wednesdays = user(digest_frequency=DigestFrequency.WEEKLY, digest_weekday=2)
    assert due_local_date(wednesdays, saturday) == date(2026, 11, 18)
    on_the_day = datetime(2026, 11, 18, 7, 59, tzinfo=UTC)
    assert due_local_date(wednesdays, on_the_day) == date(2026, 11, 11)
    assert due_local_date(user(digest_frequency=DigestFrequency.OFF), saturday) is None


def test_no_slot_from_before_the_account_existed() -> None:
    newcomer = user(created_at=datetime(2026, 11, 21, 7, 0, tzinfo=UTC))
    assert due_local_date(newcomer, datetime(2026, 11, 21, 7, 30, tzinfo=UTC)) is None
    assert due_local_date(newcomer, datetime(2026, 11, 21, 8, 0, tzinfo=UTC)) == date(2026, 11, 21)


# --- the planner over a real store ------------------------------------------------------------


async def digest_user(store: Store, tz: str, hour: int, *, paused: bool = False) -> User:
    someone = await verified_user(store, now=LONG_AGO, timezone=tz, digest_hour=hour, paused=paused)
    await store.add_subscription(someone.owner, "graph", "graph", DIGEST, LONG_AGO, limit=5)
    return someone


async def match_now(store: Store, owner: Owner, key: str, at: datetime) -> None:
    [sub] = await store.list_subscriptions(owner)
    await add_papers(store, key, now=at)
    await record_matches(store, [record(owner, key, sub.id, at=at)], at)


@pytest.mark.parametrize(("tz", "day"), DST_DAYS)
@pytest.mark.parametrize("hour", [2, 8])
async def test_one_digest_per_local_date_across_dst(
    store: Store, tz: str, day: date, hour: int
) -> None:
    someone = await digest_user(store, tz, hour)
    planner = DigestPlanner(store, FrozenClock())
    start = midnight_before(tz, day)
    await match_now(store, someone.owner, "p-start", start)
    made: list[Delivery] = []
    for n, now in enumerate(ticks(start, start + timedelta(days=3), timedelta(minutes=40))):
        created = await tick_made(planner, store, now)
        made += created
        if created:  # something new for the next digest to carry
            await match_now(store, someone.owner, f"p{n}", now)
    assert [d.digest_date for d in made] == [day - timedelta(days=1), day, day + timedelta(days=1)]
    for digest in made:
        assert digest.digest_date is not None
        due = slot(someone, digest.digest_date)
        assert due <= digest.created_at < due + timedelta(minutes=40)


async def test_downtime_gives_one_catch_up_digest(store: Store) -> None:
    tz = "Europe/Berlin"
    someone = await digest_user(store, tz, 8)
    before = local(tz, date(2026, 11, 17), 12)
    await match_now(store, someone.owner, "p1", before)
    planner = DigestPlanner(store, FrozenClock())
    back = local(tz, date(2026, 11, 20), 10)  # down for three days of digests
    made = [d for now in ticks(back, back + timedelta(hours=20), timedelta(minutes=30))
            for d in await tick_made(planner, store, now)]  # fmt: skip
    assert [d.digest_date for d in made] == [date(2026, 11, 20)]
    [catch_up] = made
    assert [r.paper_key for r in await store.digest_matches(catch_up.id)] == ["p1"]


async def test_a_tick_creates_every_due_digest_a_chunk_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "CREATE_CHUNK", 2)  # five users: three calls of the store
    monkeypatch.setattr("bot.store.paging.USER_PAGE", 2)  # and three pages of users
    owners = []
    for n in range(5):
        someone = await verified_user(
            store, f"u{n}@example.org", now=LONG_AGO, timezone="UTC", digest_hour=8
        )
        await store.add_subscription(someone.owner, "graph", "graph", DIGEST, LONG_AGO, limit=5)
        await match_now(store, someone.owner, f"p{n}", LONG_AGO)
        owners.append(someone.owner)
    create = store.create_digests
    sizes: list[int] = []

    async def create_counted(due: Sequence[DueDigest], now: datetime, **kw: bool) -> list[Delivery]:
        sizes.append(len(due))
        return await create(due, now, **kw)

    monkeypatch.setattr(store, "create_digests", create_counted)
    made = await tick_made(DigestPlanner(store, FrozenClock()), store, NOW)
    assert sorted(d.owner for d in made) == sorted(owners)
    assert sizes == [2, 2, 1]
    assert await DigestPlanner(store, FrozenClock()).tick(NOW) == 0  # never twice a date


async def test_a_match_after_the_slot_waits_for_the_next_one(store: Store) -> None:
    someone = await digest_user(store, "UTC", 8)
    await match_now(store, someone.owner, "night", datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    planner = DigestPlanner(store, FrozenClock())
    assert await planner.tick(datetime(2026, 11, 21, 2, 5, tzinfo=UTC)) == 0  # not "yesterday"
    [made] = await tick_made(planner, store, datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
    assert made.digest_date == date(2026, 11, 21)


async def test_paused_suppressed_and_unconfirmed_users(store: Store) -> None:
    paused = await digest_user(store, "UTC", 8, paused=True)
    await match_now(store, paused.owner, "p1", LONG_AGO)
    pending = await store.get_or_create_user(discord_id="new", now=LONG_AGO)
    await store.set_email(pending.id, "new@example.org", LONG_AGO)
    sub = await store.add_subscription(pending.owner, "g", "g", DIGEST, LONG_AGO, limit=5)
    await record_matches(store, [record(pending.owner, "p1", sub.id, at=LONG_AGO)], LONG_AGO)
    assert await DigestPlanner(store, FrozenClock()).tick(NOW) == 0
    assert await store.waiting_digest_matches(paused.owner) == []  # skipped, like alerts
    assert len(await store.waiting_digest_matches(pending.owner)) == 1  # kept for later


async def test_digests_turned_off_drop_what_waited(store: Store) -> None:
    someone = await digest_user(store, "UTC", 8)
    await match_now(store, someone.owner, "p1", LONG_AGO)
    await store.update_user(someone.id, NOW, digest_frequency="off")
    assert await DigestPlanner(store, FrozenClock()).tick(NOW) == 0
    assert await store.waiting_digest_matches(someone.owner) == []


async def test_all_quiet_digest_for_digest_subscribers_only(store: Store) -> None:
    someone = await digest_user(store, "UTC", 8)
    await verified_user(store, "other@example.org", now=LONG_AGO)  # no digest subscription
    made = await tick_made(DigestPlanner(store, FrozenClock(), all_quiet=True), store, NOW)
    assert [(d.owner, d.digest_date) for d in made] == [(someone.owner, date(2026, 11, 21))]


async def test_all_quiet_reads_subscriptions_and_users_a_page_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.store.paging.SUBSCRIPTION_PAGE", 2)
    monkeypatch.setattr("bot.store.paging.USER_PAGE", 2)
    wanting = [(await digest_user(store, "UTC", 8)).owner]
    for n in range(4):
        someone = await verified_user(
            store, f"u{n}@example.org", now=LONG_AGO, timezone="UTC", digest_hour=8
        )
        await store.add_subscription(someone.owner, "x", "x", INSTANT, LONG_AGO, limit=5)
        await store.add_subscription(someone.owner, "y", "y", DIGEST, LONG_AGO, limit=5)
        wanting.append(someone.owner)
    made = await tick_made(DigestPlanner(store, FrozenClock(), all_quiet=True), store, NOW)
    assert sorted(d.owner for d in made) == sorted(wanting)


# --- what a digest holds ----------------------------------------------------------------------


async def test_digest_groups_by_subscription_best_first_with_more(store: Store) -> None:
    someone = await verified_user(store, now=LONG_AGO, timezone="Europe/Berlin")
    a = await store.add_subscription(someone.owner, "A", "a", DIGEST, LONG_AGO, limit=5)
    b = await store.add_subscription(someone.owner, "B", "b", DIGEST, LONG_AGO, limit=5)
    papers = [paper("hi", upvotes=1), paper("tie-more", upvotes=9), paper("tie-less", upvotes=2)]
    await add_papers_of(store, [*papers, paper("low")])
    await record_matches(
        store,
        [
            record(someone.owner, "hi", b.id, score=5.0, at=LONG_AGO),
            record(someone.owner, "tie-less", a.id, score=3.0, at=LONG_AGO),
            record(someone.owner, "tie-more", a.id, b.id, score=3.0, at=LONG_AGO),
            record(someone.owner, "low", a.id, score=0.5, at=LONG_AGO),
        ],
        LONG_AGO,
    )
    planner = DigestPlanner(store, FrozenClock(), max_papers=3)
    [digest] = await tick_made(planner, store, NOW)
    message = await planner.build(digest, someone, NOW, LINKS)
    assert message is not None
    sections = [(s.subscription.query, [i.paper.key for i in s.items]) for s in message.sections]
    assert sections == [("b", ["hi", "tie-more"]), ("a", ["tie-more", "tie-less"])]
    assert (message.more, message.paper_count, message.local_date) == (1, 4, date(2026, 11, 21))
    assert message.recipient.address == "ada@example.org"
    assert message.links.unsubscribe_all is not None
    stop = message.sections[0].subscription.unsubscribe_url
    assert stop is not None
    assert stop.startswith("https://bell.example.org/unsubscribe/")
    await store.remove_subscription(a.id, None, NOW)
    await store.remove_subscription(b.id, None, NOW)
    assert await planner.build(digest, someone, NOW, LINKS) is None


async def test_preview_creates_nothing(store: Store) -> None:
    someone = await digest_user(store, "UTC", 8)
    planner = DigestPlanner(store, FrozenClock())
    assert await planner.preview(someone, NOW) is None
    await match_now(store, someone.owner, "p1", LONG_AGO)
    preview = await planner.preview(someone, NOW)
    assert preview is not None
    assert [i.paper.key for s in preview.sections for i in s.items] == ["p1"]
    assert preview.local_date == date(2026, 11, 21)
    assert [d.kind for d in await store.list_deliveries()] == ["confirm"]
    await planner.tick(NOW)
    later = await planner.preview(someone, NOW)
    assert later is None  # nothing waits any more
    await match_now(store, someone.owner, "p2", NOW)
    nxt = await planner.preview(someone, NOW)
    assert nxt is not None
    assert nxt.local_date == date(2026, 11, 22)


def test_source_notes_in_the_readers_timezone() -> None:
    now = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    states = [
        SourceState(
            "hf_daily:https://huggingface.co/api/daily_papers",
            last_success=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
            last_error="HTTP 503",
            last_error_at=datetime(2026, 11, 21, 14, 0, tzinfo=UTC),
        ),
        SourceState(
            "arxiv_rss:https://rss.arxiv.org/rss/cs.LG",
            last_success=now,
            last_note="no announcement (weekend or holiday)",
        ),
        SourceState(
            "arxiv_rss:https://rss.arxiv.org/rss/cs.CV",
            last_success=now,
            last_note="no announcement (weekend or holiday)",
        ),
        SourceState(
            "feed:https://www.blog.example/feed", last_success=now, last_note="not modified"
        ),
        SourceState(
            "feed:https://old.example/rss",
            last_success=now - timedelta(days=3),
            last_note="no papers match the query",
        ),
        SourceState(
            "feed:https://down.example/rss",
            last_success=datetime(2026, 11, 19, 6, 30, tzinfo=UTC),
            last_error="timeout",
            last_error_at=now,
        ),
        SourceState(
            "feed:https://fine.example/rss",
            last_success=now,
            last_error="old",
            last_error_at=now - timedelta(hours=1),
        ),
    ]
    assert source_notes(states, "Europe/Berlin", now) == (
        "arXiv made no announcement today (weekend/holiday)",
        "source down.example failed since Thu 19 Nov 07:30",
        "source Hugging Face failed since 09:00",
    )


async def test_status_lines_speak_only_of_sources_configured_now(
    store: Store, tmp_path: Path
) -> None:
    kept = SourceConfig(kind=SourceKind.FEED, url="https://kept.example/rss")
    settings = Settings(data_dir=tmp_path / "data", sources=[kept])
    someone = await digest_user(store, "UTC", 8)
    await match_now(store, someone.owner, "p1", LONG_AGO)
    # Both failing; the second was configured once, is not any more, and keeps its state.
    for source_id in (kept.source_id, "feed:https://removed.example/rss"):
        await store.record_source_error(source_id, "timed out", NOW - timedelta(hours=1))
    service = await build_service(settings, store, FrozenClock())
    preview = await service.digests.preview(someone, NOW)
    assert preview is not None
    assert preview.source_notes == ("source kept.example failed since 08:00",)
