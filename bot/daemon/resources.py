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


async def build_service(
    settings: Settings, store: Store, clock: Clock = utc_now, *, index: bool = True
) -> Paperbell:
    """The core facade with every stored subscription compiled into its index. Without
    ``index`` the index starts empty, for a command that never runs the match step: at
    50,000 subscriptions compiling them takes seconds. (Were the step run on it anyway,
    its first sync would compile them all, only without the rarity weights.)"""
    subscriptions = SubscriptionIndex()
    if index:
        subscriptions = SubscriptionIndex(await recent_key_weights(store))
        await subscriptions.load(store)
    return Paperbell(settings, store, Signer(load_secret_key(settings)), clock, subscriptions)


@asynccontextmanager
async def open_resources(
    settings: Settings, clock: Clock = utc_now, *, index: bool = True
) -> AsyncIterator[Resources]:
    """``index``: compile every subscription (see ``build_service``)."""
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        http = await stack.enter_async_context(HttpClient(settings.http))
        service = await build_service(settings, store, clock, index=index)
        yield Resources(settings=settings, store=store, http=http, service=service)
