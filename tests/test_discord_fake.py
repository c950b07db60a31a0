"""The real discord.py client against the loopback fake: login, gateway, commands, REST, faults.

These tests prove the fake is faithful enough for paperbell's Discord tests to rely on it:
each drives discord.py's own code paths (zlib-stream gateway, rate-limit handling,
interaction webhooks) and checks both what the bot saw and what the fake recorded.
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import types
import warnings
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.http import Route

from tests.discord_fake import (
    CommandUnavailableError,
    FakeDiscord,
    QuickClient,
    discord_pointed_at,
)
from tests.discord_fake_models import (
    ALICE,
    BOB,
    BOT_USER,
    CAROL,
    DAVE,
    GENERAL_CHANNEL,
    PAPERS_CHANNEL,
    SAMPLE_GUILD,
    SAMPLE_GUILD_ID,
    FakeUser,
    Intent,
)

LIMIT = 10.0  # seconds; no test should come near it
TOPICS = ["diffusion models", "graph neural networks", "large language models", "llm agents"]
OUTSIDER = FakeUser(1_300_000_000_000_000_150, "erin")  # shares no guild with the bot


class Bot:
    """A client with a small command tree, recording what its commands were given."""

    def __init__(self) -> None:
        self.client = QuickClient()
        self.tree = app_commands.CommandTree(self.client)
        self.seen: list[dict[str, Any]] = []
        self._add_commands()

    def _add_commands(self) -> None:
        tree, seen = self.tree, self.seen

        @tree.command(description="Answer privately")
        async def ping(interaction: discord.Interaction, word: str) -> None:
            seen.append({"guild": interaction.guild_id, "user": interaction.user.id})
            await interaction.response.send_message(f"pong {word}", ephemeral=True)

        @tree.command(description="Subscribe to a topic")
        async def subscribe(interaction: discord.Interaction, query: str) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send(f"Subscribed to {query}", ephemeral=True)
            await interaction.edit_original_response(content=f"Done: {query}")

        @subscribe.autocomplete("query")
        async def topics(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=t, value=t) for t in TOPICS if current in t]

        alerts = app_commands.Group(
            name="alerts",
            description="Channel alerts",
            default_permissions=discord.Permissions(manage_guild=True),
            guild_only=True,
        )

        @alerts.command(description="Post alerts in a channel")
        async def here(
            interaction: discord.Interaction, channel: discord.TextChannel, limit: int = 5
        ) -> None:
            perms = interaction.permissions
            seen.append({"channel": channel.id, "limit": limit, "manage": perms.manage_guild})
            await interaction.response.send_message(f"Alerts go to #{channel.name}")

        tree.add_command(alerts)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[Bot]:
    made = Bot()
    async with fake.connected(made.client):
        yield made


# --- 1. login and gateway ------------------------------------------------------------------


async def test_client_logs_in_and_sees_the_guild(fake: FakeDiscord) -> None:
    client = QuickClient()
    async with asyncio.timeout(LIMIT), fake.connected(client):
        assert client.user is not None
        assert client.user.id == BOT_USER.id
        assert client.application_id == BOT_USER.id
        guild = client.get_guild(SAMPLE_GUILD_ID)
        assert guild is not None
        assert guild.name == "Paper Club"
        assert guild.owner_id == ALICE.id
        assert [c.name for c in guild.text_channels] == ["general", "papers"]
        assert guild.me is not None
        assert guild.me.guild_permissions.send_messages
        assert math.isfinite(client.latency)  # a heartbeat was acknowledged
    query = fake.gateway.connection_queries[0]
    assert query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    [connection] = fake.gateway.history
    assert connection.compressed  # every frame went out zlib-compressed, and was understood
    assert connection.frames_sent >= 4  # HELLO, READY, GUILD_CREATE, HEARTBEAT_ACK
    intents = fake.gateway.identify_payloads[0]["intents"]
    assert intents & Intent.GUILDS
    assert not intents & (Intent.GUILD_MEMBERS | Intent.MESSAGE_CONTENT | Intent.GUILD_PRESENCES)
    assert fake.count("GET /users/@me") == 1
    assert fake.count("GET /oauth2/applications/@me") == 1
    assert fake.gateway.heartbeats >= 1
    assert fake.unknown_requests == []


async def test_dispatch_reaches_the_client_cache(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        created = asyncio.Event()
        bot.client.event(_setter("on_guild_channel_create", created))
        channel = {
            "id": "1300000000000000399",
            "type": 0,
            "guild_id": str(SAMPLE_GUILD_ID),
            "name": "arxiv",
            "position": 2,
            "permission_overwrites": [],
        }
        await fake.dispatch("CHANNEL_CREATE", channel)
        await created.wait()
        found = bot.client.get_channel(1_300_000_000_000_000_399)
        assert isinstance(found, discord.TextChannel)
        assert found.name == "arxiv"


def _setter(name: str, event: asyncio.Event) -> Any:
    async def handler(*_: Any) -> None:
        event.set()

    handler.__name__ = name
    return handler


async def test_reconnect_resumes_the_session(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        await bot.tree.sync()
        await fake.request_reconnect()
        await fake.wait_for(lambda: fake.gateway.resumes == 1, what="a RESUME")
        handle = await fake.send_slash_command(
            "ping", {"word": "again"}, user=CAROL, guild=SAMPLE_GUILD
        )
        assert (await handle.response()).content == "pong again"
        assert len(fake.gateway.identify_payloads) == 1
        assert fake.gateway.connection_queries[1]["compress"] == "zlib-stream"


async def test_invalid_session_makes_the_client_identify_again(fake: FakeDiscord) -> None:
    client = QuickClient()  # skips discord.py's 5 s pause before a second IDENTIFY
    async with asyncio.timeout(LIMIT), fake.connected(client):
        await fake.invalidate_session()
        await fake.wait_for_ready(sessions=2)
        await fake.wait_for(client.is_ready, what="on_ready again")
        assert len(fake.gateway.identify_payloads) == 2
        assert client.get_guild(SAMPLE_GUILD_ID) is not None


async def test_autosharded_client_asks_gateway_bot(fake: FakeDiscord) -> None:
    client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    async with asyncio.timeout(LIMIT), fake.connected(client):
        assert client.shard_count == 1
        assert client.get_guild(SAMPLE_GUILD_ID) is not None
    assert fake.count("GET /gateway/bot") == 1
    assert fake.gateway.identify_payloads[0]["shard"] == [0, 1]


# --- 2. command sync -----------------------------------------------------------------------


async def test_sync_records_global_and_guild_payloads(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        synced = await bot.tree.sync()
        guild = discord.Object(SAMPLE_GUILD_ID)
        bot.tree.copy_global_to(guild=guild)
        in_guild = await bot.tree.sync(guild=guild)
        again = await bot.tree.sync()
    payload = fake.command_payload()
    assert payload is not None
    by_name = {command["name"]: command for command in payload}
    assert set(by_name) == {"ping", "subscribe", "alerts"}
    assert by_name["subscribe"]["options"][0]["autocomplete"] is True
    assert by_name["alerts"]["default_member_permissions"] == discord.Permissions.manage_guild.flag
    assert by_name["alerts"]["options"][0]["type"] == 1  # a subcommand
    assert [c.id for c in synced] == [int(c["id"]) for c in fake.commands()]
    assert [c.id for c in again] == [c.id for c in synced]  # ids stay stable across syncs
    assert {c.guild_id for c in in_guild} == {SAMPLE_GUILD_ID}
    assert len(fake.commands(SAMPLE_GUILD_ID)) == 3
    assert fake.count("PUT /applications/{app_id}/commands") == 2
    assert fake.count("PUT /applications/{app_id}/guilds/{guild_id}/commands") == 1


async def test_invalid_command_payload_is_rejected_like_discord(
    fake: FakeDiscord, bot: Bot
) -> None:
    bad = [{"name": "Bad Name", "description": "", "type": 1}]
    with pytest.raises(discord.HTTPException) as caught:
        await asyncio.wait_for(bot.client.http.bulk_upsert_global_commands(BOT_USER.id, bad), LIMIT)
    assert caught.value.status == 400
    assert caught.value.code == 50035
    assert "0.name" in caught.value.text
    assert "0.description" in caught.value.text
    assert fake.commands() == []


# --- 3. interactions -----------------------------------------------------------------------


async def test_slash_command_gets_an_ephemeral_reply(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        await bot.tree.sync()
        handle = await fake.send_slash_command(
            "ping", {"word": "hi"}, user=CAROL, guild=SAMPLE_GUILD
        )
        reply = await handle.response()
    assert reply.type == 4
    assert reply.content == "pong hi"
    assert reply.ephemeral
    assert handle.original is not None
    assert handle.original["flags"] == 64
    assert bot.seen == [{"guild": SAMPLE_GUILD_ID, "user": CAROL.id}]


async def test_deferred_reply_then_followup_and_edit(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        handle = await fake.send_slash_command(
            "subscribe", {"query": "llm"}, user=BOB, guild=SAMPLE_GUILD, channel=PAPERS_CHANNEL.id
        )
        deferred = await handle.response()
        followup = await handle.followup()
        edited = await handle.edited_original()
    assert deferred.type == 5
    assert deferred.ephemeral
    assert followup["content"] == "Subscribed to llm"
    assert followup["flags"] == 64
    assert followup["channel_id"] == str(PAPERS_CHANNEL.id)
    assert edited["content"] == "Done: llm"
    assert edited["flags"] == 64  # LOADING cleared, ephemeral kept
    assert fake.count("POST /webhooks/{app_id}/{token}") == 1


async def test_autocomplete_returns_choices(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        await bot.tree.sync()
        handle = await fake.send_autocomplete(
            "subscribe", {"query": "models"}, "query", user=CAROL, guild=SAMPLE_GUILD
        )
        choices = await handle.choices()
    assert [c["value"] for c in choices] == ["diffusion models", "large language models"]


async def test_subcommand_with_channel_option_and_permissions(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        await bot.tree.sync()
        with pytest.raises(CommandUnavailableError, match="MANAGE_GUILD"):
            await fake.send_slash_command(
                "alerts",
                {"channel": PAPERS_CHANNEL},
                user=CAROL,
                guild=SAMPLE_GUILD,
                subcommand="here",
            )
        handle = await fake.send_slash_command(
            "alerts",
            {"channel": PAPERS_CHANNEL, "limit": 3},
            user=BOB,
            guild=SAMPLE_GUILD,
            subcommand="here",
        )
        reply = await handle.response()
    assert reply.content == "Alerts go to #papers"
    assert not reply.ephemeral
    assert bot.seen == [{"channel": PAPERS_CHANNEL.id, "limit": 3, "manage": True}]


async def test_slash_command_in_a_dm(fake: FakeDiscord, bot: Bot) -> None:
    async with asyncio.timeout(LIMIT):
        await bot.tree.sync()
        handle = await fake.send_slash_command("ping", {"word": "dm"}, user=CAROL, guild=None)
        reply = await handle.response()
        with pytest.raises(CommandUnavailableError, match="not available in DMs"):
            await fake.send_slash_command("alerts", {}, user=CAROL, guild=None, subcommand="here")
    assert reply.content == "pong dm"
    assert bot.seen == [{"guild": None, "user": CAROL.id}]
    assert handle.record.channel_id == fake.dm_channel_id(CAROL.id)


# --- 4. DMs and channel posts --------------------------------------------------------------


async def test_dm_and_channel_post_are_recorded(fake: FakeDiscord, bot: Bot) -> None:
    embed = discord.Embed(title="Attention Is All You Need", url="https://arxiv.org/abs/1706.03762")
    embed.add_field(name="Matched", value="transformer")
    async with asyncio.timeout(LIMIT):
        user = await bot.client.fetch_user(CAROL.id)
        dm = await user.create_dm()
        await dm.send("New paper", embed=embed)
        channel = bot.client.get_channel(PAPERS_CHANNEL.id)
        assert isinstance(channel, discord.TextChannel)
        none = discord.AllowedMentions.none()
        await channel.send(f"<@{CAROL.id}> @everyone", embed=embed, allowed_mentions=none)
        await channel.send(f"<@{CAROL.id}> ping")
    assert dm.id == fake.dm_channel_id(CAROL.id)
    assert fake.dm_channels == {CAROL.id: dm.id}
    [direct] = fake.dm_messages(CAROL.id)
    assert direct.content == "New paper"
    assert direct.embeds[0]["fields"] == [
        {"name": "Matched", "value": "transformer", "inline": True}
    ]
    quiet, loud = fake.channel_messages(PAPERS_CHANNEL.id)
    assert quiet.payload["allowed_mentions"] == {"parse": []}
    assert quiet.message["mentions"] == []
    assert quiet.message["mention_everyone"] is False
    assert [u["id"] for u in loud.message["mentions"]] == [str(CAROL.id)]
    assert fake.channel_messages(GENERAL_CHANNEL.id) == []


async def test_resend_with_the_same_nonce_is_not_duplicated(fake: FakeDiscord, bot: Bot) -> None:
    # discord.py sends enforce_nonce with every nonce, so a retry after a lost answer
    # gets the first message back instead of posting it twice.
    channel = bot.client.get_channel(PAPERS_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    first = await asyncio.wait_for(channel.send("digest", nonce="run-7:alice"), LIMIT)
    again = await asyncio.wait_for(channel.send("digest", nonce="run-7:alice"), LIMIT)
    other = await asyncio.wait_for(channel.send("digest", nonce="run-8:alice"), LIMIT)
    assert again.id == first.id
    assert other.id != first.id
    assert [m.payload["nonce"] for m in fake.channel_messages(PAPERS_CHANNEL.id)] == [
        "run-7:alice",
        "run-8:alice",
    ]


async def test_oversized_embed_is_rejected_like_discord(fake: FakeDiscord, bot: Bot) -> None:
    channel = bot.client.get_channel(PAPERS_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    embed = discord.Embed(title="x" * 257, url="arxiv.org/abs/1706.03762")
    with pytest.raises(discord.HTTPException) as caught:
        await asyncio.wait_for(channel.send(embed=embed), LIMIT)
    assert caught.value.code == 50035
    assert "embeds.0.title" in caught.value.text
    assert "embeds.0.url" in caught.value.text
    with pytest.raises(discord.HTTPException, match="Cannot send an empty message"):
        await asyncio.wait_for(channel.send(), LIMIT)
    assert fake.channel_messages(PAPERS_CHANNEL.id) == []


# --- 5. faults -----------------------------------------------------------------------------


async def test_user_blocking_dms_raises_forbidden_50007(fake: FakeDiscord, bot: Bot) -> None:
    user = await asyncio.wait_for(bot.client.fetch_user(DAVE.id), LIMIT)
    with pytest.raises(discord.Forbidden) as caught:
        await asyncio.wait_for(user.send("hello"), LIMIT)
    assert caught.value.code == 50007
    assert caught.value.status == 403
    body = {"code": 50007, "message": "Cannot send messages to this user"}
    fake.fail_next("POST /channels/{channel_id}/messages", 403, body)
    carol = await asyncio.wait_for(bot.client.fetch_user(CAROL.id), LIMIT)
    with pytest.raises(discord.Forbidden) as injected:
        await asyncio.wait_for(carol.send("hello"), LIMIT)
    assert injected.value.code == 50007
    assert fake.dm_messages(CAROL.id) == []


async def test_rate_limit_is_waited_out_and_retried(fake: FakeDiscord, bot: Bot) -> None:
    fake.rate_limit_next("POST /channels/{channel_id}/messages", retry_after=0.01)
    channel = bot.client.get_channel(GENERAL_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    message = await asyncio.wait_for(channel.send("after the limit"), LIMIT)
    assert message.content == "after the limit"
    attempts = fake.requests_to("POST /channels/{channel_id}/messages")
    assert [(r.status, r.injected) for r in attempts] == [(429, True), (200, False)]
    assert len(fake.channel_messages(GENERAL_CHANNEL.id)) == 1


async def test_429_without_via_is_a_cloudflare_ban(fake: FakeDiscord, bot: Bot) -> None:
    fake.fail_next("POST /channels/*/messages", 429, "<html>banned</html>")
    channel = bot.client.get_channel(GENERAL_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as caught:
        await asyncio.wait_for(channel.send("x"), LIMIT)
    assert caught.value.status == 429
    assert fake.count("POST /channels/{channel_id}/messages") == 1


async def test_unauthorized_rest_call_and_bad_login(fake: FakeDiscord, bot: Bot) -> None:
    fake.fail_next(
        "POST /channels/{channel_id}/messages", 401, {"code": 0, "message": "401: Unauthorized"}
    )
    channel = bot.client.get_channel(GENERAL_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as caught:
        await asyncio.wait_for(channel.send("x"), LIMIT)
    assert caught.value.status == 401
    with pytest.raises(discord.LoginFailure):
        async with asyncio.timeout(LIMIT), fake.connected(QuickClient(), token="wrong-token"):
            pytest.fail("a wrong token must not log in")


async def test_503_is_a_server_error_at_once(fake: FakeDiscord, bot: Bot) -> None:
    fake.fail_next("POST /channels/{channel_id}/messages", 503, {"message": "unavailable"})
    channel = bot.client.get_channel(GENERAL_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.DiscordServerError):
        await asyncio.wait_for(channel.send("x"), LIMIT)
    assert fake.count("POST /channels/{channel_id}/messages") == 1  # 503 is not retried


async def test_500_is_retried_five_times_with_backoff(
    fake: FakeDiscord, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # discord.py waits 1, 3, 5, 7, 9 s between attempts on 500/502/504/524; record the
    # waits instead of sleeping them, only inside discord.http.
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        waits.append(delay)
        return await real_sleep(0, result)

    shim = types.SimpleNamespace(**{**vars(asyncio), "sleep": sleep})
    monkeypatch.setattr(discord.http, "asyncio", shim)
    fake.fail_next("POST /channels/{channel_id}/messages", 500, {"message": "boom"}, times=5)
    channel = bot.client.get_channel(GENERAL_CHANNEL.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.DiscordServerError):
        await asyncio.wait_for(channel.send("x"), LIMIT)
    assert waits == [1, 3, 5, 7, 9]
    assert fake.count("POST /channels/{channel_id}/messages") == 5


async def test_privileged_intents_are_refused(fake: FakeDiscord) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    client = QuickClient(intents=intents)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with asyncio.timeout(LIMIT), fake.connected(client):
            pytest.fail("message_content is privileged and not enabled")
    assert fake.gateway.close_codes == [4014]


async def test_unknown_route_is_404_and_recorded(fake: FakeDiscord, bot: Bot) -> None:
    route = Route("GET", "/guilds/{guild_id}/bans", guild_id=SAMPLE_GUILD_ID)
    with discord_pointed_at(fake), pytest.raises(discord.NotFound, match="no route"):
        await asyncio.wait_for(bot.client.http.request(route), LIMIT)
    [unknown] = fake.unknown_requests
    assert unknown.path == f"/guilds/{SAMPLE_GUILD_ID}/bans"


async def test_dm_to_a_stranger_fails_with_unknown_user(fake: FakeDiscord, bot: Bot) -> None:
    with pytest.raises(discord.NotFound) as caught:
        await asyncio.wait_for(bot.client.fetch_user(OUTSIDER.id), LIMIT)
    assert caught.value.code == 10013


# --- 6. shutdown ---------------------------------------------------------------------------


async def test_clean_shutdown_leaves_nothing_behind() -> None:
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with asyncio.timeout(LIMIT):
            async with FakeDiscord() as server:
                bot = Bot()
                async with server.connected(bot.client):
                    handle = await server.send_slash_command(
                        "ping", {"word": "x"}, user=ALICE, guild=SAMPLE_GUILD
                    )
                    await handle.response()
                assert bot.client.is_closed()
            await asyncio.sleep(0)
        gc.collect()
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert pending == []
    assert not [t for t in threading.enumerate() if t.name.startswith("keep-alive")]
    assert not [w for w in caught if "nclosed" in str(w.message)]
    assert loop_errors == []
    assert Route.BASE == "https://discord.com/api/v10"  # restored
