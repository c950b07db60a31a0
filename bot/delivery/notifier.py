"""The one interface every delivery channel implements (the messages: ``bot.messages``).

The core decides *what* to send and *to whom* (outbox, digests); a ``Notifier`` only turns
one message into one channel's wire format and sends it, raising
``TransientDeliveryError`` (retry later), ``PermanentDeliveryError`` (give up, with the
reason) or ``ChannelDownError`` (stop the channel). Notifiers never log-and-swallow.
"""

from __future__ import annotations

from typing import Protocol

from bot.messages import (
    AlertItem,
    AlertMessage,
    Channel,
    ConfirmationMessage,
    DigestMessage,
    DigestSection,
    FollowNoteMessage,
    ManageLinkMessage,
    MatchedSubscription,
    MessageLinks,
    Recipient,
    RecipientKind,
)
from bot.models import DeliveryMode

# The vocabulary is re-exported, so channels import everything from this one module.
__all__ = [
    "AlertItem",
    "AlertMessage",
    "Channel",
    "ConfirmationMessage",
    "DeliveryMode",
    "DigestMessage",
    "DigestSection",
    "FollowNoteMessage",
    "ManageLinkMessage",
    "MatchedSubscription",
    "MessageLinks",
    "Notifier",
    "Recipient",
    "RecipientKind",
]


class Notifier(Protocol):
    channel: Channel

    async def send_alerts(self, message: AlertMessage) -> None: ...

    async def send_digest(self, message: DigestMessage) -> None: ...

    async def close(self) -> None: ...
