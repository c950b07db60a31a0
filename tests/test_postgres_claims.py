"""Several processes on one PostgreSQL database: each with its own pool, as two daemons on
two machines would be. Every outbox row goes to exactly one of them, rows a dead process
held come back to the living once their lease has run out, and a subscription limit holds
whichever process adds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.errors import LimitError
from bot.models import DeliveryMode
from bot.store.postgres import PostgresStore
from bot.store.protocols import DEFAULT_LEASE, DeliveryState
from tests.support_outbox import NOW

USERS = 24
MAILS_EACH = 3  # confirmation mails per user: one group (owner, email, confirm) each


@pytest.fixture
async def second_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """Another process's store: its own pool on the same database."""
    opened = await PostgresStore.open(postgres_url)
    yield opened
    await opened.close()


async def _fill(store: PostgresStore) -> set[int]:
    for n in range(USERS):
        user = await store.get_or_create_user(discord_id=f"d{n}", now=NOW)
        for minute in range(MAILS_EACH):
            await store.set_email(user.id, f"u{n}@example.org", NOW + timedelta(minutes=minute))
    return {d.id for d in await store.list_deliveries()}


async def _drain(store: PostgresStore) -> list[int]:
    """Claim small batches until nothing is left; every id this worker got."""
    got: list[int] = []
    while batches := await store.claim_due(NOW + timedelta(minutes=MAILS_EACH), limit=2):
        got += [d.id for b in batches for d in b.deliveries]
    return got


async def test_two_processes_never_claim_the_same_row(
    postgres_store: PostgresStore, second_store: PostgresStore
) -> None:
    every = await _fill(postgres_store)
    assert len(every) == USERS * MAILS_EACH
    workers = [_drain(store) for store in (postgres_store, second_store) for _ in range(3)]
    claimed = [row_id for got in await asyncio.gather(*workers) for row_id in got]
    assert len(claimed) == len(set(claimed))  # nobody got a row twice
    assert set(claimed) == every  # and every row went to someone
    sending = await second_store.list_deliveries(state=DeliveryState.SENDING)
    assert {d.attempts for d in sending} == {1}


async def test_a_dead_process_rows_return_after_its_lease(
    postgres_store: PostgresStore, second_store: PostgresStore
) -> None:
    every = await _fill(postgres_store)
    due = NOW + timedelta(minutes=MAILS_EACH)
    held = [d.id for b in await postgres_store.claim_due(due, limit=5) for d in b.deliveries]
    await postgres_store.close()  # the first process dies mid-send, its rows in 'sending'
    live = await second_store.claim_due(due, limit=1000, lease=2 * DEFAULT_LEASE)
    rest = [d.id for b in live for d in b.deliveries]
    assert set(rest) == every - set(held)  # the lease still holds: not taken
    expired = due + DEFAULT_LEASE
    again = await second_store.claim_due(expired, limit=1000)
    taken = [d for b in again for d in b.deliveries]
    assert {d.id for d in taken} == set(held)
    assert {d.attempts for d in taken} == {2}  # the dead claim's attempt counts
    # The lease is the new claim's now: renewing the dead one's changes nothing.
    assert await second_store.renew_lease(held, expired, expired + timedelta(minutes=1)) == set()
    lease = expired + DEFAULT_LEASE
    assert await second_store.renew_lease(held, lease, lease) == set(held)


async def test_the_subscription_limit_holds_across_processes(
    postgres_store: PostgresStore, second_store: PostgresStore
) -> None:
    user = await postgres_store.get_or_create_user(discord_id="1", now=NOW)
    modes = frozenset({DeliveryMode.DISCORD})
    adds = [
        store.add_subscription(user.owner, f"q{n}{s}", f"q{n}{s}", modes, NOW, limit=4)
        for n in range(10)
        for s, store in enumerate((postgres_store, second_store))
    ]
    results = await asyncio.gather(*adds, return_exceptions=True)
    assert sum(isinstance(r, LimitError) for r in results) == 16
    assert len(await second_store.list_subscriptions(user.owner)) == 4
