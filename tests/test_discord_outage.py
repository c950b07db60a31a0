"""Discord down at start-up, or a rejected token: alerts wait pending, never burnt.

The real channel plugin and dispatcher over a real store, against the loopback fake
Discord (``tests/discord_fake.py``), wired to a ``ChannelStatus`` as the daemon does it.
"""

from __future__ import annotations

import logging
import random
import socket
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.accounts.addresses import LinkBuilder
from bot.daemon.channels import ChannelContext
from bot.delivery.channel_status import ChannelState, ChannelStatus
from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher
from bot.delivery.notifier import Channel, Notifier
from bot.delivery.planning import record_matches
from bot.models import Owner
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import DeliveryState, Store
from handlers.discord.channel import DiscordChannel
from tests.discord_fake import FakeDiscord, discord_pointed_at
from tests.discord_fake_models import PAPERS_CHANNEL
from tests.support_daemon import eventually
from tests.support_discord import NOW, open_service
from tests.support_email import corpus
from tests.support_outbox import DISCORD, record

OWNER = Owner.channel(str(PAPERS_CHANNEL.id))
QUICK = DiscordChannel(first_retry=0.05, max_retry=0.2)


@dataclass(frozen=True)
class Nowhere:
    """Discord's endpoints on a loopback port nothing listens on."""

    port: int

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def queue_channel_alert(store: Store) -> None:
    sub = await store.add_subscription(OWNER, "papers", "graph", DISCORD, NOW, limit=5)
    keys = [p.key for p in corpus()[:2]]
    await record_matches(store, [record(OWNER, k, sub.id) for k in keys], NOW)


async def pending(store: Store) -> set[tuple[DeliveryState, int]]:
    return {(d.state, d.attempts) for d in await store.list_deliveries(OWNER)}


def wired(service: Paperbell, token: str) -> tuple[ChannelContext, ChannelStatus]:
    status = ChannelStatus(service.clock)
    settings = load_settings(data_dir=service.settings.data_dir, discord={"token": token})
    ctx = ChannelContext(
        settings, service, service.clock,
        on_down=status.stopped, on_waiting=status.waiting, on_up=status.up,
        on_starting=status.starting,
    )  # fmt: skip
    return ctx, status


def dispatcher(service: Paperbell, notifier: Notifier, status: ChannelStatus) -> Dispatcher:
    links = LinkBuilder.from_settings(service.settings, service.signer)
    channels = {Channel.DISCORD: notifier}
    return Dispatcher(
        service.store, channels, links, service.clock, random.Random(1), status=status
    )


async def test_a_rejected_token_stops_discord_once_and_its_alerts_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="paperbell.channels")
    service, store = await open_service(tmp_path)
    try:
        await queue_channel_alert(store)
        async with FakeDiscord() as fake:
            with discord_pointed_at(fake):
                ctx, status = wired(service, "wrong")
                async with AsyncExitStack() as stack:
                    notifier = await QUICK.open(ctx, stack)
                    assert notifier is not None
                    outbox = dispatcher(service, notifier, status)

                    def stopped() -> bool:
                        health = status.not_up().get(Channel.DISCORD)
                        return health is not None and health.state is ChannelState.STOPPED

                    await eventually(stopped, "Discord stopped")
                    for _ in range(3):
                        assert (await outbox.run_once()).counts == {}
                    assert await pending(store) == {(DeliveryState.PENDING, 0)}
                    assert "PAPERBELL_DISCORD__TOKEN" in status.not_up()[Channel.DISCORD].why
                errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
                assert len(errors) == 1 and "discord channel stopped" in errors[0].getMessage()

                # Fixed and restarted: what waited goes out.
                ctx, status = wired(service, fake.token)
                async with AsyncExitStack() as stack:
                    notifier = await QUICK.open(ctx, stack)
                    assert notifier is not None
                    await eventually(lambda: not status.not_up(), "Discord logged in")
                    report = await dispatcher(service, notifier, status).run_once()
                    assert report.count(DeliveryOutcome.SENT) == 2
        assert len(fake.channel_messages(PAPERS_CHANNEL.id)) == 1
    finally:
        await store.close()


async def test_discord_unreachable_at_start_is_tried_again_and_alerts_go_out(
    tmp_path: Path,
) -> None:
    service, store = await open_service(tmp_path)
    try:
        await queue_channel_alert(store)
        async with FakeDiscord() as fake, AsyncExitStack() as stack:
            ctx, status = wired(service, fake.token)
            with discord_pointed_at(Nowhere(closed_port())):
                notifier = await QUICK.open(ctx, stack)
                assert notifier is not None
                outbox = dispatcher(service, notifier, status)

                def unreachable() -> bool:
                    health = status.not_up().get(Channel.DISCORD)
                    return health is not None and "cannot reach Discord" in health.why

                await eventually(unreachable, "a failed log-in")
                assert (await outbox.run_once()).counts == {}
                assert await pending(store) == {(DeliveryState.PENDING, 0)}
            with discord_pointed_at(fake):  # Discord is back
                await eventually(lambda: not status.not_up(), "the log-in, tried again")
                report = await outbox.run_once()
                assert report.count(DeliveryOutcome.SENT) == 2
                await stack.aclose()
        assert len(fake.channel_messages(PAPERS_CHANNEL.id)) == 1
    finally:
        await store.close()
