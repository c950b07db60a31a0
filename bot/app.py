"""Open the long-lived resources (store, HTTP client) in order and close them in reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bot.http import HttpClient
from bot.settings import Settings, SourceConfig
from bot.sources import build_source
from bot.sources.base import Source
from bot.store.base import Store
from bot.store.sqlite import open_sqlite_store


@dataclass(frozen=True)
class Resources:
    settings: Settings
    store: Store
    http: HttpClient

    def sources(self, configs: Sequence[SourceConfig] | None = None) -> list[Source]:
        chosen = self.settings.sources if configs is None else configs
        return [build_source(config, self.http) for config in chosen]


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    async with AsyncExitStack() as stack:
        store = await open_sqlite_store(settings.database_path)
        stack.push_async_callback(store.close)
        http = await stack.enter_async_context(HttpClient(settings.http))
        yield Resources(settings=settings, store=store, http=http)
