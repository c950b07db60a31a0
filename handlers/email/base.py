"""What the SMTP and file notifiers share: render a message, then hand it to a transport.

Mail stays within a size budget: a message over ``max_bytes``, or one a server refuses for
its size, goes out as two messages with half the papers each (and so on). One paper alone
is always small, because rendering caps every field, so a huge paper cannot take down the
alert it shares with others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from bot.delivery.notifier import (
    AlertMessage,
    Channel,
    ConfirmationMessage,
    DigestMessage,
    FollowNoteMessage,
    ManageLinkMessage,
)
from bot.errors import MessageTooLargeError
from handlers.email._parts import halve_alerts, halve_digest
from handlers.email.render import Renderer

MAX_MESSAGE_BYTES = 1_000_000  # under every common server limit (Gmail 25 MB, many 10 MB)
M = TypeVar("M", AlertMessage, DigestMessage)


class EmailNotifier(ABC):
    """``bot.delivery.notifier.Notifier`` for email, plus ``send_confirmation``.

    Subclasses implement ``_deliver``; it raises only ``DeliveryError`` subclasses.
    """

    channel: Channel = Channel.EMAIL

    def __init__(self, renderer: Renderer, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.renderer = renderer
        self.max_bytes = max_bytes

    async def send_alerts(self, message: AlertMessage) -> None:
        await self._send_in_parts(message, self.renderer.alerts_bytes, halve_alerts)

    async def send_digest(self, message: DigestMessage) -> None:
        await self._send_in_parts(message, self.renderer.digest_bytes, halve_digest)

    async def send_confirmation(self, message: ConfirmationMessage) -> None:
        payload = self.renderer.confirmation_bytes(message)
        await self._deliver(message.key, payload, message.address)

    async def send_manage_link(self, message: ManageLinkMessage) -> None:
        payload = self.renderer.manage_link_bytes(message)
        await self._deliver(message.key, payload, message.address)

    async def send_follow_note(self, message: FollowNoteMessage) -> None:
        payload = self.renderer.follow_note_bytes(message)
        await self._deliver(message.key, payload, message.recipient.address)

    async def _send_in_parts(
        self,
        message: M,
        render: Callable[[M], bytes],
        halve: Callable[[M], tuple[M, M] | None],
    ) -> None:
        payload = render(message)
        parts = halve(message)
        if parts is None or len(payload) <= self.max_bytes:
            try:
                return await self._deliver(message.key, payload, message.recipient.address)
            except MessageTooLargeError:
                if parts is None:
                    raise
        for part in parts:  # too large for our budget or for the server
            await self._send_in_parts(part, render, halve)
        return None

    @abstractmethod
    async def _deliver(self, key: str, payload: bytes, address: str) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
