"""The Discord client's wiring: optional without a token, command sync only on change, and a
whole cycle — subscribe by slash command, match, dispatch — arriving as DMs and posts."""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.accounts.addresses import LinkBuilder
from bot.daemon.channels import ChannelContext
from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher
from bot.delivery.notifier import Channel
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.models import Owner, Sighting, SourceState
from bot.settings import load_settings
from bot.store.protocols import DeliveryState
from handlers.discord.channel import plugin
from handlers.discord.client import DiscordClient, build_discord
from handlers.discord.notifier import DiscordNotifier
from tests.discord_fake import FakeDiscord, discord_pointed_at
from tests.discord_fake_interactions import OptionValue
from tests.discord_fake_models import (
    BOB,
    CAROL,
    DAVE,
    JSON,
    PAPERS_CHANNEL,
    SAMPLE_GUILD,
    FakeUser,
    Intent,
)
from tests.support_discord import (
    LIMIT,
    NOW,
    PAPER_COUNT,
    World,
    channel_recipient,
    discord_world,
    embed_titles,
    open_service,
)
from tests.support_email import alert_message, corpus

GLOBAL_SYNC = "PUT /applications/{app_id}/commands"
GUILD_SYNC = "PUT /applications/{app_id}/guilds/{guild_id}/commands"


async def test_without_a_token_there_is_no_discord_and_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.discord.client")
    service, store = await open_service(tmp_path)
    try:
        assert build_discord(service.settings, service) is None
        [line] = caplog.records
        assert "PAPERBELL_DISCORD__TOKEN is not set" in line.getMessage()
        with_token = load_settings(data_dir=tmp_path, discord={"token": "t", "guild_id": "42"})
        client = build_discord(with_token, service)
        assert isinstance(client, DiscordClient)
        assert client.intents.value == Intent.GUILDS  # minimal, nothing privileged
        await client.close()
    finally:
        await store.close()


async def test_commands_sync_once_then_only_when_changed(tmp_path: Path) -> None:
    async with discord_world(tmp_path) as first:
        assert first.client.synced is True
        assert first.fake.count(GLOBAL_SYNC) == 1
        assert {c["name"] for c in first.fake.commands()} >= {"subscribe", "channel"}
        assert first.fake.gateway.identify_payloads[0]["intents"] == Intent.GUILDS
    async with discord_world(tmp_path) as restarted:  # same database, same commands
        assert restarted.client.synced is False
        assert restarted.fake.count(GLOBAL_SYNC) == 0
    async with discord_world(tmp_path, guild_id=str(SAMPLE_GUILD.id)) as dev:
        assert dev.client.synced is True
        assert dev.fake.count(GUILD_SYNC) == 1
        assert dev.fake.count(GLOBAL_SYNC) == 0
        assert len(dev.fake.commands(SAMPLE_GUILD.id)) == 12  # the ten of before, /recommend, /why
        reply = await (
            await dev.fake.send_slash_command("help", user=CAROL, guild=SAMPLE_GUILD)
        ).edited_original()
        assert reply["embeds"][0]["title"] == "paperbell"
    async with discord_world(tmp_path) as upgraded:  # a release that changes the commands
        assert upgraded.client.synced is False
        upgraded.client.tree.remove_command("help")
        assert await upgraded.client.sync_commands() is True
        assert await upgraded.client.sync_commands() is False
        assert upgraded.fake.count(GLOBAL_SYNC) == 1
        assert "help" not in {c["name"] for c in upgraded.fake.commands()}


async def _slash(
    world: World,
    name: str,
    options: dict[str, OptionValue],
    *,
    user: FakeUser,
    channel: int | None = None,
    subcommand: str | None = None,
) -> JSON:
    handle = await world.fake.send_slash_command(
        name, options, user=user, guild=SAMPLE_GUILD, channel=channel, subcommand=subcommand
    )
    return await handle.edited_original()


async def test_a_cycle_arrives_as_dms_and_channel_posts(tmp_path: Path) -> None:
    async with discord_world(tmp_path) as world:
        fake, service, store = world.fake, world.service, world.store
        await match_cycle(
            service.index, store, NOW, plan_matches
        )  # the world's own papers are old news
        await _slash(world, "subscribe", {"query": "language models"}, user=CAROL)
        await _slash(world, "subscribe", {"query": "language"}, user=DAVE)
        await _slash(
            world, "channel", {"query": "vision OR diffusion"}, user=BOB, subcommand="subscribe",
            channel=PAPERS_CHANNEL.id,
        )  # fmt: skip
        papers = corpus()[PAPER_COUNT : PAPER_COUNT + 40]
        await store.ingest([Sighting(p) for p in papers], SourceState("test"), NOW)
        summary = await match_cycle(service.index, store, NOW, plan_matches)
        assert summary.owners == 3
        links = LinkBuilder.from_settings(service.settings, service.signer)
        notifier = world.client.notifier()
        dispatcher = Dispatcher(
            store, {Channel.DISCORD: notifier}, links, service.clock, random.Random(1)
        )
        report = await dispatcher.run_once()

        carol = await world.user(CAROL)
        wanted = await store.list_deliveries(Owner.user(carol.id), DeliveryState.SENT)
        dms = fake.dm_messages(CAROL.id)
        assert len(dms) == 1 + (len(wanted) - 1) // 10
        assert sorted(t for m in dms for t in embed_titles(m.embeds)) == sorted(
            p.title for p in papers if p.key in {d.paper_key for d in wanted}
        )
        assert carol.discord_dm_channel == str(fake.dm_channel_id(CAROL.id))  # remembered
        posted = await store.list_deliveries(
            Owner.channel(str(PAPERS_CHANNEL.id)), DeliveryState.SENT
        )
        posts = [m for m in fake.channel_messages(PAPERS_CHANNEL.id) if m.embeds]
        assert wanted and posted
        assert sorted(t for m in posts for t in embed_titles(m.embeds)) == sorted(
            p.title for p in papers if p.key in {d.paper_key for d in posted}
        )
        assert posts[0].content.startswith("🔔 ")
        assert all(m.payload["allowed_mentions"] == {"parse": []} for m in dms + posts)

        dave = await world.user(DAVE)  # DMs closed: 50007 -> unreachable, told next time
        assert dave.discord_unreachable
        reply = await _slash(world, "subscriptions", {}, user=DAVE)
        assert reply["content"].startswith("⚠️ I could not DM you")
        sent = report.count(DeliveryOutcome.SENT, Channel.DISCORD)
        assert sent == len(wanted) + len(posted)


async def test_meta_values_are_kept_and_replaced(tmp_path: Path) -> None:
    _, store = await open_service(tmp_path)
    try:
        assert await store.get_meta("discord.commands.1.global") is None
        await store.set_meta("discord.commands.1.global", "abc")
        await store.set_meta("discord.commands.1.global", "def")
        await store.set_meta("other", "x")
        assert await store.get_meta("discord.commands.1.global") == "def"
        assert await store.get_meta("other") == "x"
    finally:
        await store.close()


class DownReports:
    """``ChannelContext.on_down`` for a test: what was reported, and a way to wait for it."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.reported = asyncio.Event()

    def __call__(self, channel: Channel, why: str) -> None:
        self.reasons.append(f"{channel}: {why}")
        self.reported.set()


async def test_the_channel_plugin_serves_commands_and_delivers(tmp_path: Path) -> None:
    service, store = await open_service(tmp_path)
    down = DownReports()
    try:
        async with FakeDiscord() as fake, AsyncExitStack() as outer:
            settings = load_settings(data_dir=tmp_path, discord={"token": fake.token})
            ctx = ChannelContext(settings, service, service.clock, on_down=down)
            with discord_pointed_at(fake):
                async with AsyncExitStack() as stack:
                    notifier = await asyncio.wait_for(plugin.open(ctx, stack), LIMIT)
                    assert isinstance(notifier, DiscordNotifier)
                    await fake.wait_for_ready()
                    assert fake.count(GLOBAL_SYNC) == 1  # synced during the log-in
                    handle = await fake.send_slash_command("help", user=CAROL, guild=SAMPLE_GUILD)
                    assert (await handle.edited_original())["embeds"][0]["title"] == "paperbell"
                    to = channel_recipient(PAPERS_CHANNEL)
                    await notifier.send_alerts(alert_message(corpus()[:2], to=to))
                    assert len(fake.channel_messages(PAPERS_CHANNEL.id)) == 1
            without = load_settings(data_dir=tmp_path)
            assert await plugin.open(ChannelContext(without, service, service.clock), outer) is None
        assert down.reasons == []
    finally:
        await store.close()


@pytest.mark.parametrize("failure", ["bad token", "gateway closed 4004"])
async def test_a_discord_that_stops_is_reported_down_not_fatal(
    tmp_path: Path, failure: str
) -> None:
    service, store = await open_service(tmp_path)
    down = DownReports()
    try:
        async with FakeDiscord() as fake:
            token = "wrong" if failure == "bad token" else fake.token
            settings = load_settings(data_dir=tmp_path, discord={"token": token})
            ctx = ChannelContext(settings, service, service.clock, on_down=down)
            with discord_pointed_at(fake):
                async with AsyncExitStack() as stack:
                    assert await asyncio.wait_for(plugin.open(ctx, stack), LIMIT) is not None
                    if failure != "bad token":
                        await fake.wait_for_ready()
                        await fake.gateway.history[-1].close(4004, "Authentication failed.")
                    await asyncio.wait_for(down.reported.wait(), LIMIT)
        [why] = down.reasons
        expected = "PAPERBELL_DISCORD__TOKEN" if failure == "bad token" else "4004"
        assert why.startswith("discord: ")
        assert expected in why
    finally:
        await store.close()
