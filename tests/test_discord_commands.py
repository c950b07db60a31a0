"""Every slash command end to end: the real discord.py client, the fake Discord, a real
Paperbell over a real SQLite store. Replies are read back as Discord holds them."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.accounts.addresses import LinkBuilder
from bot.delivery.planning import record_matches
from bot.models import DeliveryMode, DigestFrequency, MatchRecord, Owner
from tests.discord_fake import CommandUnavailableError
from tests.discord_fake_interactions import OptionValue
from tests.discord_fake_models import (
    ALICE,
    BOB,
    CAROL,
    PAPERS_CHANNEL,
    SAMPLE_GUILD,
    FakeGuild,
    FakeUser,
)
from tests.support_discord import NOW, World, discord_world, embed_titles, unmark

EPHEMERAL = 64


@dataclass(frozen=True)
class Answer:
    ephemeral: bool
    content: str  # as displayed: markdown escapes and bold markers removed
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(tmp_path) as made:
        yield made


async def run(
    world: World,
    name: str,
    options: Mapping[str, OptionValue] | None = None,
    *,
    user: FakeUser = CAROL,
    guild: FakeGuild | None = SAMPLE_GUILD,
    channel: int | None = None,
    subcommand: str | None = None,
) -> Answer:
    """Run a command and return the reply the user finally sees."""
    handle = await world.fake.send_slash_command(
        name, options, user=user, guild=guild, channel=channel, subcommand=subcommand
    )
    callback = await handle.response()
    message = await handle.edited_original() if callback.type == 5 else callback.data
    return Answer(
        ephemeral=bool(int(message.get("flags") or 0) & EPHEMERAL),
        content=unmark(str(message.get("content") or "")),
        embeds=list(message.get("embeds") or []),
        components=list(message.get("components") or []),
    )


async def choices(
    world: World,
    name: str,
    option: str,
    typed: OptionValue,
    *,
    user: FakeUser = CAROL,
    channel: int | None = None,
    subcommand: str | None = None,
) -> list[tuple[str, Any]]:
    handle = await world.fake.send_autocomplete(
        name, {option: typed}, option, user=user, guild=SAMPLE_GUILD, channel=channel,
        subcommand=subcommand,
    )  # fmt: skip
    return [(c["name"], c["value"]) for c in await handle.choices()]


# --- subscriptions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivery", "shown", "modes"),
    [
        (None, "delivered by DM.", {DeliveryMode.DISCORD}),
        ("email_digest", "delivered by email digest.", {DeliveryMode.EMAIL_DIGEST}),
        ("email_instant", "delivered by email.", {DeliveryMode.EMAIL_INSTANT}),
        ("dm_digest", "by DM + email digest.", {DeliveryMode.DISCORD, DeliveryMode.EMAIL_DIGEST}),
    ],
)
async def test_subscribe_with_each_delivery(
    world: World, delivery: str | None, shown: str, modes: set[DeliveryMode]
) -> None:
    options = {"query": "language  models"} | ({"delivery": delivery} if delivery else {})
    reply = await run(world, "subscribe", options)
    assert reply.ephemeral
    assert reply.content.startswith("✅ Subscribed (#1) to language AND models — ")
    assert shown in reply.content
    test = await world.service.test_query("language models")
    assert f"Would have matched {test.count} papers in the last 7 days" in reply.content
    assert test.count > 3
    for hit in test.top:  # three examples, linked
        assert f"[{hit.paper.title}](<{hit.paper.url}>)" in reply.content
    assert len(re.findall(r"^• \[", reply.content, re.MULTILINE)) == 3
    assert ("no confirmed email address" in reply.content) == (modes != {DeliveryMode.DISCORD})
    user = await world.user(CAROL)
    [sub] = await world.store.list_subscriptions(Owner.user(user.id))
    assert sub.deliver == frozenset(modes)


async def test_a_bad_query_is_a_clear_private_error(world: World) -> None:
    reply = await run(world, "subscribe", {"query": "title:(diffusion"})
    assert reply.ephemeral
    assert reply.content.startswith("❌ ")
    assert "column" in reply.content
    assert "Sorry" not in reply.content
    assert await world.store.list_subscriptions() == []


async def test_unsubscribe_offers_and_removes_only_your_own(world: World) -> None:
    await run(world, "subscribe", {"query": "language models"})
    await run(world, "subscribe", {"query": "robots", "delivery": "email_digest"})
    await run(world, "subscribe", {"query": "diffusion"}, user=BOB)
    offered = await choices(world, "unsubscribe", "subscription", "")
    assert offered == [("#1 language AND models (DM)", 1), ("#2 robots (email digest)", 2)]
    assert await choices(world, "unsubscribe", "subscription", "rob") == [offered[1]]
    assert await choices(world, "unsubscribe", "subscription", "", user=BOB) == [
        ("#3 diffusion (DM)", 3)
    ]
    refused = await run(world, "unsubscribe", {"subscription": 3})  # Bob's
    assert refused.ephemeral
    assert refused.content.startswith("❌ ")
    assert len(await world.store.list_subscriptions()) == 3
    reply = await run(world, "unsubscribe", {"subscription": 2})
    assert reply.content == "🗑️ Removed subscription #2: robots."
    assert [s.id for s in await world.store.list_subscriptions()] == [1, 3]


async def test_subscriptions_list_where_each_delivers_and_its_matches(world: World) -> None:
    empty = await run(world, "subscriptions")
    assert "no subscriptions yet" in empty.content
    await run(world, "subscribe", {"query": "language models"})
    await run(world, "subscribe", {"query": "robots", "delivery": "dm_digest"})
    user = await world.user(CAROL)
    record = MatchRecord(user.owner, "2411.10000", (1,), ("language",), 1.0, NOW)
    await record_matches(world.store, [record], NOW)
    reply = await run(world, "subscriptions")
    assert reply.ephemeral
    [embed] = reply.embeds
    assert embed["title"] == "You have 2 subscriptions"
    lines = unmark(embed["description"]).splitlines()
    assert lines == [
        "`#1` language AND models — DM · 1 match",
        "`#2` robots — DM + email digest · 0 matches",
    ]


async def test_test_shows_the_query_tester_without_subscribing(world: World) -> None:
    reply = await run(world, "test", {"query": 'language -"vision"'})
    assert reply.ephemeral
    assert reply.content.startswith('Query understood as language AND NOT "vision"')
    assert "Would have matched" in reply.content
    assert await world.store.list_subscriptions() == []


async def test_search_shows_the_top_five_as_embeds(world: World) -> None:
    reply = await run(world, "search", {"query": "language"})
    expected = await world.service.search("language", limit=5)
    assert len(expected) == 5
    assert embed_titles(reply.embeds) == [p.title for p in expected]
    buttons = [b for row in reply.components for b in row["components"]]
    assert [b["url"] for b in buttons[:2]] == [expected[0].links.abs, expected[0].links.pdf]
    nothing = await run(world, "search", {"query": "zzyzzx"})
    assert nothing.content == "No stored paper matches zzyzzx."


async def test_digest_previews_what_is_waiting(world: World) -> None:
    empty = await run(world, "digest")
    assert empty.content.startswith("Nothing is waiting for your next digest")
    await run(world, "subscribe", {"query": "language models", "delivery": "email_digest"})
    user = await world.user(CAROL)
    keys = (await world.service.test_query("language models")).keys[:3]
    records = [MatchRecord(user.owner, k, (1,), ("language",), 1.0, NOW) for k in keys]
    await record_matches(world.store, records, NOW)
    reply = await run(world, "digest")
    assert reply.content.startswith("📬 Your paperbell digest for ")
    assert "• language AND models — 3 papers" in reply.content
    papers = await world.store.get_papers(keys)
    assert sorted(embed_titles(reply.embeds)) == sorted(p.title for p in papers.values())


# --- settings and email --------------------------------------------------------------------


async def test_settings_timezone_autocomplete_and_changes(world: World) -> None:
    offered = await choices(world, "settings", "timezone", "berl")
    assert offered[0] == ("Europe/Berlin", "Europe/Berlin")
    assert len(await choices(world, "settings", "timezone", "")) == 25
    shown = await run(world, "settings")
    assert shown.content.startswith("Your settings:")
    assert "Digest: daily, at 08:00 UTC" in shown.content
    options: dict[str, OptionValue] = {"timezone": "Europe/Berlin", "digest_hour": 7}
    options |= {"frequency": "weekly"}
    changed = await run(world, "settings", options | {"weekday": 4, "alerts": "pause"})
    assert changed.content.startswith("✅ Settings saved.")
    assert "Alerts: ⏸️ paused" in changed.content
    assert "Digest: weekly on Fridays, at 07:00 Europe/Berlin" in changed.content
    user = await world.user(CAROL)
    assert (user.timezone, user.digest_hour, user.digest_weekday) == ("Europe/Berlin", 7, 4)
    assert user.digest_frequency is DigestFrequency.WEEKLY
    assert user.paused
    resumed = await run(world, "settings", {"alerts": "resume"})
    assert "Alerts: ▶️ on" in resumed.content
    bad = await run(world, "settings", {"timezone": "Mars/Olympus"})
    assert bad.content.startswith("❌ 'Mars/Olympus' is not a time zone I know")


async def test_email_set_verify_and_remove(world: World) -> None:
    reply = await run(world, "email", {"address": "Carol@Example.org"}, subcommand="set")
    assert reply.content.startswith("📧 A confirmation to Carol@example.org is queued")
    user = await world.user(CAROL)
    assert (user.email, user.email_verified) == ("Carol@example.org", False)
    wrong = await run(world, "email", {"code": "000000"}, subcommand="verify")
    assert wrong.content.startswith("❌ That code is not right")
    since = NOW - timedelta(days=1)
    [issued] = await world.store.confirmation_times(user.id, "Carol@example.org", since)
    links = LinkBuilder.from_settings(world.service.settings, world.service.signer)
    code = links.confirm_code(user.id, "Carol@example.org", issued)
    verified = await run(world, "email", {"code": code}, subcommand="verify")
    assert verified.content == "✅ Carol@example.org is confirmed: email delivery is on."
    assert (await world.user(CAROL)).email_verified
    removed = await run(world, "email", subcommand="remove")
    assert removed.content.startswith("🗑️ Your email address is removed")
    assert (await world.user(CAROL)).email is None
    bad = await run(world, "email", {"address": "not-an-address"}, subcommand="set")
    assert bad.content.startswith("❌ 'not-an-address' is not an email address")


# --- channels ------------------------------------------------------------------------------


async def test_channel_subscribe_list_unsubscribe_by_a_manager(world: World) -> None:
    here = PAPERS_CHANNEL.id
    handle = await world.fake.send_slash_command(
        "channel", {"query": "diffusion"}, user=BOB, guild=SAMPLE_GUILD, subcommand="subscribe",
        channel=here,
    )  # fmt: skip
    private = await handle.edited_original()
    announced = await handle.followup()
    assert private["flags"] & EPHEMERAL
    assert unmark(private["content"]).startswith(
        "✅ Subscribed (#1) to diffusion — delivered by this channel."
    )
    assert not announced["flags"] & EPHEMERAL  # the channel sees what will be posted
    assert unmark(announced["content"]) == "📌 Bob subscribed this channel to diffusion (#1)."
    [sub] = await world.store.list_subscriptions(Owner.channel(str(PAPERS_CHANNEL.id)))
    assert (sub.guild_id, sub.deliver) == (str(SAMPLE_GUILD.id), frozenset({DeliveryMode.DISCORD}))
    listed = await run(world, "channel", user=ALICE, subcommand="list", channel=here)
    assert unmark(listed.embeds[0]["description"]) == "`#1` diffusion — this channel · 0 matches"
    elsewhere = await run(world, "channel", user=BOB, subcommand="list")  # #general
    assert "This channel has no subscriptions yet" in elsewhere.content
    offered = await choices(
        world, "channel", "subscription", "", user=BOB, channel=here, subcommand="unsubscribe"
    )
    assert [value for _, value in offered] == [1]
    gone = await run(
        world, "channel", {"subscription": 1}, user=BOB, subcommand="unsubscribe", channel=here
    )
    assert gone.content == "🗑️ Removed subscription #1: diffusion."
    assert await world.store.list_subscriptions() == []


async def test_channel_commands_refuse_members_without_manage_server(world: World) -> None:
    with pytest.raises(CommandUnavailableError, match="MANAGE_GUILD"):
        await world.fake.send_slash_command(
            "channel", {"query": "x"}, user=CAROL, guild=SAMPLE_GUILD, subcommand="subscribe"
        )
    with pytest.raises(CommandUnavailableError, match="not available in DMs"):
        await world.fake.send_slash_command("channel", {}, user=BOB, guild=None, subcommand="list")
    # A server can override default permissions; the command checks again when it runs.
    handle = await world.fake.send_slash_command(
        "channel", {"query": "diffusion"}, user=CAROL, guild=SAMPLE_GUILD,
        subcommand="subscribe", enforce_permissions=False,
    )  # fmt: skip
    refused = await handle.response()
    assert refused.type == 4
    assert refused.ephemeral
    assert "Only members with the Manage Server permission" in refused.content
    assert await world.store.list_subscriptions() == []


# --- help, notices, errors -----------------------------------------------------------------


async def test_help_explains_paperbell_and_the_query_syntax(world: World) -> None:
    reply = await run(world, "help", guild=None)  # works in DMs too
    assert reply.ephemeral
    [embed] = reply.embeds
    assert "research papers" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert '"exact phrase"' in fields["Query syntax"]
    assert "/subscribe" in fields["Commands"]


async def test_a_pending_notice_comes_with_the_next_reply_once(world: World) -> None:
    user = await world.user(CAROL)
    await world.store.update_user(user.id, NOW, discord_notice_pending=True)
    first = await run(world, "subscriptions")
    assert first.content.startswith("⚠️ I could not DM you")
    second = await run(world, "subscriptions")
    assert "could not DM you" not in second.content


async def test_an_unexpected_error_is_an_apology_with_an_incident_id(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="handlers.discord.commands_tree")
    await world.store.close()  # the database is gone: a fault of ours, not the user's
    reply = await run(world, "subscriptions")
    match = re.fullmatch(r"Sorry, something went wrong \(incident ([0-9a-f]{6})\)\.", reply.content)
    assert match is not None
    assert reply.ephemeral
    [record] = [r for r in caplog.records if getattr(r, "incident", None) == match[1]]
    assert record.exc_info is not None
    assert "/subscriptions" in record.getMessage()


async def test_a_failure_after_the_answer_gets_its_own_private_note(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="handlers.discord.commands_tree")
    world.fake.fail_next("POST /webhooks/{app_id}/{token}", 403, {"code": 50013, "message": "no"})
    handle = await world.fake.send_slash_command(
        "channel", {"query": "diffusion"}, user=BOB, guild=SAMPLE_GUILD, subcommand="subscribe"
    )
    answered = await handle.edited_original()
    apology = await handle.followup()
    assert unmark(answered["content"]).startswith("✅ Subscribed")  # kept, not overwritten
    assert apology["flags"] & EPHEMERAL
    assert apology["content"].startswith("Sorry, something went wrong (incident ")
    assert len(caplog.records) == 1
