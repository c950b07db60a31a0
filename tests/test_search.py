"""``paperbell search`` reads its text as the subscription query language (stems, ``word*``,
phrases, NOT, fields, filters): the index proposes, the matcher decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.matching.query import parse_query
from bot.matching.search import fts_match
from tests.conftest import STORES
from tests.test_cli import EXAMPLE

ITEM = """<item><title>{title}</title><guid isPermaLink="false">{guid}</guid>
<pubDate>Fri, 20 Nov 2026 0{hour}:00:00 GMT</pubDate><description>{abstract}</description></item>"""


def _search(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["search", *args, "--json"]) == 0
    return [json.loads(line)["title"] for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(params=STORES)
def _database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every search over each store: SQLite's FTS5 and PostgreSQL's tsvector index must
    both propose every paper the matcher accepts."""
    if request.param == "postgres":
        monkeypatch.setenv("PAPERBELL_DATABASE_URL", request.getfixturevalue("postgres_url"))


@pytest.fixture(autouse=True)
def _papers(capsys: pytest.CaptureFixture[str], _database: None) -> None:
    assert main(["ingest", "--source", f"feed:file:{EXAMPLE}"]) == 0
    capsys.readouterr()


def test_words_are_stemmed(capsys: pytest.CaptureFixture[str]) -> None:
    # The title says "Circuit": plain full-text search would not find "circuits".
    assert _search(capsys, "circuits") == [
        "LLM Circuit Analyses Are Consistent Across Training and Scale"
    ]


def test_prefix_phrase_and_not(capsys: pytest.CaptureFixture[str]) -> None:
    assert _search(capsys, "circ*")[0].startswith("LLM Circuit Analyses")
    assert _search(capsys, '"state space"') == [
        "On the Parameterization and Initialization of Diagonal State Space Models"
    ]
    titles = _search(capsys, "llm -circuit*")
    assert titles and all("Circuit" not in t for t in titles)
    assert any("MUSCLE" in t for t in titles)
    assert _search(capsys, "title:hallucination") == [
        "The Hidden Life of Tokens: Reducing Hallucination of Large Vision-Language Models "
        "via Visual Information Steering"
    ]


def test_filters_alone_page_through_every_paper(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = [{"kind": "feed", "url": f"file:{EXAMPLE}"}]
    monkeypatch.setenv("PAPERBELL_SOURCES", json.dumps(sources))  # `source:papers` is known
    assert len(_search(capsys, "source:papers")) == 6
    assert len(_search(capsys, "source:papers", "--limit", "2")) == 2


def test_every_form_of_a_stem_is_a_candidate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Snowball stems "capabilities" to "capabl": the index is asked for a prefix that
    still holds the word as the paper wrote it."""
    items = [
        ITEM.format(title="Emergent capabilities at scale", guid="a", hour=1, abstract="x"),
        ITEM.format(title="A study of happy robots", guid="b", hour=2, abstract="y"),
    ]
    feed = tmp_path / "more.xml"
    channel = f"<channel><title>t</title>{''.join(items)}</channel>"
    feed.write_text(f'<rss version="2.0">{channel}</rss>')
    assert main(["ingest", "--source", f"feed:file:{feed}"]) == 0
    capsys.readouterr()
    assert _search(capsys, "capable")[0] == "Emergent capabilities at scale"
    assert _search(capsys, "studies happiness") == ["A study of happy robots"]


def test_index_expression_is_loose_where_it_must_be() -> None:
    assert fts_match(parse_query("capability")) == '"capab" *'
    assert fts_match(parse_query('llm -"state space"')) == '("llm" *)'  # NOT: left to the matcher
    assert fts_match(parse_query("llm OR cat:cs.LG")) is None  # any cs.LG paper may match
    assert fts_match(parse_query('robot* AND "video generation"')) == (
        '("robot" * AND "video generation")'
    )
