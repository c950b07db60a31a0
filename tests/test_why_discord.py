"""/why on Discord, end to end on the loopback fake: the caller's own path, in words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.models import DeliveryMode
from tests.discord_fake_models import CAROL
from tests.support_discord import World, discord_world
from tests.support_email import corpus
from tests.test_discord_commands import run


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(tmp_path) as made:
        yield made


async def test_why_a_paper_that_arrived_before_the_subscription(world: World) -> None:
    paper = corpus()[0]
    carol = await world.user(CAROL)
    await world.service.subscribe(
        carol.owner, f'"{paper.title.split()[0]}"', frozenset({DeliveryMode.DISCORD})
    )
    reply = await run(world, "why", {"paper": f"https://arxiv.org/abs/{paper.key}v1"})
    assert reply.ephemeral
    assert reply.content.startswith(f"{paper.key}")
    assert "verdict: seen, but too old to alert" in reply.content
    assert "before your matching subscription existed" in reply.content


async def test_why_a_paper_never_seen_names_the_sources(world: World) -> None:
    reply = await run(world, "why", {"paper": "2612.09999"})
    assert "verdict: never seen" in reply.content
    assert "Hugging Face Daily Papers" in reply.content


async def test_why_a_malformed_id_is_one_clear_line(world: World) -> None:
    reply = await run(world, "why", {"paper": "not a paper"})
    assert reply.content.startswith("❌ ") and "not a paper id" in reply.content
    assert len(reply.content.splitlines()) == 1
