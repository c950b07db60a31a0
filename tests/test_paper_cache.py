"""The dispatcher's paper cache: read once, forgotten as a whole after its ttl or when full."""

from __future__ import annotations

from bot.delivery.paper_cache import PaperCache
from bot.store.sqlite.store import SqliteStore
from tests.support_papers import arxiv_paper, ingest, sightings


class Counting:
    """The store, counting the papers read from it."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.read = store, 0

    async def get_papers(self, keys: list[str]) -> dict[str, object]:
        self.read += len(keys)
        return dict(await self.store.get_papers(keys))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_reads_each_paper_once_until_the_ttl(sqlite_store: SqliteStore) -> None:
    await ingest(sqlite_store, sightings(arxiv_paper("2603.00001"), arxiv_paper("2603.00002")))
    store, clock = Counting(sqlite_store), Clock()
    cache = PaperCache(store, ttl=60, clock=clock)  # type: ignore[arg-type]
    first = await cache.get_papers(["2603.00001", "2603.00002", "2603.09999"])
    assert sorted(first) == ["2603.00001", "2603.00002"]  # an unknown key is left out
    again = await cache.get_papers(["2603.00002", "2603.00001", "2603.00002"])
    assert again == {k: first[k] for k in ("2603.00002", "2603.00001")}
    assert store.read == 3  # the unknown key is asked again, the known ones are not

    changed = arxiv_paper("2603.00001", title="A retitled paper", version=2)
    await ingest(sqlite_store, sightings(changed))
    assert (await cache.get_papers(["2603.00001"]))["2603.00001"].title == first[
        "2603.00001"
    ].title  # within the ttl: the copy read before
    clock.now = 60.0
    assert (await cache.get_papers(["2603.00001"]))["2603.00001"].title == "A retitled paper"


async def test_never_holds_more_than_its_size(sqlite_store: SqliteStore) -> None:
    keys = [f"2603.{i:05d}" for i in range(1, 6)]
    await ingest(sqlite_store, sightings(*(arxiv_paper(k) for k in keys)))
    store = Counting(sqlite_store)
    cache = PaperCache(store, size=3)  # type: ignore[arg-type]
    assert sorted(await cache.get_papers(keys[:3])) == keys[:3]
    assert sorted(await cache.get_papers(keys[3:])) == keys[3:]  # full: the old ones go
    assert store.read == 5
    assert sorted(await cache.get_papers(keys[:1])) == keys[:1]
    assert store.read == 6
