"""What every ``bot.delivery.notifier.Notifier`` must do, whatever its channel.

Use it by subclassing ``NotifierContract`` in a test module and providing a ``harness``
fixture (parametrise it to cover several notifiers)::

    class TestDiscordNotifierContract(NotifierContract):
        @pytest.fixture
        async def harness(self) -> AsyncIterator[Harness]:
            ...  # start the fake server, build the notifier
            yield Harness(notifier, read=..., break_channel=...,
                          recipient=..., foreign_recipient=...)
            await notifier.close()

The file is not collected on its own (its name does not start with ``test_``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import pytest

from bot.delivery.notifier import Notifier, Recipient
from bot.errors import DeliveryError, PermanentDeliveryError
from tests.support_email import alert_message, corpus, digest_message


@dataclass(frozen=True)
class Delivered:
    """One message as it arrived."""

    text: str  # everything a person can read in it, as plain text
    identity: str  # the same for every copy of one message (Message-ID, a nonce, ...)


@dataclass(frozen=True)
class Harness:
    notifier: Notifier
    read: Callable[[], Awaitable[list[Delivered]]]  # everything delivered so far
    break_channel: Callable[[], Awaitable[None]]  # make every later delivery fail
    recipient: Recipient  # someone this notifier can deliver to
    foreign_recipient: Recipient  # someone on another channel: must be refused


class NotifierContract:
    async def test_alerts_arrive_as_one_message_with_every_title(self, harness: Harness) -> None:
        papers = corpus()[:3]
        await harness.notifier.send_alerts(alert_message(papers, to=harness.recipient))
        delivered = await harness.read()
        assert len(delivered) == 1
        for paper in papers:
            assert " ".join(paper.title.split()) in delivered[0].text

    async def test_digest_arrives_as_one_message_with_every_title(self, harness: Harness) -> None:
        papers = corpus()[10:15]
        await harness.notifier.send_digest(digest_message(papers, to=harness.recipient))
        delivered = await harness.read()
        assert len(delivered) == 1
        for paper in papers:
            assert " ".join(paper.title.split()) in delivered[0].text

    async def test_same_key_twice_is_safe(self, harness: Harness) -> None:
        message = alert_message(corpus()[20:22], key="alert:retry", to=harness.recipient)
        await harness.notifier.send_alerts(message)
        await harness.notifier.send_alerts(message)
        delivered = await harness.read()
        assert 1 <= len(delivered) <= 2  # at least once; a second copy must be recognisable
        assert len({copy.identity for copy in delivered}) == 1
        assert all(corpus()[20].title.split()[0] in copy.text for copy in delivered)

    async def test_different_keys_are_different_messages(self, harness: Harness) -> None:
        for key in ("alert:a", "alert:b"):
            await harness.notifier.send_alerts(
                alert_message(corpus()[30:31], key=key, to=harness.recipient)
            )
        delivered = await harness.read()
        assert len({copy.identity for copy in delivered}) == 2

    async def test_close_is_idempotent(self, harness: Harness) -> None:
        await harness.notifier.send_alerts(alert_message(corpus()[:1], to=harness.recipient))
        await harness.notifier.close()
        await harness.notifier.close()
        assert len(await harness.read()) == 1

    async def test_failures_are_delivery_errors(self, harness: Harness) -> None:
        await harness.break_channel()
        with pytest.raises(DeliveryError):
            await harness.notifier.send_alerts(alert_message(corpus()[:2], to=harness.recipient))
        with pytest.raises(DeliveryError):
            await harness.notifier.send_digest(digest_message(corpus()[:2], to=harness.recipient))

    async def test_recipient_of_another_channel_is_refused(self, harness: Harness) -> None:
        message = alert_message(corpus()[:1], to=harness.foreign_recipient)
        with pytest.raises(PermanentDeliveryError):
            await harness.notifier.send_alerts(message)
        digest = replace(digest_message(corpus()[:1]), recipient=harness.foreign_recipient)
        with pytest.raises(PermanentDeliveryError):
            await harness.notifier.send_digest(digest)
        assert await harness.read() == []
