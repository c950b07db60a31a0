"""What every slash command does around its one call to the core.

``begin`` acknowledges the interaction at once (a deferred, ephemeral "thinking" reply, so
Discord's 3-second deadline never bites however slow the database is), finds the caller's
account and takes any notice the core owes them. ``answer`` replaces the "thinking" reply
with the result. Errors are not handled here: they reach the tree's one error handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from bot.matching.query import USER_LIMITS
from bot.models import DeliveryMode, Owner, Subscription, User
from bot.service import Paperbell
from handlers.discord.render import link_view
from handlers.discord.render_replies import Reply, subscription_choice_name, with_notice

Interaction = discord.Interaction[discord.Client]
Command = app_commands.Command[Any, ..., Any]

NOTICE = "paperbell.notice"  # interaction.extras: the notice taken for this interaction
ANSWERED = "paperbell.answered"  # interaction.extras: the deferred reply holds an answer
NO_MENTIONS = discord.AllowedMentions.none()
CHOICES_MAX = 25  # Discord's limit for autocomplete answers

Query = app_commands.Range[str, 1, USER_LIMITS.length]
SubscriptionId = app_commands.Range[int, 1, 2**53 - 1]  # Discord integers stop at 2**53
QUERY_HELP = 'What to look for, e.g. llm agents OR "tool use" (syntax: /help)'

DELIVERY_CHOICES: dict[str, tuple[str, frozenset[DeliveryMode]]] = {
    "dm": ("DM me as they arrive", frozenset({DeliveryMode.DISCORD})),
    "email_digest": ("Email digest", frozenset({DeliveryMode.EMAIL_DIGEST})),
    "email_instant": ("Email as they arrive", frozenset({DeliveryMode.EMAIL_INSTANT})),
    "dm_digest": (
        "DM + email digest",
        frozenset({DeliveryMode.DISCORD, DeliveryMode.EMAIL_DIGEST}),
    ),
}


@dataclass(frozen=True, slots=True)
class Caller:
    user: User

    @property
    def owner(self) -> Owner:
        return Owner.user(self.user.id)


async def begin(interaction: Interaction, service: Paperbell) -> Caller:
    """Defer (ephemeral), then resolve the caller and take the notice owed to them."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    user = await service.user_for_discord(str(interaction.user.id))
    interaction.extras[NOTICE] = await service.take_notice(user.id)
    return Caller(user)


async def answer(interaction: Interaction, reply: Reply) -> None:
    """Put ``reply`` (after any notice) in place of the deferred "thinking" message."""
    reply = with_notice(reply, interaction.extras.pop(NOTICE, None))
    view = link_view(reply.buttons)
    await interaction.edit_original_response(
        content=reply.content or None,
        embeds=list(reply.embeds),
        allowed_mentions=NO_MENTIONS,
        view=view,
    )
    interaction.extras[ANSWERED] = True


async def send_error(interaction: Interaction, text: str) -> None:
    """Show ``text`` privately, whether or not the interaction was acknowledged yet."""
    notice = interaction.extras.pop(NOTICE, None)
    content = with_notice(Reply(text), notice).content
    if not interaction.response.is_done():
        await interaction.response.send_message(
            content, ephemeral=True, allowed_mentions=NO_MENTIONS
        )
    elif interaction.extras.get(ANSWERED):
        await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.edit_original_response(
            content=content, embeds=[], allowed_mentions=NO_MENTIONS, view=None
        )


def channel_owner(interaction: Interaction) -> tuple[Owner, str]:
    """The owner of this channel's subscriptions and its guild id (guild-only commands)."""
    if interaction.guild_id is None or interaction.channel_id is None:
        raise discord.app_commands.NoPrivateMessage()
    return Owner.channel(str(interaction.channel_id)), str(interaction.guild_id)


def display_name(interaction: Interaction) -> str:
    return interaction.user.display_name


def subscription_choices(subs: list[Subscription], current: str) -> list[app_commands.Choice[int]]:
    """Autocomplete entries for these subscriptions whose id or query holds ``current``."""
    typed = str(current or "").strip().lower().lstrip("#")
    found = [s for s in subs if typed in f"{s.id} {s.normalized} {s.query}".lower()]
    return [
        app_commands.Choice(name=subscription_choice_name(s), value=s.id)
        for s in found[:CHOICES_MAX]
    ]
