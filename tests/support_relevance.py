"""The 213 real listings stored with arXiv-style ids (bench/_corpus.py), for relevance tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench._corpus import corpus
from bot.daemon.resources import build_service
from bot.models import Paper, Sighting, SourceState
from bot.relevance.corpus import vectorize_new
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import Store
from bot.store.sqlite.store import open_sqlite_store
from handlers.web import build_web_app, serve_web

# A fixed date for tests that cache what they compute from the corpus.
NOW_FOR_CORPUS = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def dated_corpus(now: datetime) -> tuple[Paper, ...]:
    """Every listing, published today so "the last N days" holds them all."""
    return tuple(replace(p, published=now, first_seen=now) for p in corpus())


def by_title(word: str) -> list[str]:
    """Keys of the listings whose title holds ``word`` (any case)."""
    return [p.key for p in corpus() if word.lower() in p.title.lower()]


async def store_corpus(store: Store, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    papers = dated_corpus(now)
    await store.ingest([Sighting(p) for p in papers], SourceState("hf"), now)
    await vectorize_new(store, now)


async def corpus_service(store: Store, data_dir: Path, now: datetime) -> Paperbell:
    """The facade over ``store`` holding the vectorized corpus, its clock stopped at ``now``."""
    await store_corpus(store, now)
    return await build_service(load_settings(data_dir=data_dir), store, clock=lambda: now)


@asynccontextmanager
async def web_of(service: Paperbell) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The web endpoint of ``service`` on loopback, and a client session for it."""
    async with (
        serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as session,
    ):
        yield f"http://{host}:{port}", session


def seed_database(path: Path) -> None:
    """The CLI's database (``./data/paperbell.db``) holding the corpus and its vectors."""

    async def seed() -> None:
        store = await open_sqlite_store(path)
        try:
            await store_corpus(store)
        finally:
            await store.close()

    asyncio.run(seed())
