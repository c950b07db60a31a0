"""paperbell's slash commands: parse the interaction, call the core, render the result.

``register(tree, service)`` adds every command. Each one defers first (see
``commands_common``), calls exactly one use case of ``bot.service.Paperbell`` and answers
privately. A user only ever names their own subscriptions: the owner always comes from
the interaction, never from an option, and autocomplete lists only the caller's own.
Subscriptions here; settings, email and the digest preview in ``commands_account``;
channel subscriptions in ``commands_channel``.
"""

from __future__ import annotations

from typing import Any

from discord import app_commands

from bot.models import Owner
from bot.service import Paperbell
from handlers.discord.commands_account import ACCOUNT_COMMANDS
from handlers.discord.commands_channel import channel_group
from handlers.discord.commands_common import (
    DELIVERY_CHOICES,
    QUERY_HELP,
    Command,
    Interaction,
    Query,
    SubscriptionId,
    answer,
    begin,
    subscription_choices,
)
from handlers.discord.render_replies import (
    SEARCH_RESULTS,
    help_reply,
    query_test_reply,
    recommend_reply,
    search_reply,
    subscribed_reply,
    subscriptions_reply,
    unsubscribed_reply,
    why_reply,
)

SEARCH_MAX = 200
RECOMMEND_MAX = 10  # one message of embeds


def register(tree: app_commands.CommandTree[Any], service: Paperbell) -> None:
    factories = (
        subscribe_command,
        unsubscribe_command,
        subscriptions_command,
        test_command,
        search_command,
        recommend_command,
        why_command,
        *ACCOUNT_COMMANDS,
        channel_group,
        help_command,
    )
    for factory in factories:
        tree.add_command(factory(service))


def subscribe_command(service: Paperbell) -> Command:
    @app_commands.command(
        name="subscribe", description="Get alerts for new papers matching a query"
    )
    @app_commands.describe(
        query=QUERY_HELP, delivery="Where matches go (default: a DM as they arrive)"
    )
    @app_commands.choices(
        delivery=[
            app_commands.Choice(name=label, value=key)
            for key, (label, _) in DELIVERY_CHOICES.items()
        ]
    )
    async def subscribe(interaction: Interaction, query: Query, delivery: str = "dm") -> None:
        caller = await begin(interaction, service)
        done = await service.subscribe(caller.owner, query, DELIVERY_CHOICES[delivery][1])
        await answer(interaction, subscribed_reply(done, caller.user))

    return subscribe


def unsubscribe_command(service: Paperbell) -> Command:
    @app_commands.command(name="unsubscribe", description="Stop one of your subscriptions")
    @app_commands.describe(subscription="The subscription to stop (start typing its query)")
    async def unsubscribe(interaction: Interaction, subscription: SubscriptionId) -> None:
        caller = await begin(interaction, service)
        removed = await service.unsubscribe(caller.owner, subscription)
        await answer(interaction, unsubscribed_reply(removed))

    @unsubscribe.autocomplete("subscription")
    async def own_subscriptions(
        interaction: Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        # Only the caller's own: the owner comes from the interaction, never from input.
        user = await service.user_for_discord(str(interaction.user.id))
        views = await service.subscriptions(Owner.user(user.id))
        return subscription_choices([v.subscription for v in views], current)

    return unsubscribe


def subscriptions_command(service: Paperbell) -> Command:
    @app_commands.command(
        name="subscriptions", description="List your subscriptions and their matches so far"
    )
    async def subscriptions(interaction: Interaction) -> None:
        caller = await begin(interaction, service)
        views = await service.subscriptions(caller.owner)
        followed = await service.followed(caller.owner)
        await answer(interaction, subscriptions_reply(views, channel=False, followed=followed))

    return subscriptions


def test_command(service: Paperbell) -> Command:
    @app_commands.command(
        name="test", description="Try a query on recent papers without subscribing"
    )
    @app_commands.describe(query=QUERY_HELP)
    async def test(interaction: Interaction, query: Query) -> None:
        await begin(interaction, service)
        await answer(interaction, query_test_reply(await service.test_query(query)))

    return test


def search_command(service: Paperbell) -> Command:
    @app_commands.command(name="search", description="Search the stored papers, best match first")
    @app_commands.describe(query='A query as for /subscribe: words, "phrases", word*, author:')
    async def search(
        interaction: Interaction, query: app_commands.Range[str, 1, SEARCH_MAX]
    ) -> None:
        await begin(interaction, service)
        papers = await service.search(query, limit=SEARCH_RESULTS)
        await answer(interaction, search_reply(query, papers))

    return search


def recommend_command(service: Paperbell) -> Command:
    @app_commands.command(
        name="recommend", description="The best recent papers for you, by what you liked"
    )
    @app_commands.describe(days="How far back to look (default 7)", limit="How many (default 5)")
    async def recommend(
        interaction: Interaction,
        days: app_commands.Range[int, 1, 365] = 7,
        limit: app_commands.Range[int, 1, RECOMMEND_MAX] = 5,
    ) -> None:
        caller = await begin(interaction, service)
        found = await service.recommend(caller.user.id, days=days, limit=limit)
        await answer(interaction, recommend_reply(found, days))

    return recommend


def why_command(service: Paperbell) -> Command:
    @app_commands.command(
        name="why", description="Why you got a paper, or where it stopped on its way to you"
    )
    @app_commands.describe(paper="An arXiv id (2406.11779, with or without v2) or arXiv/HF URL")
    async def why(interaction: Interaction, paper: app_commands.Range[str, 1, 200]) -> None:
        caller = await begin(interaction, service)
        await answer(interaction, why_reply(await service.why(caller.user, paper)))

    return why


def help_command(service: Paperbell) -> Command:
    @app_commands.command(name="help", description="What paperbell does and how to write a query")
    async def help_(interaction: Interaction) -> None:
        await begin(interaction, service)  # also delivers any notice owed to the caller
        await answer(interaction, help_reply())

    return help_
