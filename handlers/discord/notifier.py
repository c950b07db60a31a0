"""``DiscordNotifier``: alerts and digests as Discord messages, over discord.py's REST side.

It needs a logged-in ``discord.Client`` (``client.http`` carries the token) but no gateway
session: messages go out through ``client.get_partial_messageable(channel_id)``. A user's
alerts go to their DM channel; a channel subscription's to that guild channel.

DM channels. ``Recipient.dm_channel_id`` is the DM channel the core remembered. When it is
None the notifier opens one (``POST /users/@me/channels``), keeps it in memory for this
process and awaits ``on_dm_channel(recipient, channel_id)`` so the core can remember it
too; a later message then costs one request, not two. Discord keeps one DM channel per
user and bot for good, so a remembered id is trusted as it is.

Idempotence. A message of many papers becomes several Discord messages. Each carries a
nonce derived from (message key, part number, papers in the part) with ``enforce_nonce``
(discord.py sets it whenever a nonce is given), so if part 2 of 3 fails and the core
retries the whole message, Discord hands back part 1 instead of posting it twice. Discord
only remembers nonces for a few minutes: a retry hours later may repeat earlier parts,
which is the at-least-once the outbox promises, never a lost paper.

Errors. 50007 (cannot message this user, as 400 or 403), an unknown or inaccessible channel
→ ``PermanentDeliveryError(recipient_unreachable=True)``; a payload Discord rejects →
``PermanentDeliveryError``; 5xx, timeouts, dropped connections, a Cloudflare 429 →
``TransientDeliveryError``; a connection that cannot be made (DNS, refused) →
``ChannelUnreachableError`` (the alerts wait, the channel is probed again later); 401 →
``ChannelDownError``, and every later send fails the same way without touching Discord.
Rate limits are discord.py's job: it waits them out itself.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiohttp
import discord

from bot.delivery.notifier import (
    AlertMessage,
    Channel,
    DigestMessage,
    FollowNoteMessage,
    Recipient,
    RecipientKind,
)
from bot.errors import (
    ChannelDownError,
    ChannelUnreachableError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from handlers.discord.rating import message_view
from handlers.discord.render import MessagePart, alert_parts, digest_parts, follow_note_part

DmChannelCallback = Callable[[Recipient, str], Awaitable[None]]
T = TypeVar("T")

CANNOT_MESSAGE_USER = 50007
# Unknown Channel, Unknown User, Missing Access, Missing Permissions: this recipient is gone.
UNREACHABLE_CODES = frozenset({10003, 10013, 50001, 50013, CANNOT_MESSAGE_USER})
NONCE_CHARS = 25  # Discord's limit for a message nonce
DEFAULT_TIMEOUT = 60.0  # seconds per Discord message, rate-limit waits included
DETAIL_CHARS = 200  # of Discord's error text kept in the reason (a Cloudflare page is long)


def message_nonce(kind: str, key: str, part: int, paper_keys: Sequence[str]) -> str:
    """Stable across retries of the same message part, different for anything else."""
    seed = "\x1f".join([kind, key, str(part), *paper_keys])
    return hashlib.sha256(seed.encode()).hexdigest()[:NONCE_CHARS]


def delivery_error(exc: Exception, what: str) -> DeliveryError:
    """What a failure of discord.py means for the outbox."""
    if isinstance(exc, discord.HTTPException):
        said = " ".join((exc.text or "no detail").split())[:DETAIL_CHARS]
        detail = f"Discord {exc.status} (code {exc.code}) while {what}: {said}"
        if exc.status == 401:
            return ChannelDownError(
                f"{detail}. The bot token was rejected: Discord delivery is stopped until "
                "PAPERBELL_DISCORD__TOKEN is fixed and paperbell restarted"
            )
        if exc.code in UNREACHABLE_CODES:
            return PermanentDeliveryError(detail, recipient_unreachable=True)
        if exc.status >= 500 or exc.status == 429:
            return TransientDeliveryError(detail)
        return PermanentDeliveryError(detail)
    return _network_error(exc, what)


def _network_error(exc: Exception, what: str) -> DeliveryError:
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused: Discord is out of reach
        return ChannelUnreachableError(f"cannot reach Discord while {what}: {exc}")
    if isinstance(exc, discord.RateLimited):
        return TransientDeliveryError(f"Discord asked to wait {exc.retry_after:.0f}s while {what}")
    return TransientDeliveryError(f"{type(exc).__name__} while {what}: {exc}")


class DiscordNotifier:
    """The Discord channel of the ``Notifier`` interface (see the module docstring)."""

    channel = Channel.DISCORD

    def __init__(
        self,
        client: discord.Client,
        *,
        on_dm_channel: DmChannelCallback | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._on_dm_channel = on_dm_channel
        self._timeout = timeout
        self._dm_channels: dict[str, str] = {}  # Discord user id -> DM channel id
        self._down: str | None = None
        self._closed = False

    async def send_alerts(self, message: AlertMessage) -> None:
        await self._deliver("alert", message.key, message.recipient, alert_parts(message))

    async def send_digest(self, message: DigestMessage) -> None:
        await self._deliver("digest", message.key, message.recipient, digest_parts(message))

    async def send_follow_note(self, message: FollowNoteMessage) -> None:
        await self._deliver("note", message.key, message.recipient, [follow_note_part(message)])

    async def close(self) -> None:
        """Stop sending. The client belongs to whoever made it, who closes it."""
        self._closed = True

    # --- sending ---------------------------------------------------------------------------

    async def _deliver(
        self, kind: str, key: str, recipient: Recipient, parts: Sequence[MessagePart]
    ) -> None:
        self._check_usable(recipient)
        if not parts:
            return
        channel_id = await self._channel_for(recipient)
        target = self._client.get_partial_messageable(int(channel_id))
        for index, part in enumerate(parts):
            nonce = message_nonce(kind, key, index, part.paper_keys)
            await self._call(
                self._send(target, part, nonce), f"sending {kind} {key} part {index + 1}"
            )

    async def _send(
        self, target: discord.PartialMessageable, part: MessagePart, nonce: str
    ) -> None:
        view = message_view(part)
        await target.send(
            content=part.content or None,
            embeds=list(part.embeds),
            allowed_mentions=discord.AllowedMentions.none(),
            nonce=nonce,
            view=view if view is not None else discord.utils.MISSING,
        )

    async def _channel_for(self, recipient: Recipient) -> str:
        if recipient.kind is RecipientKind.CHANNEL:
            return recipient.address
        known = recipient.dm_channel_id or self._dm_channels.get(recipient.address)
        if known:
            return known
        data = await self._call(
            self._client.http.start_private_message(int(recipient.address)),
            f"opening a DM with user {recipient.address}",
        )
        channel_id = str(data["id"])
        if self._on_dm_channel is not None:
            await self._on_dm_channel(recipient, channel_id)
        # Cached only once the core has it: if remembering failed, the retry asks again.
        self._dm_channels[recipient.address] = channel_id
        return channel_id

    async def _call(self, call: Awaitable[T], what: str) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except (discord.DiscordException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = delivery_error(exc, what)
            if isinstance(error, ChannelDownError):
                self._down = str(error)
            raise error from exc

    def _check_usable(self, recipient: Recipient) -> None:
        if self._down is not None:
            raise ChannelDownError(self._down)
        if self._closed:
            raise ChannelDownError("the Discord notifier is closed")
        if recipient.channel is not Channel.DISCORD:
            raise PermanentDeliveryError(
                f"the Discord notifier cannot deliver to a {recipient.channel} recipient"
            )
        if not recipient.address.isdigit():
            raise PermanentDeliveryError(
                f"{recipient.address!r} is not a Discord id", recipient_unreachable=True
            )
        if self._client.http.token is None:
            raise TransientDeliveryError("the Discord client is not logged in yet")
