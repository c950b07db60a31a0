"""Learned relevance on Discord: /recommend, end to end on the loopback fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.protocols import Rating
from tests.discord_fake_models import ALICE, CAROL
from tests.support_discord import World, discord_world, embed_titles
from tests.test_discord_commands import run


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(tmp_path) as made:
        yield made


async def test_recommend_without_ratings_says_what_to_do(world: World) -> None:
    reply = await run(world, "recommend")
    assert reply.ephemeral and "nothing to learn from yet" in reply.content.lower()
    assert not reply.embeds


async def test_recommend_ranks_by_the_callers_ratings_only(world: World) -> None:
    hits = (await world.service.test_query("language models", days=30)).keys
    carol = await world.user(CAROL)
    await world.service.rate(carol.id, like=list(hits[:3]))
    reply = await run(world, "recommend", {"limit": 4})
    assert reply.content.startswith("Recommended for you from the last 7 days")
    expected = await world.service.recommend(carol.id, limit=4)
    assert embed_titles(reply.embeds) == [r.paper.title for r in expected]
    why = [f["value"] for e in reply.embeds for f in e.get("fields", []) if f["name"] == "Why"]
    assert len(why) == 4
    assert not set(hits[:3]) & {r.paper.key for r in expected}  # rated ones left out
    alice = await world.user(ALICE)
    assert await world.store.list_feedback(alice.id) == []
    other = await run(world, "recommend", user=ALICE)  # Carol's 👍 teach Alice nothing
    assert "nothing to learn from yet" in other.content.lower()
    await world.store.rate(alice.id, {hits[5]: Rating.DISLIKE}, world.service.clock())
    assert embed_titles((await run(world, "recommend", {"limit": 4})).embeds) == [
        r.paper.title for r in expected
    ]
