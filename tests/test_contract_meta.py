"""What every store must do with the values paperbell keeps about itself, and closing.

The ``MetaStore`` role, written against the protocol only; runs over every implementation
(the ``store`` fixture in tests/conftest.py).
"""

from __future__ import annotations

import pytest

from bot.errors import StoreError
from bot.store.protocols import Store
from tests.support_papers import ingest


class TestMetaContract:
    """``MetaStore``: meta values and the store's lifetime."""

    # --- meta -----------------------------------------------------------------------------

    async def test_meta_round_trip_and_replace(self, store: Store) -> None:
        assert await store.get_meta("commands") is None
        await store.set_meta("commands", "hash-1")
        await store.set_meta("commands", "hash-2")
        assert await store.get_meta("commands") == "hash-2"
        assert await store.get_meta("other") is None

    # --- lifecycle --------------------------------------------------------------------------

    async def test_closed_store_raises_store_error_and_closes_twice(self, store: Store) -> None:
        await store.close()
        await store.close()
        with pytest.raises(StoreError, match="closed"):
            await store.get_paper("x")
        with pytest.raises(StoreError, match="closed"):
            await ingest(store, [])
