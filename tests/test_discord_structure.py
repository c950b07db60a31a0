"""Every command and option has a valid name and a described purpose within Discord's limits,
and no two commands collide. Walks the payload exactly as the tree would sync it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.settings import DiscordSettings
from handlers.discord.client import DiscordClient, minimal_intents
from tests.discord_fake_validate import commands_problems
from tests.support_discord import open_service

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
EXPECTED = {
    "subscribe", "unsubscribe", "subscriptions", "test", "search", "digest", "settings",
    "email", "channel", "help", "recommend", "why",
}  # fmt: skip


@pytest.fixture
async def payload(tmp_path: Path) -> AsyncIterator[list[dict[str, Any]]]:
    service, store = await open_service(tmp_path)
    client = DiscordClient(service, DiscordSettings())
    yield [command.to_dict(client.tree) for command in client.tree.get_commands()]
    await store.close()


def valid_name(name: str) -> bool:
    """Discord's ``^[-_\\p{L}\\p{N}]{1,32}$``, in lower case for slash commands."""
    return (
        1 <= len(name) <= 32
        and all(ch.isalnum() or ch in "-_" for ch in name)
        and name == name.lower()
    )


def walk(items: list[dict[str, Any]], scope: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every command, group, subcommand and option, with the path it lives at."""
    for item in items:
        path = f"{scope} {item['name']}".strip()
        yield path, item
        yield from walk(item.get("options") or [], path)


def test_the_command_set(payload: list[dict[str, Any]]) -> None:
    assert {c["name"] for c in payload} == EXPECTED
    assert commands_problems(payload) == []  # what the fake (as Discord) would reject


def test_every_name_and_description_is_valid(payload: list[dict[str, Any]]) -> None:
    for path, item in walk(payload, ""):
        assert valid_name(item["name"]), path
        description = item.get("description", "")
        assert 1 <= len(description) <= 100, path
        assert description != "…", f"{path} has discord.py's placeholder, not a description"
        for choice in item.get("choices") or []:
            assert 1 <= len(choice["name"]) <= 100, path
        assert len(item.get("choices") or []) <= 25, path


def test_no_collisions_and_option_limits(payload: list[dict[str, Any]]) -> None:
    names = [c["name"] for c in payload]
    assert len(names) == len(set(names))
    for path, item in walk(payload, ""):
        options = item.get("options") or []
        assert len(options) <= 25, path
        option_names = [o["name"] for o in options]
        assert len(option_names) == len(set(option_names)), path
        required = [bool(o.get("required")) for o in options]
        assert required == sorted(required, reverse=True), f"{path}: required options first"


def test_options_that_need_autocomplete_have_it(payload: list[dict[str, Any]]) -> None:
    found = dict(walk(payload, ""))
    assert found["unsubscribe subscription"]["autocomplete"] is True
    assert found["channel unsubscribe subscription"]["autocomplete"] is True
    assert found["settings timezone"]["autocomplete"] is True
    assert [c["name"] for c in found["subscribe delivery"]["choices"]] == [
        "DM me as they arrive", "Email digest", "Email as they arrive", "DM + email digest"
    ]  # fmt: skip
    assert found["subscribe query"]["max_length"] == 512


def test_channel_commands_are_for_server_managers_in_servers(
    payload: list[dict[str, Any]],
) -> None:
    [channel] = [c for c in payload if c["name"] == "channel"]
    assert int(channel["default_member_permissions"]) == discord.Permissions.manage_guild.flag
    assert channel["contexts"] == [0]  # guild only
    assert channel["dm_permission"] is False
    assert {o["name"] for o in channel["options"]} == {"subscribe", "unsubscribe", "list"}
    assert {o["type"] for o in channel["options"]} == {SUB_COMMAND}
    others = [c for c in payload if c["name"] != "channel"]
    assert all(c.get("default_member_permissions") is None for c in others)


def test_intents_are_minimal() -> None:
    intents = minimal_intents()
    assert intents.guilds
    assert not (intents.members or intents.presences or intents.message_content)
    assert intents.value == discord.Intents(guilds=True).value
