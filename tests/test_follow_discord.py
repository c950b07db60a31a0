"""Following a paper from a Discord alert: a 📌 button per paper (three papers or fewer), a
menu for more (up to five, while a row is free), on the loopback Discord fake; and the
followed papers with their changes in /subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.messages import Channel, PlannedMatch
from bot.models import AnnounceType, DeliveryMode, MatchRecord, Sighting, SourceState
from bot.store.protocols import ChangeKind
from tests.discord_fake_models import CAROL, FakeUser
from tests.support_discord import World, discord_world
from tests.support_email import corpus
from tests.test_discord_commands import run
from tests.test_relevance_discord import _alert_for, _buttons, _menu, _reply


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(tmp_path) as made:
        yield made


async def _received(world: World, user: FakeUser, count: int) -> None:
    """Match records for the first ``count`` papers: what an alert sent to ``user`` has."""
    owner = (await world.user(user)).owner
    now = datetime.now(UTC)
    done = await world.service.subscribe(owner, "zebra", frozenset({DeliveryMode.DISCORD}))
    sub = (done.subscription.id,)
    records = [MatchRecord(owner, p.key, sub, (), 1.0, now) for p in corpus()[:count]]
    await world.store.record_matches([PlannedMatch(r) for r in records], now)


async def test_a_follow_button_per_paper_follows_for_the_clicker(world: World) -> None:
    await _received(world, CAROL, 3)
    message = await _alert_for(world, CAROL, count=3)
    buttons = _buttons(message)
    assert len(buttons) == 12 and "#2 Follow" in buttons
    text = await _reply(await world.fake.click(message, buttons["#2 Follow"], user=CAROL))
    key = corpus()[1].key
    assert text.startswith(f"📌 Following {key}: one DM when")
    carol = await world.user(CAROL)
    [follow] = await world.store.list_follows(carol.owner)
    assert (follow.paper_key, str(follow.channel)) == (key, "discord")


async def test_more_papers_get_a_follow_menu(world: World) -> None:
    await _received(world, CAROL, 4)
    message = await _alert_for(world, CAROL, count=4)
    menu = _menu(message, "paperbell:follow")
    values = [o["value"] for o in menu["options"]]
    assert len(values) == 4
    text = await _reply(await world.fake.click(message, "paperbell:follow", values[:2], user=CAROL))
    assert text.startswith("📌 Following")
    carol = await world.user(CAROL)
    assert len(await world.store.list_follows(carol.owner)) == 2


async def test_a_paper_not_received_cannot_be_followed(world: World) -> None:
    message = await _alert_for(world, CAROL, count=1)  # sent, but no match of Carol's
    text = await _reply(await world.fake.click(message, _buttons(message)["Follow"], user=CAROL))
    assert text.startswith("❌ ") and "You did not receive paper" in text


async def test_subscriptions_lists_followed_papers_and_their_changes(world: World) -> None:
    await _received(world, CAROL, 1)
    paper = replace(corpus()[0], sources=("arxiv",))
    now = datetime.now(UTC)
    for version in (1, 2):  # v1 stored, then v2 seen: one change
        sighting = Sighting(replace(paper, version=version), AnnounceType.REPLACE)
        await world.store.ingest([sighting], SourceState("src"), now)
        if version == 1:
            carol = await world.user(CAROL)
            await world.service.follow(carol.owner, paper.key, Channel.DISCORD)
    [change] = (await world.store.paper_change_log([paper.key]))[paper.key]
    assert change.kind is ChangeKind.VERSION
    reply = await run(world, "subscriptions")
    assert f"📌 {paper.key}" in reply.content
    assert f"{now:%Y-%m-%d}: new version v2 (was v1)" in reply.content
