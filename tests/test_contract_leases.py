"""What every store must do with named leases (``MetaStore``'s leader lease).

Written against the protocol only; runs over every implementation (the ``store`` fixture).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.errors import StoreError
from bot.store.protocols import Store

LONG = timedelta(minutes=5)
# A lease that has already run out by the time anyone looks again.
GONE = timedelta(microseconds=1)


class TestLeaseContract:
    async def test_free_lease_is_taken_and_read_back(self, store: Store) -> None:
        assert await store.get_lease("leader") is None
        assert await store.acquire_lease("leader", "a", LONG)
        held = await store.get_lease("leader")
        assert held is not None
        assert (held.name, held.holder) == ("leader", "a")
        assert held.expires_at.utcoffset() == timedelta(0)

    async def test_held_lease_refuses_others_and_renews_for_its_holder(self, store: Store) -> None:
        assert await store.acquire_lease("leader", "a", LONG)
        first = await store.get_lease("leader")
        assert not await store.acquire_lease("leader", "b", LONG)
        assert await store.acquire_lease("leader", "a", LONG)
        renewed = await store.get_lease("leader")
        assert first is not None and renewed is not None
        assert renewed.holder == "a"
        assert renewed.expires_at >= first.expires_at

    async def test_expired_lease_passes_to_another(self, store: Store) -> None:
        assert await store.acquire_lease("leader", "a", GONE)
        await asyncio.sleep(0.01)
        assert await store.get_lease("leader") is None
        assert await store.acquire_lease("leader", "b", LONG)
        held = await store.get_lease("leader")
        assert held is not None and held.holder == "b"

    async def test_release_frees_only_for_its_holder(self, store: Store) -> None:
        assert await store.acquire_lease("leader", "a", LONG)
        await store.release_lease("leader", "b")
        held = await store.get_lease("leader")
        assert held is not None and held.holder == "a"
        await store.release_lease("leader", "a")
        assert await store.get_lease("leader") is None
        assert await store.acquire_lease("leader", "b", LONG)

    async def test_leases_are_independent_by_name(self, store: Store) -> None:
        assert await store.acquire_lease("leader", "a", LONG)
        assert await store.acquire_lease("other", "b", LONG)
        assert not await store.acquire_lease("other", "a", LONG)

    async def test_concurrent_takers_get_one_winner(self, store: Store) -> None:
        holders = [f"p{i}" for i in range(8)]
        won = await asyncio.gather(*(store.acquire_lease("leader", h, LONG) for h in holders))
        assert sum(won) == 1
        held = await store.get_lease("leader")
        assert held is not None and held.holder == holders[won.index(True)]

    @pytest.mark.parametrize(
        ("name", "holder", "ttl"), [("", "a", LONG), ("leader", "", LONG), ("leader", "a", -LONG)]
    )
    async def test_bad_lease_is_one_store_error(
        self, store: Store, name: str, holder: str, ttl: timedelta
    ) -> None:
        with pytest.raises(StoreError, match="lease"):
            await store.acquire_lease(name, holder, ttl)
