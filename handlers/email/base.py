"""What the SMTP and file notifiers share: render a message, then hand it to a transport."""

from __future__ import annotations

from abc import ABC, abstractmethod
from email.message import EmailMessage

from bot.notify import AlertMessage, Channel, ConfirmationMessage, DigestMessage
from handlers.email.render import Renderer


class EmailNotifier(ABC):
    """``bot.notify.Notifier`` for email, plus ``send_confirmation``.

    Subclasses implement ``_deliver``; it raises only ``DeliveryError`` subclasses.
    """

    channel: Channel = Channel.EMAIL

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    async def send_alerts(self, message: AlertMessage) -> None:
        rendered = self.renderer.alerts(message)
        await self._deliver(message.key, rendered, message.recipient.address)

    async def send_digest(self, message: DigestMessage) -> None:
        rendered = self.renderer.digest(message)
        await self._deliver(message.key, rendered, message.recipient.address)

    async def send_confirmation(self, message: ConfirmationMessage) -> None:
        rendered = self.renderer.confirmation(message)
        await self._deliver(message.key, rendered, message.address)

    @abstractmethod
    async def _deliver(self, key: str, message: EmailMessage, address: str) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
