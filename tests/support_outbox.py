"""Shared pieces for the accounts, outbox and digest tests: papers, users, a notifier.

The store itself is the ``store`` fixture of tests/conftest.py.

``RecordingNotifier`` is our own ``bot.delivery.notifier.Notifier`` interface implemented in memory:
it keeps every message it was given and can be scripted to raise the delivery errors a
real channel raises. The real channels are tested against the same interface elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.accounts.addresses import LinkBuilder
from bot.accounts.tokens import Signer
from bot.delivery.digests import DigestPlanner
from bot.delivery.notifier import (
    AlertMessage,
    Channel,
    ConfirmationMessage,
    DigestMessage,
    FollowNoteMessage,
    ManageLinkMessage,
)
from bot.models import DeliveryMode, Links, MatchRecord, Owner, Paper, Sighting, SourceState, User
from bot.store.protocols import Delivery, Store

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SIGNER = Signer(b"outbox-tests-key-" * 2)
LINKS = LinkBuilder(SIGNER, "https://bell.example.org")
DISCORD = frozenset({DeliveryMode.DISCORD})
INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})
DIGEST = frozenset({DeliveryMode.EMAIL_DIGEST})

Message = AlertMessage | DigestMessage | ConfirmationMessage | ManageLinkMessage | FollowNoteMessage


def paper(key: str, *, upvotes: int | None = None, title: str | None = None) -> Paper:
    return Paper(
        key=key,
        title=title or f"Paper {key}",
        abstract=f"About {key}.",
        links=Links(abs=f"https://arxiv.org/abs/{key}"),
        upvotes=upvotes,
        sources=("arxiv",),
    )


async def add_papers(store: Store, *keys: str, now: datetime = NOW) -> None:
    await store.ingest([Sighting(paper(k)) for k in keys], SourceState("test"), now)


async def add_papers_of(store: Store, papers: Sequence[Paper], now: datetime = NOW) -> None:
    await store.ingest([Sighting(p) for p in papers], SourceState("test"), now)


async def tick_made(planner: DigestPlanner, store: Store, now: datetime) -> list[Delivery]:
    """The digests one ``tick`` created, from the store (``tick`` returns how many)."""
    before = {d.id for d in await store.list_deliveries()}
    count = await planner.tick(now)
    made = [d for d in await store.list_deliveries() if d.id not in before]
    assert count == len(made), "tick counted other digests than it created"
    return made


async def verified_user(
    store: Store,
    address: str = "ada@example.org",
    *,
    discord_id: str | None = None,
    now: datetime = NOW,
    **settings: object,
) -> User:
    """A user with a confirmed address (and a Discord id if given)."""
    user = await store.get_or_create_user(discord_id=discord_id or f"d-{address}", now=now)
    await store.set_email(user.id, address, now)
    confirmed = await store.verify_email(user.id, address, now)
    assert confirmed is not None
    if settings:
        return await store.update_user(user.id, now, **settings)
    return confirmed


def record(
    owner: Owner,
    paper_key: str,
    *sub_ids: int,
    score: float = 1.0,
    words: tuple[str, ...] = ("graph",),
    at: datetime = NOW,
) -> MatchRecord:
    return MatchRecord(owner, paper_key, tuple(sub_ids), words, score, at)


@dataclass
class RecordingNotifier:
    """A notifier that remembers messages; ``script`` errors are raised first, in order."""

    channel: Channel
    sent: list[Message] = field(default_factory=list)
    script: list[Exception] = field(default_factory=list)
    fail: Callable[[Message], Exception | None] = lambda _message: None
    calls: int = 0
    closed: bool = False
    concurrency: int = 4  # messages the dispatcher may have in flight here at once

    async def _deliver(self, message: Message) -> None:
        self.calls += 1
        if self.script:
            raise self.script.pop(0)
        error = self.fail(message)
        if error is not None:
            raise error
        self.sent.append(message)

    async def send_alerts(self, message: AlertMessage) -> None:
        await self._deliver(message)

    async def send_digest(self, message: DigestMessage) -> None:
        await self._deliver(message)

    async def send_confirmation(self, message: ConfirmationMessage) -> None:
        await self._deliver(message)

    async def send_manage_link(self, message: ManageLinkMessage) -> None:
        await self._deliver(message)

    async def send_follow_note(self, message: FollowNoteMessage) -> None:
        await self._deliver(message)

    async def close(self) -> None:
        self.closed = True


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
