"""The Discord client: paperbell's slash commands, and the notifier that shares its login.

Resources are made outside and passed in (the core service, its settings, the store that
keeps the command hash), so the client holds no globals and tests build it over a fake.
``setup_hook`` syncs the commands when they changed (see ``commands_tree``). Intents are
minimal: slash commands arrive as interactions whatever the intents, and ``GUILDS`` alone
keeps the guild and channel cache discord.py builds them from; nothing privileged, no
message content.

Wiring, for the daemon::

    client = build_discord(settings, service)      # None, and one log line, without a token
    if client is not None:
        notifier = client.notifier()               # register for Channel.DISCORD
        task = asyncio.create_task(client.serve()) # log in, sync, run until client.close()

``handlers.discord.channel`` does exactly this as the daemon's channel plugin.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.delivery.notifier import Recipient, RecipientKind
from bot.errors import ConfigError
from bot.service import Paperbell
from bot.settings import DiscordSettings, Settings
from handlers.discord.commands import register
from handlers.discord.commands_tree import MetaStore, PaperbellTree, sync_if_changed
from handlers.discord.notifier import DiscordNotifier, DmChannelCallback
from handlers.discord.rating import handle_rating

log = logging.getLogger(__name__)


def minimal_intents() -> discord.Intents:
    return discord.Intents(guilds=True)


def remember_dm_channel(service: Paperbell) -> DmChannelCallback:
    """The notifier's ``on_dm_channel``: store a newly opened DM channel on the user."""

    async def remember(recipient: Recipient, channel_id: str) -> None:
        if recipient.kind is RecipientKind.USER:
            await service.store.update_user(
                recipient.owner_id, service.clock(), discord_dm_channel=channel_id
            )

    return remember


class DiscordClient(discord.Client):
    """discord.py's client with paperbell's command tree; see the module docstring."""

    def __init__(
        self,
        service: Paperbell,
        settings: DiscordSettings,
        *,
        meta: MetaStore | None = None,
        **options: Any,  # passed to discord.Client (tests shorten guild_ready_timeout)
    ) -> None:
        if settings.application_id:
            options.setdefault("application_id", int(settings.application_id))
        super().__init__(
            intents=minimal_intents(), allowed_mentions=discord.AllowedMentions.none(), **options
        )
        self.service = service
        self.discord_settings = settings
        self.meta: MetaStore = meta if meta is not None else service.store
        self.tree = PaperbellTree(self)
        register(self.tree, service)
        self.synced: bool | None = None  # after login: whether the commands were pushed

    async def setup_hook(self) -> None:
        self.synced = await self.sync_commands()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Push the commands if they changed since the last sync (or ``force``); logged in."""
        if self.application_id is None:  # discord.py fills it in at login
            raise ConfigError("PAPERBELL_DISCORD__APPLICATION_ID: Discord gave no application id")
        guild_id = self.discord_settings.guild_id
        return await sync_if_changed(
            self.tree,
            self.meta,
            application_id=self.application_id,
            guild_id=int(guild_id) if guild_id else None,
            force=force,
        )

    async def on_interaction(self, interaction: discord.Interaction[discord.Client]) -> None:
        """Clicks on the 👍 / 👎 / "more like this" menus (slash commands go to the tree)."""
        if interaction.type is discord.InteractionType.component:
            await handle_rating(interaction, self.service)

    async def on_ready(self) -> None:
        name = self.user.name if self.user else "?"
        log.info("Discord: logged in as %s, in %d guild(s)", name, len(self.guilds))

    def notifier(self) -> DiscordNotifier:
        """The Discord channel's notifier, remembering DM channels it opens on the user."""
        return DiscordNotifier(self, on_dm_channel=remember_dm_channel(self.service))

    async def log_in(self) -> None:
        """Log in over REST and sync the commands if they changed; the notifier works
        from here on. A missing or rejected token is a ``ConfigError``."""
        token = self.discord_settings.token
        secret = token.get_secret_value() if token is not None else ""
        if not secret:
            raise ConfigError("PAPERBELL_DISCORD__TOKEN: no token to log in with")
        try:
            await self.login(secret)
        except discord.LoginFailure as exc:
            await self.close()
            raise ConfigError(f"PAPERBELL_DISCORD__TOKEN: Discord rejected it ({exc})") from exc
        except BaseException:  # Discord down, a failed sync: free the HTTP session, re-raise
            await self.close()
            raise

    def reopen(self) -> None:
        """Make a closed client able to log in again: discord.py's ``clear()``, and a new
        connection pool, since closing the HTTP session closed the old one."""
        self.clear()
        connector = self.http.connector
        if connector is not discord.utils.MISSING and connector.closed:
            self.http.connector = discord.utils.MISSING

    async def serve(self) -> None:
        """Log in, then hold the gateway session (slash commands) until ``close()``."""
        await self.log_in()
        await self.connect(reconnect=True)


def build_discord(settings: Settings, service: Paperbell, **options: Any) -> DiscordClient | None:
    """The Discord client, or None (saying so in one log line) when no token is set."""
    token = settings.discord.token
    if token is None or not token.get_secret_value():
        log.info("Discord: off (PAPERBELL_DISCORD__TOKEN is not set); running without it")
        return None
    scope = f"guild {settings.discord.guild_id}" if settings.discord.guild_id else "globally"
    log.info("Discord: on; slash commands sync %s", scope)
    return DiscordClient(service, settings.discord, **options)
