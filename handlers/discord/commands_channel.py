"""/channel subscribe|unsubscribe|list: subscriptions that post to a guild channel.

Only members with Manage Server may use them. Discord hides the group from others
(``default_permissions``), and because a server can override that, every subcommand checks
the member's permissions again when it runs. The channel is always the one the command
is used in, so nobody can change another channel's subscriptions from here. A change is
confirmed privately and announced in the channel, so its members know what will be posted.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.models import DeliveryMode
from bot.service import Paperbell
from handlers.discord.commands_common import (
    NO_MENTIONS,
    QUERY_HELP,
    Interaction,
    Query,
    SubscriptionId,
    answer,
    begin,
    channel_owner,
    display_name,
    subscription_choices,
)
from handlers.discord.render_replies import (
    channel_announcement,
    channel_removal_announcement,
    subscribed_reply,
    subscriptions_reply,
    unsubscribed_reply,
)

DISCORD_ONLY = frozenset({DeliveryMode.DISCORD})


def channel_group(service: Paperbell) -> app_commands.Group:
    channel = app_commands.Group(
        name="channel",
        description="Alerts posted to this channel (Manage Server only)",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @channel.command(name="subscribe", description="Post papers matching a query to this channel")
    @app_commands.describe(query=QUERY_HELP)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def subscribe(interaction: Interaction, query: Query) -> None:
        owner, guild_id = channel_owner(interaction)
        await begin(interaction, service)
        done = await service.subscribe(owner, query, DISCORD_ONLY, guild_id=guild_id)
        await answer(interaction, subscribed_reply(done, None))
        text = channel_announcement(done.subscription, display_name(interaction))
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    @channel.command(name="unsubscribe", description="Stop one of this channel's subscriptions")
    @app_commands.describe(subscription="The subscription to stop (start typing its query)")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def unsubscribe(interaction: Interaction, subscription: SubscriptionId) -> None:
        owner, _ = channel_owner(interaction)
        await begin(interaction, service)
        removed = await service.unsubscribe(owner, subscription)
        await answer(interaction, unsubscribed_reply(removed))
        text = channel_removal_announcement(removed, display_name(interaction))
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    @unsubscribe.autocomplete("subscription")
    async def channel_subscriptions(
        interaction: Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            return []
        owner, _ = channel_owner(interaction)
        views = await service.subscriptions(owner)
        return subscription_choices([v.subscription for v in views], current)

    @channel.command(name="list", description="List this channel's subscriptions")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def list_(interaction: Interaction) -> None:
        owner, _ = channel_owner(interaction)
        await begin(interaction, service)
        views = await service.subscriptions(owner)
        await answer(interaction, subscriptions_reply(views, channel=True))

    return channel
