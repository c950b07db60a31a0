"""Open the long-lived resources (store, HTTP client, the core service) in order and close
them in reverse. Nothing global: the caller passes ``Resources`` down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bot.accounts.tokens import Signer, load_secret_key
from bot.matching.step import SubscriptionIndex, recent_key_weights
from bot.service import Paperbell
from bot.settings import Settings, SourceConfig
from bot.sources import build_source
from bot.sources.base import Source
from bot.sources.http import HttpClient
from bot.sources.ingest import Clock, utc_now
from bot.store.open import open_store
from bot.store.protocols import Store


@dataclass(frozen=True)
class Resources:
    settings: Settings
    store: Store
    http: HttpClient
    service: Paperbell

    def sources(self, configs: Sequence[SourceConfig] | None = None) -> list[Source]:
        chosen = self.settings.sources if configs is None else configs
        return [build_source(config, self.http) for config in chosen]


async def build_service(settings: Settings, store: Store, clock: Clock = utc_now) -> Paperbell:
    """The core facade with every stored subscription compiled into its index."""
    index = SubscriptionIndex(await recent_key_weights(store))
    await index.load(store)
    return Paperbell(settings, store, Signer(load_secret_key(settings)), clock, index)


@asynccontextmanager
async def open_resources(settings: Settings, clock: Clock = utc_now) -> AsyncIterator[Resources]:
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        http = await stack.enter_async_context(HttpClient(settings.http))
        service = await build_service(settings, store, clock)
        yield Resources(settings=settings, store=store, http=http, service=service)
