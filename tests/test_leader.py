"""One leader among processes sharing PostgreSQL: who leads, take-over, ``run --once`` and
``status``. The clock that decides local expiry is a fake; the lease is the real store's."""

from __future__ import annotations

from datetime import timedelta

from bot.daemon.leader import LEADER, Leadership
from bot.matching.step import SubscriptionIndex, recent_key_weights
from bot.models import DeliveryMode
from bot.store.postgres import PostgresStore
from bot.store.protocols import Store
from tests.support_outbox import NOW
from tests.test_cli import run_cli
from tests.test_daemon import FILE_FEED

LEASE = timedelta(seconds=30)
INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT})


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lead(store: Store, holder: str, clock: FakeMonotonic) -> Leadership:
    return Leadership(store, LEASE, shared=True, holder=holder, monotonic=clock)


async def test_one_process_leads_and_the_other_follows(postgres_store: PostgresStore) -> None:
    clock = FakeMonotonic()
    first, second = _lead(postgres_store, "a", clock), _lead(postgres_store, "b", clock)
    assert await first.renew()
    assert not await second.renew()
    assert first.held and not second.held
    held = await postgres_store.get_lease(LEADER)
    assert held is not None and held.holder == "a"


async def test_a_leader_that_stops_renewing_stops_believing_it_leads(
    postgres_store: PostgresStore,
) -> None:
    clock = FakeMonotonic()
    first = _lead(postgres_store, "a", clock)
    assert await first.renew()
    clock.now += LEASE.total_seconds()
    assert not first.held  # its own clock says so before the database's lease runs out


async def test_a_released_lease_passes_at_once_and_the_new_leader_is_told(
    postgres_store: PostgresStore,
) -> None:
    clock = FakeMonotonic()
    first, second = _lead(postgres_store, "a", clock), _lead(postgres_store, "b", clock)
    gained: list[str] = []
    second.on_gain = lambda: gained.append("b")
    assert await first.renew()
    assert not await second.renew()
    await first.release()
    assert not first.held
    assert await second.renew()
    assert gained == ["b"]


async def test_sqlite_always_leads_and_writes_no_lease(store: Store) -> None:
    single = Leadership(store, LEASE, shared=False)
    assert single.held
    assert await single.renew()
    await single.release()
    assert await store.get_lease(LEADER) is None


async def test_run_once_is_refused_while_another_process_leads(
    postgres_url: str, postgres_store: PostgresStore
) -> None:
    assert await postgres_store.acquire_lease(LEADER, "elsewhere:42:abc", LEASE)
    env = {"PAPERBELL_DATABASE_URL": postgres_url}
    status = run_cli("status", env=env)
    assert status.returncode == 0
    assert "leader: process elsewhere:42:abc (lease until" in status.stdout
    once = run_cli("run", "--once", env=env)
    assert once.returncode == 78
    assert "process elsewhere:42:abc" in once.stderr
    assert "run --once only while no `paperbell run` is running on it" in once.stderr
    assert "Traceback" not in once.stderr


async def test_the_leaders_matcher_sees_subscriptions_made_by_another_process(
    postgres_url: str, postgres_store: PostgresStore
) -> None:
    """The leader compiled its index at start; a subscription added, then removed, through
    another process's connection reaches it at the match step's next sync."""
    index = SubscriptionIndex(await recent_key_weights(postgres_store))
    await index.load(postgres_store)
    other = await PostgresStore.open(postgres_url)
    try:
        user = await other.get_or_create_user(discord_id="elsewhere", now=NOW)
        sub = await other.add_subscription(user.owner, "g", "graph", INSTANT, NOW, limit=5)
        await index.sync(postgres_store)
        assert index.get(sub.id) == sub
        await other.remove_subscription(sub.id, user.owner, NOW)
        await index.sync(postgres_store)
        assert index.get(sub.id) is None
    finally:
        await other.close()


async def test_run_once_leads_for_its_cycle_then_steps_down(
    postgres_url: str, postgres_store: PostgresStore
) -> None:
    env = {"PAPERBELL_DATABASE_URL": postgres_url, "PAPERBELL_SOURCES": FILE_FEED}
    once = run_cli("run", "--once", env=env)
    assert once.returncode == 0, once.stderr
    assert await postgres_store.get_lease(LEADER) is None  # released: a daemon may start
