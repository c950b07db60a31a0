"""DiscordNotifier with the real discord.py client against the loopback fake Discord.

Alerts arrive as DMs and channel posts; the fake answers 50007, 429, 401 and 5xx to test
those paths, and every test counts the requests an alert cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import discord
import pytest

from bot.delivery.notifier import Channel, Recipient
from bot.errors import (
    ChannelDownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from handlers.discord.notifier import DiscordNotifier
from tests.discord_fake import FakeDiscord, QuickClient
from tests.discord_fake_models import CAROL, DAVE, GENERAL_CHANNEL, PAPERS_CHANNEL
from tests.discord_fake_state import Fault
from tests.notifier_contract import Delivered, Harness, NotifierContract
from tests.support_discord import channel_recipient, dm_recipient, embed_titles, message_text
from tests.support_email import alert_message, corpus, digest_message, recipient

POST_MESSAGE = "POST /channels/{channel_id}/messages"
OPEN_DM = "POST /users/@me/channels"
LIMIT = 10.0


@dataclass
class Remembered:
    """What the notifier reported through ``on_dm_channel``."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, to: Recipient, channel_id: str) -> None:
        self.calls.append((to.address, channel_id))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    made = QuickClient()
    async with fake.connected(made):
        yield made


@pytest.fixture
def remembered() -> Remembered:
    return Remembered()


@pytest.fixture
def notifier(client: discord.Client, remembered: Remembered) -> DiscordNotifier:
    return DiscordNotifier(client, on_dm_channel=remembered, timeout=LIMIT)


class TestDiscordNotifierContract(NotifierContract):
    @pytest.fixture
    async def harness(self, fake: FakeDiscord, notifier: DiscordNotifier) -> Harness:
        async def read() -> list[Delivered]:
            return [
                Delivered(message_text(m.content, m.embeds), str(m.payload["nonce"]))
                for m in fake.dm_messages(CAROL.id)
            ]

        async def break_channel() -> None:
            fake.fail_next("/*", 503, {"code": 0, "message": "unavailable"}, times=100)

        return Harness(notifier, read, break_channel, dm_recipient(CAROL), recipient())


# --- DMs and channel posts -----------------------------------------------------------------


async def test_a_cycle_arrives_as_a_dm_and_a_channel_post(
    fake: FakeDiscord, notifier: DiscordNotifier, remembered: Remembered
) -> None:
    papers = corpus()[:4]
    async with asyncio.timeout(LIMIT):
        await notifier.send_alerts(alert_message(papers[:2], key="a:carol", to=dm_recipient(CAROL)))
        await notifier.send_alerts(
            alert_message(papers[2:], key="a:chan", to=channel_recipient(PAPERS_CHANNEL))
        )
    [dm] = fake.dm_messages(CAROL.id)
    [post] = fake.channel_messages(PAPERS_CHANNEL.id)
    assert embed_titles(dm.embeds) == [p.title for p in papers[:2]]
    assert embed_titles(post.embeds) == [p.title for p in papers[2:]]
    assert post.content.startswith("🔔 2 new papers for this channel")
    assert remembered.calls == [(str(CAROL.id), str(fake.dm_channel_id(CAROL.id)))]
    assert fake.count(OPEN_DM) == 1
    assert fake.count(POST_MESSAGE) == 2
    buttons = [c for row in post.payload["components"] for c in row["components"]]
    assert [(b["label"], b["style"]) for b in buttons] == [
        ("#1 Abstract", 5), ("#1 PDF", 5), ("#2 Abstract", 5), ("#2 PDF", 5)
    ]  # fmt: skip
    assert fake.channel_messages(GENERAL_CHANNEL.id) == []


async def test_the_dm_channel_is_opened_once_and_a_remembered_one_is_used(
    fake: FakeDiscord, client: discord.Client, notifier: DiscordNotifier
) -> None:
    async with asyncio.timeout(LIMIT):
        for key in ("a:1", "a:2"):
            await notifier.send_alerts(alert_message(corpus()[:1], key=key, to=dm_recipient(CAROL)))
        fresh = DiscordNotifier(client)  # a restart: nothing in memory
        known = str(fake.dm_channel_id(CAROL.id))
        await fresh.send_alerts(
            alert_message(corpus()[1:2], key="a:3", to=dm_recipient(CAROL, dm_channel_id=known))
        )
    assert fake.count(OPEN_DM) == 1
    assert len(fake.dm_messages(CAROL.id)) == 3


async def test_twenty_five_papers_are_three_messages_and_four_requests(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    papers = corpus()[:25]
    before = len(fake.requests)  # logging in asked for the bot and the application
    async with asyncio.timeout(LIMIT):
        await notifier.send_alerts(alert_message(papers, to=dm_recipient(CAROL)))
    messages = fake.dm_messages(CAROL.id)
    assert [len(m.embeds) for m in messages] == [10, 10, 5]
    assert [t for m in messages for t in embed_titles(m.embeds)] == [p.title for p in papers]
    assert len(fake.requests) - before == 4  # 1 DM open + 3 posts
    assert fake.unknown_requests == []


async def test_everyone_pings_nobody(fake: FakeDiscord, notifier: DiscordNotifier) -> None:
    message = alert_message(corpus()[:1], to=channel_recipient(PAPERS_CHANNEL))
    sub = message.items[0].subscriptions[0]
    loud = type(sub)(sub.sub_id, "@everyone", ("read",))
    item = type(message.items[0])(message.items[0].paper, (loud,))
    async with asyncio.timeout(LIMIT):
        await notifier.send_alerts(type(message)(message.key, message.recipient, (item,)))
    [post] = fake.channel_messages(PAPERS_CHANNEL.id)
    assert post.payload["allowed_mentions"] == {"parse": []}
    assert post.message["mention_everyone"] is False
    assert post.message["mentions"] == []


async def test_a_digest_goes_to_a_channel(fake: FakeDiscord, notifier: DiscordNotifier) -> None:
    papers = corpus()[60:72]
    async with asyncio.timeout(LIMIT):
        await notifier.send_digest(digest_message(papers, to=channel_recipient(PAPERS_CHANNEL)))
    first, second = fake.channel_messages(PAPERS_CHANNEL.id)
    assert first.content.startswith("📬 **Your paperbell digest for Fri 22 Nov 2024**")
    assert len(first.embeds) + len(second.embeds) == 12


# --- faults --------------------------------------------------------------------------------


async def test_dms_closed_is_permanent_and_unreachable(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await asyncio.wait_for(
            notifier.send_alerts(alert_message(corpus()[:1], to=dm_recipient(DAVE))), LIMIT
        )
    assert caught.value.recipient_unreachable
    assert "50007" in caught.value.reason
    body = {"code": 50007, "message": "Cannot send messages to this user"}
    fake.fail_next(POST_MESSAGE, 400, body)  # Discord also answers it as a 400
    with pytest.raises(PermanentDeliveryError) as again:
        await asyncio.wait_for(
            notifier.send_alerts(alert_message(corpus()[:1], to=dm_recipient(CAROL))), LIMIT
        )
    assert again.value.recipient_unreachable
    assert fake.dm_messages(CAROL.id) == []


async def test_a_rate_limit_is_waited_out_by_discord_py(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    fake.rate_limit_next(POST_MESSAGE, retry_after=0.01)
    to = channel_recipient(PAPERS_CHANNEL)
    await asyncio.wait_for(notifier.send_alerts(alert_message(corpus()[:3], to=to)), LIMIT)
    assert [r.status for r in fake.requests_to(POST_MESSAGE)] == [429, 200]
    assert len(fake.channel_messages(PAPERS_CHANNEL.id)) == 1


async def test_a_cloudflare_429_and_a_503_are_transient(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    to = channel_recipient(PAPERS_CHANNEL)
    fake.fail_next(POST_MESSAGE, 429, "<html>banned</html>")
    with pytest.raises(TransientDeliveryError, match="429"):
        await asyncio.wait_for(notifier.send_alerts(alert_message(corpus()[:1], to=to)), LIMIT)
    fake.fail_next(POST_MESSAGE, 503, {"message": "unavailable"})
    with pytest.raises(TransientDeliveryError, match="503"):
        await asyncio.wait_for(notifier.send_alerts(alert_message(corpus()[:1], to=to)), LIMIT)
    assert fake.count(POST_MESSAGE) == 2
    assert fake.channel_messages(PAPERS_CHANNEL.id) == []


async def test_a_timeout_is_transient(fake: FakeDiscord, client: discord.Client) -> None:
    impatient = DiscordNotifier(client, timeout=0.05)
    fake.rate_limit_next(POST_MESSAGE, retry_after=2.0)  # discord.py would wait 2 s
    to = channel_recipient(PAPERS_CHANNEL)
    with pytest.raises(TransientDeliveryError, match="TimeoutError"):
        await asyncio.wait_for(impatient.send_alerts(alert_message(corpus()[:1], to=to)), LIMIT)


async def test_401_stops_the_channel_loudly(fake: FakeDiscord, notifier: DiscordNotifier) -> None:
    fake.fail_next(POST_MESSAGE, 401, {"code": 0, "message": "401: Unauthorized"})
    to = channel_recipient(PAPERS_CHANNEL)
    with pytest.raises(ChannelDownError, match="PAPERBELL_DISCORD__TOKEN"):
        await asyncio.wait_for(notifier.send_alerts(alert_message(corpus()[:1], to=to)), LIMIT)
    before = len(fake.requests)
    with pytest.raises(ChannelDownError):
        await notifier.send_digest(digest_message(corpus()[:1], to=to))
    assert len(fake.requests) == before  # stopped: Discord is not asked again


async def test_unknown_channel_is_permanent(fake: FakeDiscord, notifier: DiscordNotifier) -> None:
    gone = channel_recipient(PAPERS_CHANNEL)
    gone = Recipient(gone.kind, 5, Channel.DISCORD, "1300000000000000555")
    with pytest.raises(PermanentDeliveryError) as caught:
        await asyncio.wait_for(notifier.send_alerts(alert_message(corpus()[:1], to=gone)), LIMIT)
    assert caught.value.recipient_unreachable
    assert "10003" in caught.value.reason


class FailNth(Fault):
    """Answer only the ``nth`` matching request (1-based) with the fault."""

    def __init__(self, pattern: str, status: int, nth: int) -> None:
        method, _, path = pattern.partition(" ")
        super().__init__(method, path, status, {"message": "flaky"}, {}, 1)
        self.seen = 0
        self.nth = nth

    def matches(self, method: str, path: str, route: str) -> bool:
        if not super().matches(method, path, route):
            return False
        self.seen += 1
        return self.seen == self.nth


async def test_a_retry_after_a_partial_send_duplicates_nothing(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    papers = corpus()[:25]
    message = alert_message(papers, key="alert:partial", to=channel_recipient(PAPERS_CHANNEL))
    fake.state.faults.append(FailNth(POST_MESSAGE, 503, nth=2))
    with pytest.raises(TransientDeliveryError):
        await asyncio.wait_for(notifier.send_alerts(message), LIMIT)
    assert len(fake.channel_messages(PAPERS_CHANNEL.id)) == 1
    await asyncio.wait_for(notifier.send_alerts(message), LIMIT)  # the outbox retries
    posted = fake.channel_messages(PAPERS_CHANNEL.id)
    assert [len(m.embeds) for m in posted] == [10, 10, 5]
    assert [t for m in posted for t in embed_titles(m.embeds)] == [p.title for p in papers]
    assert fake.count(POST_MESSAGE) == 5  # part 1 re-sent and answered from its nonce


async def test_bad_recipients_are_refused_without_a_request(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    before = len(fake.requests)
    not_an_id = Recipient(dm_recipient(CAROL).kind, 1, Channel.DISCORD, "carol")
    with pytest.raises(PermanentDeliveryError, match="not a Discord id"):
        await notifier.send_alerts(alert_message(corpus()[:1], to=not_an_id))
    with pytest.raises(PermanentDeliveryError, match="email recipient"):
        await notifier.send_alerts(alert_message(corpus()[:1], to=recipient()))
    assert len(fake.requests) == before


async def test_a_client_not_logged_in_is_transient() -> None:
    notifier = DiscordNotifier(QuickClient())
    with pytest.raises(TransientDeliveryError, match="not logged in"):
        await notifier.send_alerts(alert_message(corpus()[:1], to=dm_recipient(CAROL)))
    await notifier.close()
    with pytest.raises(ChannelDownError, match="closed"):
        await notifier.send_alerts(alert_message(corpus()[:1], to=dm_recipient(CAROL)))
