"""Property: whatever an item's fields hold, its source never fails as a whole.

Each generated document holds one good item among random ones; the cycle must end with
the source ok and the good item stored. Documents are read through ``file:`` URLs into a
real store, the same path as HTTP bodies after the fetch.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import SourceKind
from bot.settings import HttpSettings, SourceConfig
from bot.sources import build_source
from bot.sources.http import HttpClient
from bot.sources.ingest import run_cycle
from bot.store.sqlite.store import open_sqlite_store

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text an XML document can carry (no surrogates, no control codes but whitespace).
xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=80,
)
any_datetime = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).flatmap(
    lambda when: st.sampled_from([-14, -5, 0, 9, 14]).map(
        lambda hours: when.replace(tzinfo=timezone(timedelta(hours=hours)))
    )
)
rfc_dates = st.one_of(
    st.sampled_from(["Fri, 31 Dec 9999 23:59:59 -1400", "Sat, 01 Jan 1400 00:00:00 +0000", ""]),
    any_datetime.map(format_datetime),
    xml_text,
)
iso_dates = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z", "2026-13-45"]),
    any_datetime.map(datetime.isoformat),
    st.text(max_size=30),
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=60),
)
# Random items never reuse a good item's id (2606.*): a duplicate key is another story.
arxiv_ids = st.one_of(
    st.integers(min_value=10000, max_value=99999).map(lambda n: f"2607.{n}"),
    st.integers(min_value=1, max_value=99999).map(lambda n: f"2607.{n:05d}v{n}"),
    xml_text.filter(lambda text: "2606." not in text),
)


class Harness:
    """One event loop and one store for a whole property test: each example is a new
    source (its own file) with its own good paper, so examples never meet."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.loop = asyncio.new_event_loop()
        self.store = self.loop.run_until_complete(open_sqlite_store(directory / "pb.db"))
        self.examples = 0

    def good_id(self) -> str:
        self.examples += 1
        return f"2606.{self.examples:05d}"

    def run(self, kind: SourceKind, body: bytes) -> tuple[bool, str | None, set[str]]:
        """One cycle over ``body``: (source ok, its error, stored keys)."""
        return self.loop.run_until_complete(self._cycle(kind, body))

    async def _cycle(self, kind: SourceKind, body: bytes) -> tuple[bool, str | None, set[str]]:
        path = self.directory / f"doc{self.examples}"
        path.write_bytes(body)
        async with HttpClient(HttpSettings()) as http:
            config = SourceConfig(kind=kind, url=f"file://{path}", query="all:x")
            report = await run_cycle(
                [build_source(config, http)], self.store, lambda: NOW, alert_max_age_days=3
            )
        (summary,) = report.summaries
        return summary.ok, summary.error, {p.key for p in await self.store.list_papers()}

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as directory:
        harness = Harness(Path(directory))
        yield harness
        harness.close()


# --- Hugging Face -----------------------------------------------------------------------------

hf_paper = st.fixed_dictionaries(
    {},
    optional={
        "id": arxiv_ids,
        "title": st.one_of(st.text(max_size=60), json_scalar),
        "summary": st.one_of(st.text(max_size=60), json_scalar),
        "authors": st.one_of(
            st.lists(st.fixed_dictionaries({"name": json_scalar}), max_size=4), json_scalar
        ),
        "publishedAt": st.one_of(iso_dates, json_scalar),
        "upvotes": json_scalar,
        "githubRepo": json_scalar,
        "githubStars": json_scalar,
    },
)
hf_item = st.one_of(
    st.fixed_dictionaries({"paper": hf_paper}, optional={"numComments": json_scalar}),
    json_scalar,
)


def good_hf(arxiv_id: str) -> dict[str, Any]:
    paper = {"id": arxiv_id, "title": "A good paper", "publishedAt": "2026-06-01T10:00:00Z"}
    return {"paper": paper}


@SETTINGS
@given(st.lists(hf_item, max_size=6), st.integers(min_value=0, max_value=6))
def test_hf_items_never_fail_the_source(harness: Harness, items: list[Any], at: int) -> None:
    good = harness.good_id()
    items.insert(min(at, len(items)), good_hf(good))
    ok, error, keys = harness.run(SourceKind.HF_DAILY, json.dumps(items).encode())
    assert ok, error
    assert good in keys


# --- RSS: any feed, and arXiv's -------------------------------------------------------------

rss_item = st.fixed_dictionaries(
    {},
    optional={
        "title": xml_text,
        "link": st.one_of(xml_text, arxiv_ids.map(lambda i: f"https://arxiv.org/abs/{i}")),
        "guid": st.one_of(xml_text, arxiv_ids.map(lambda i: f"oai:arXiv.org:{i}")),
        "description": xml_text,
        "pubDate": rfc_dates,
        "author": xml_text,
        "category": xml_text,
        "{http://arxiv.org/schemas/atom}announce_type": xml_text,
    },
)


def good_rss(arxiv_id: str) -> dict[str, str]:
    return {
        "title": "A good paper",
        "link": f"https://arxiv.org/abs/{arxiv_id}",
        "guid": f"oai:arXiv.org:{arxiv_id}v1",
        "description": f"arXiv:{arxiv_id}v1 Announce Type: new Abstract: Fine.",
        "pubDate": "Mon, 01 Jun 2026 10:00:00 +0000",
    }


def rss_document(items: list[dict[str, str]]) -> bytes:
    parts = []
    for item in items:
        fields = []
        for name, value in item.items():
            tag = "arxiv:announce_type" if name.startswith("{") else name
            fields.append(f"<{tag}>{escape(value)}</{tag}>")
        parts.append("<item>" + "".join(fields) + "</item>")
    head = (
        '<rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom">'
        "<channel><title>t</title><pubDate>Tue, 02 Jun 2026 00:00:00 -0400</pubDate>"
    )
    return (head + "".join(parts) + "</channel></rss>").encode()


@SETTINGS
@given(
    st.sampled_from([SourceKind.FEED, SourceKind.ARXIV_RSS]),
    st.lists(rss_item, max_size=6),
    st.integers(min_value=0, max_value=6),
)
def test_rss_items_never_fail_the_source(
    harness: Harness, kind: SourceKind, items: list[dict[str, str]], at: int
) -> None:
    good = harness.good_id()
    items.insert(min(at, len(items)), good_rss(good))
    ok, error, keys = harness.run(kind, rss_document(items))
    assert ok, error
    assert good in keys
