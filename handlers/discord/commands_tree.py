"""The command tree with paperbell's one error handler, and syncing only what changed.

Error handling: a ``UserError`` (bad query, unknown subscription, limit reached, ...) is
the user's to fix, and its text is shown as-is. Discord's own refusals (a check failed, an
option could not be converted) get a plain sentence. Anything else is a fault of ours: it
is logged once with a short incident id, and the user sees an apology naming that id so a
report can be matched to the log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import Any, Protocol

import discord
from discord import app_commands

from bot.errors import UserError
from handlers.discord.commands_common import Interaction, send_error
from handlers.discord.render_replies import error_text

log = logging.getLogger(__name__)

SYNC_KEY = "discord.commands.{application}.{scope}"


class MetaStore(Protocol):
    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


def incident_id() -> str:
    return secrets.token_hex(3)


def refusal_text(error: app_commands.AppCommandError) -> str | None:
    """Discord-side refusals as a sentence for the user; None for a fault of ours."""
    if isinstance(error, app_commands.NoPrivateMessage):
        return "❌ This command works in a server channel, not in DMs."
    if isinstance(error, app_commands.MissingPermissions):
        return (
            "❌ Only members with the Manage Server permission can change this "
            "channel's subscriptions."
        )
    if isinstance(error, app_commands.TransformerError):
        return f"❌ I could not understand {str(error.value)[:100]!r} for that option."
    if isinstance(error, app_commands.CheckFailure):
        return "❌ You cannot use this command here."
    return None


class PaperbellTree(app_commands.CommandTree[discord.Client]):
    async def on_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        cause: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            cause = error.original
        if isinstance(cause, UserError):
            text = error_text(str(cause))
        else:
            text = refusal_text(error) or self._incident(interaction, cause)
        try:
            await send_error(interaction, text)
        except discord.HTTPException:
            # The boundary: nothing above us to raise to, so the lost reply is logged.
            log.exception("could not tell user %s: %s", interaction.user.id, text)

    def _incident(self, interaction: Interaction, cause: BaseException) -> str:
        incident = incident_id()
        name = interaction.command.qualified_name if interaction.command else "?"
        log.error(
            "incident %s: /%s by user %s in channel %s failed",
            incident,
            name,
            interaction.user.id,
            interaction.channel_id,
            exc_info=cause,
            extra={"incident": incident},
        )
        return f"Sorry, something went wrong (incident {incident})."


def command_hash(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None) -> str:
    """A stable hash of exactly what ``tree.sync(guild=guild)`` would send."""
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    payload.sort(key=lambda c: (int(c.get("type", 1)), str(c["name"])))
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    meta: MetaStore,
    *,
    application_id: int,
    guild_id: int | None,
    force: bool = False,
) -> bool:
    """Sync to the guild (instant, for development) or globally, only when the set changed.

    The hash of the last synced set is kept in the database per application and scope, so
    a restart with the same commands makes no request. Returns whether it synced.
    """
    guild = discord.Object(guild_id) if guild_id is not None else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    digest = command_hash(tree, guild)
    key = SYNC_KEY.format(application=application_id, scope=guild_id or "global")
    if not force and await meta.get_meta(key) == digest:
        log.info("Discord commands unchanged (%s): not synced", key)
        return False
    await tree.sync(guild=guild)
    await meta.set_meta(key, digest)
    log.info("Discord commands synced to %s", f"guild {guild_id}" if guild_id else "all guilds")
    return True
