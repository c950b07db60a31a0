"""Every source parser against recorded-format fixtures, one per trap in formats.md."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.errors import SourceParseError
from bot.models import AnnounceType, Links, Paper, SourceKind
from bot.settings import SourceConfig
from bot.sources.arxiv_api import parse_arxiv_api
from bot.sources.arxiv_rss import parse_arxiv_rss
from bot.sources.feed import parse_feed
from bot.sources.hf import hf_error_message, parse_hf_daily
from tests.support_http import fixture

HF = SourceConfig(kind=SourceKind.HF_DAILY)
API = SourceConfig(kind=SourceKind.ARXIV_API, query="cat:cs.LG")
RSS = SourceConfig(kind=SourceKind.ARXIV_RSS, url="https://rss.arxiv.org/rss/cs.LG")
FEED = SourceConfig(kind=SourceKind.FEED, url="https://notebook.example.org/feed", name="nb")


def by_key(papers: tuple[Paper, ...]) -> dict[str, Paper]:
    return {paper.key: paper for paper in papers}


# --- Hugging Face ------------------------------------------------------------------------


def test_hf_2024_layout_collapses_hard_wraps_and_keeps_all_names() -> None:
    papers = by_key(parse_hf_daily(HF, fixture("hf_2024.json")).items)
    assert list(papers) == ["2404.13686", "2404.07143"]
    infini = papers["2404.07143"]
    assert infini.title == (
        "Leave No Context Behind: Efficient Infinite Context Transformers with Infini-attention"
    )
    assert infini.abstract.startswith("This work introduces an efficient method to scale")
    assert "\n" not in infini.abstract
    assert "  " not in infini.abstract
    assert infini.authors == ("Tsendsuren Munkhdalai", "Manaal Faruqui", "Siddharth Gopal")
    assert infini.published == datetime(2024, 4, 10, 17, 48, 37, tzinfo=UTC)
    assert (infini.upvotes, infini.comments, infini.github_stars) == (106, 17, None)
    assert infini.links == Links(
        abs="https://arxiv.org/abs/2404.07143",
        pdf="https://arxiv.org/pdf/2404.07143",
        hf="https://huggingface.co/papers/2404.07143",
        code=None,
    )
    assert infini.sources == ("hf",)
    assert infini.version is None


def test_hf_2026_layout_with_unicode_zero_upvotes_and_missing_optionals() -> None:
    papers = by_key(parse_hf_daily(HF, fixture("hf_2026.json")).items)
    sigma = papers["2606.00467"]
    assert sigma.title == "Σ-Mem: Summed Memory Slots for Long-Horizon Agents"
    assert sigma.upvotes == 0
    assert sigma.comments == 0
    assert sigma.links.code is None
    assert sigma.github_stars is None
    assert sigma.authors == ("Jürgen Weiß", "Li Wei")
    assert "2times2" in sigma.abstract  # HF stripped the backslash; we keep what came
    # paper.publishedAt is the arXiv date; the outer one is shifted by the US Eastern offset.
    assert sigma.published == datetime(2026, 5, 29, 16, 59, 58, tzinfo=UTC)
    beta = papers["2605.21834"]
    assert beta.links.code == "https://github.com/example-lab/beta-opsd"
    assert (beta.upvotes, beta.comments, beta.github_stars) == (42, 3, 318)


def test_hf_empty_list_is_no_papers() -> None:
    assert parse_hf_daily(HF, fixture("hf_empty.json")).items == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture("hf_missing_id.json"), "item 0: paper.id: Field required"),
        (fixture("hf_truncated.json"), "not valid JSON"),
        (fixture("hf_error_400.json"), "expected a JSON list of papers"),
        (b"<html>Bad gateway</html>", "not valid JSON"),
        (b'[{"paper": {"id": "2606.00467"}}]', "item 0: paper.title: Field required"),
        (b'[{"paper": {"id": "", "title": "x"}}]', "item 0: paper.id"),
        (b'[{"paper": {"id": "not-an-id", "title": "x"}}]', "'not-an-id' is not an arXiv id"),
        (b'[{"paper": {"id": "2606.00467", "title": 5}}]', "item 0: paper.title"),
        (b"[42]", "item 0"),
        (b"", "not valid JSON"),
    ],
)
def test_hf_bad_documents_fail_whole(body: bytes, message: str) -> None:
    with pytest.raises(SourceParseError) as info:
        parse_hf_daily(HF, body)
    assert str(info.value).startswith("hf_daily https://huggingface.co/api/daily_papers: ")
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


def test_hf_error_message_reads_the_400_body() -> None:
    assert hf_error_message(fixture("hf_error_400.json")) == "Invalid date: expected YYYY-MM-DD"
    assert hf_error_message(b"<html>") == ""
    assert hf_error_message(b"[]") == ""


# --- arXiv API ---------------------------------------------------------------------------


def test_api_current_layout() -> None:
    page = parse_arxiv_api(API, fixture("arxiv_api_current.xml"))
    assert page.total == 5
    papers = by_key(page.papers)
    assert list(papers) == ["2606.01234", "2605.30001", "2605.29999"]
    kv = papers["2605.30001"]
    assert kv.version == 2
    assert kv.categories == ("cs.CL", "cs.LG")  # primary first, no duplicates
    assert kv.authors == ("Mingyu Xu", "Wei Cheng")  # affiliation ignored
    assert kv.published == datetime(2026, 5, 28, 9, 14, 27, tzinfo=UTC)
    assert kv.updated == datetime(2026, 6, 1, 12, 0, 3, tzinfo=UTC)
    assert kv.links.abs == "https://arxiv.org/abs/2605.30001v2"
    assert kv.links.pdf == "https://arxiv.org/pdf/2605.30001v2"  # not the doi link
    assert (kv.arxiv_comment, kv.journal_ref) == ("v2: added ablations", "Proc. ICML 2026")
    assert (papers["2606.01234"].arxiv_comment, papers["2606.01234"].journal_ref) == (
        "22 pages, 9 figures",
        "",
    )
    assert "$α$" in kv.abstract
    assert r"98\% of the loss with $k \ll d$" in papers["2606.01234"].abstract


def test_api_legacy_layout_hard_wraps_inline_namespaces_and_scheme() -> None:
    page = parse_arxiv_api(API, fixture("arxiv_api_legacy.xml"))
    assert page.total == 2
    gravity = by_key(page.papers)["2403.16981"]
    assert gravity.title == (
        "Gravity Duals of Lifshitz-like Fixed Points in a Holographic Renormalization Group Flow"
    )
    assert gravity.abstract.startswith("We find candidate")  # leading spaces gone
    assert "\n" not in gravity.abstract
    assert r"$t \to \lambda^z t$" in gravity.abstract
    assert gravity.categories == ("hep-th", "cond-mat.str-el")
    assert gravity.version == 2
    assert gravity.authors == ("Shamit Kachru", "Xiao Liu", "Michael Mulligan")


def test_api_old_style_ids_entities_and_unicode_authors() -> None:
    papers = by_key(parse_arxiv_api(API, fixture("arxiv_api_oldstyle.xml")).papers)
    maldacena = papers["hep-th/9711200"]
    assert maldacena.version == 3
    assert maldacena.published == datetime(1997, 11, 27, 22, 8, 28, tzinfo=UTC)
    qa = papers["2605.11111"]
    assert qa.title == "Q&A Agents: When <think> Tokens Help"
    assert qa.abstract.startswith("Retrieval & reasoning agents gain when the <think> budget")
    assert "$k < 512$" in qa.abstract
    assert qa.authors == ("Götz S. Uhrig", "Zoë Ångström")


def test_api_zero_results_is_an_empty_page() -> None:
    page = parse_arxiv_api(API, fixture("arxiv_api_empty.xml"))
    assert page.total == 0
    assert page.papers == ()


def test_api_error_entry_is_an_error_never_a_paper() -> None:
    with pytest.raises(SourceParseError) as info:
        parse_arxiv_api(API, fixture("arxiv_api_error.xml"))
    assert str(info.value) == (
        "arxiv_api https://export.arxiv.org/api/query: "
        "arXiv API error: unbalanced parentheses in query: ti:("
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture("arxiv_api_current.xml")[:900], "malformed XML"),
        (b"", "empty response body"),
        (fixture("arxiv_rss_day.xml"), "not an Atom feed (root element <rss>)"),
    ],
)
def test_api_bad_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceParseError) as info:
        parse_arxiv_api(API, body)
    assert str(info.value).startswith("arxiv_api https://export.arxiv.org/api/query: ")
    assert message in str(info.value)


def test_api_entry_without_arxiv_id_is_skipped_not_fatal() -> None:
    body = fixture("arxiv_api_current.xml").replace(
        b"http://arxiv.org/abs/2606.01234v1", b"http://example.org/x"
    )
    page = parse_arxiv_api(API, body)
    assert page.papers and "2606.01234" not in {p.key for p in page.papers}
    assert [(b.reason, b.detail) for b in page.bad] == [
        ("no arXiv id", "item 0: id 'http://example.org/x' is not an arXiv abs URL")
    ]


# --- arXiv RSS ---------------------------------------------------------------------------


def test_rss_day_items_announce_types_and_versions() -> None:
    sightings = parse_arxiv_rss(RSS, fixture("arxiv_rss_day.xml")).items
    table = [(s.paper.key, s.paper.version, s.announce) for s in sightings]
    assert table == [
        ("2606.00101", 1, AnnounceType.NEW),
        ("2606.00202", 1, AnnounceType.CROSS),
        ("2605.30001", 3, AnnounceType.REPLACE),
        ("2410.01234", 4, AnnounceType.REPLACE_CROSS),
    ]
    day = datetime(2026, 6, 2, 4, 0, tzinfo=UTC)  # channel pubDate, midnight US Eastern
    assert all(s.paper.published == day for s in sightings)
    assert all(s.paper.sources == ("arxiv",) for s in sightings)


def test_rss_item_fields() -> None:
    papers = by_key(
        tuple(s.paper for s in parse_arxiv_rss(RSS, fixture("arxiv_rss_day.xml")).items)
    )
    heads = papers["2606.00101"]
    assert heads.abstract.startswith("In this work we present successor heads")  # prefix gone
    assert "$p < 0.01$ & the effect holds for models with >1B parameters." in heads.abstract
    assert heads.authors == (
        "Rhys Gould",
        "Euan Ong",
        "George Ogden",
        "Jürgen Schmidhuber",
        "Przemysław Biecek",
    )
    assert heads.categories == ("cs.LG", "cs.AI")
    assert heads.links == Links(
        abs="https://arxiv.org/abs/2606.00101", pdf="https://arxiv.org/pdf/2606.00101"
    )
    cross = papers["2606.00202"]
    assert cross.authors == ("Dogyun Park", "Stéphan Clémençon", "A. Araujo")
    assert cross.categories[0] == "stat.ML"
    assert "difficult but important issue" in cross.abstract  # "\n  " break collapsed
    assert r"(PP\&PR)" in cross.abstract
    kv = papers["2605.30001"]
    assert r"$\mathbb{Z}_2$-equivariant variant (\textbf{KVS-2})" in kv.abstract
    assert papers["2410.01234"].authors == ("Björn Lütjens", "Shmuel Gurvich")


def test_rss_weekend_feed_is_empty_not_an_error() -> None:
    assert parse_arxiv_rss(RSS, fixture("arxiv_rss_weekend.xml")).items == ()


def test_rss_atom_variant() -> None:
    sightings = parse_arxiv_rss(RSS, fixture("arxiv_rss_atom.xml")).items
    table = [(s.paper.key, s.paper.version, s.announce) for s in sightings]
    assert table == [("2606.00101", 1, AnnounceType.NEW), ("2605.30001", 3, AnnounceType.REPLACE)]
    first = sightings[0].paper
    assert first.authors == ("Rhys Gould", "Euan Ong")
    assert first.abstract.startswith("In this work we present successor heads")
    assert first.published == datetime(2026, 6, 2, 4, 0, tzinfo=UTC)


def _rss_item(**fields: str) -> bytes:
    body = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    head = '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" version="2.0">'
    return f"{head}<channel><title>t</title><item>{body}</item></channel></rss>".encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture("arxiv_rss_error.xml"), "feed error: Invalid category 'cs.XX'"),
        (fixture("arxiv_rss_truncated.xml"), "malformed XML (no element found"),
        (b"<html><body>Service Unavailable</body></html>", "not an RSS or Atom feed"),
        (b"<rss/>", "RSS document without a <channel>"),
        (
            _rss_item(title="x", link="https://example.org/1"),
            "item 0: no arXiv id in guid, description or link 'https://example.org/1'",
        ),
        (
            _rss_item(
                title="x", guid="oai:arXiv.org:2606.00101v1", **{"arxiv:announce_type": "odd"}
            ),
            "item 0: unknown announce type 'odd'",
        ),
    ],
)
def test_rss_bad_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceParseError) as info:
        parse_arxiv_rss(RSS, body)
    assert str(info.value).startswith("arxiv_rss https://rss.arxiv.org/rss/cs.LG: ")
    assert message in str(info.value)


def test_rss_item_without_guid_takes_id_and_version_from_description() -> None:
    body = _rss_item(
        title="x",
        link="https://arxiv.org/abs/2606.00101",
        description="arXiv:2606.00101v7 Announce Type: replace \nAbstract: Text.",
    )
    (sighting,) = parse_arxiv_rss(RSS, body).items
    assert (sighting.paper.key, sighting.paper.version) == ("2606.00101", 7)
    assert sighting.announce is AnnounceType.REPLACE
    assert sighting.paper.abstract == "Text."


# --- generic feeds -----------------------------------------------------------------------


def sha1_key(basis: str) -> str:
    return "feed:" + hashlib.sha1(basis.encode()).hexdigest()


def test_blog_rss_finds_arxiv_ids_and_hashes_the_rest() -> None:
    papers = by_key(tuple(s.paper for s in parse_feed(FEED, fixture("feed_blog_rss.xml")).items))
    assert list(papers) == [
        "2606.00101",  # link arxiv.org/abs/...v1, guid is a permalink elsewhere
        "2605.27777",  # arxiv.org/pdf/...v3.pdf
        "2605.21834",  # huggingface.co/papers/...
        sha1_key("https://notebook.example.org/2026/06/schedule"),  # guid
        sha1_key("https://notebook.example.org/2026/05/notes"),  # no guid: the link
        # title + date, scoped to this feed so another feed's look-alike stays apart
        sha1_key(f"{FEED.url}\nTitle and date only\nFri, 29 May 2026 09:00:00 GMT"),
    ]  # the item with neither title nor link is skipped
    heads = papers["2606.00101"]
    assert heads.version == 1
    assert (
        heads.abstract
        == "Attention heads that increment tokens: Monday → Tuesday. Worth a read & a re-read."
    )
    assert heads.authors == ("Ada Example",)
    assert heads.published == datetime(2026, 6, 2, 6, 15, tzinfo=UTC)
    assert heads.links.abs == "https://arxiv.org/abs/2606.00101v1"
    assert heads.sources == ("nb",)
    assert papers["2605.27777"].links.pdf == "https://arxiv.org/pdf/2605.27777v3.pdf"
    assert papers["2605.21834"].links.hf == "https://huggingface.co/papers/2605.21834"
    assert papers[sha1_key("https://notebook.example.org/2026/06/schedule")].abstract == (
        "No paper this time: just dates & rooms."
    )


def test_feed_keys_are_stable_across_parses() -> None:
    first = [s.paper.key for s in parse_feed(FEED, fixture("feed_blog_rss.xml")).items]
    second = [s.paper.key for s in parse_feed(FEED, fixture("feed_blog_rss.xml")).items]
    assert first == second


def test_atom_feed_related_pdf_link_html_title_and_content() -> None:
    papers = by_key(tuple(s.paper for s in parse_feed(FEED, fixture("feed_atom.xml")).items))
    vssm = papers["2605.28888"]
    assert vssm.title == "VSSM: Parallel Generation & Resumable Decoding"
    assert vssm.abstract == "We propose the variational SSM (VSSM)."  # script dropped
    assert vssm.authors == ("Gaspard Lambrechts", "Damien Ernst")
    assert vssm.links.abs == "https://lab.example.org/papers/vssm"
    assert vssm.published == datetime(2026, 5, 27, 19, 0, tzinfo=UTC)
    assert vssm.updated == datetime(2026, 5, 28, 8, 30, tzinfo=UTC)
    talk = papers[sha1_key("tag:lab.example.org,2026:papers/talk")]
    assert talk.published == datetime(2026, 5, 20, 8, 0, tzinfo=UTC)


def test_one_line_feed_with_oai_guid() -> None:
    papers = by_key(tuple(s.paper for s in parse_feed(FEED, fixture("feed_oneline.xml")).items))
    assert list(papers) == ["2310.15154", sha1_key("https://one.example.org/2")]
    assert (
        papers["2310.15154"].title == "Linear Representations of Sentiment in Large Language Models"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture("feed_truncated.xml"), "malformed XML (line 27"),
        (fixture("feed_html_page.html"), "not an RSS or Atom feed"),
        (b"just some text", "not an RSS or Atom feed"),
        (b"/etc/passwd", "not an RSS or Atom feed"),  # never opened as a path
        (b"https://example.org/feed.xml", "not an RSS or Atom feed"),  # never fetched
    ],
)
def test_feed_bad_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceParseError) as info:
        parse_feed(FEED, body)
    assert str(info.value).startswith("feed https://notebook.example.org/feed: ")
    assert message in str(info.value)


PARSERS: list[tuple[str, Callable[[bytes], Any]]] = [
    ("hf_2024.json", lambda b: parse_hf_daily(HF, b).items),
    ("hf_2026.json", lambda b: parse_hf_daily(HF, b).items),
    ("arxiv_api_current.xml", lambda b: parse_arxiv_api(API, b).papers),
    ("arxiv_api_legacy.xml", lambda b: parse_arxiv_api(API, b).papers),
    ("arxiv_api_oldstyle.xml", lambda b: parse_arxiv_api(API, b).papers),
    ("arxiv_rss_day.xml", lambda b: tuple(s.paper for s in parse_arxiv_rss(RSS, b).items)),
    ("feed_blog_rss.xml", lambda b: tuple(s.paper for s in parse_feed(FEED, b).items)),
    ("feed_atom.xml", lambda b: tuple(s.paper for s in parse_feed(FEED, b).items)),
]


@pytest.mark.parametrize(("name", "parse"), PARSERS)
def test_every_parsed_paper_is_normalised(name: str, parse: Callable[[bytes], Any]) -> None:
    papers: tuple[Paper, ...] = parse(fixture(name))
    assert papers
    for paper in papers:
        assert paper.title
        assert paper.title == " ".join(paper.title.split())
        assert paper.abstract == " ".join(paper.abstract.split())
        for when in (paper.published, paper.updated):
            assert when is None or when.tzinfo is UTC
        assert all(a and a == " ".join(a.split()) and "\\" not in a for a in paper.authors)


def test_same_plain_guid_in_two_feeds_stays_two_papers() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><item><title>Post one</title>'
        b'<guid isPermaLink="false">1</guid></item></channel></rss>'
    )
    other = SourceConfig(kind=SourceKind.FEED, url="https://other.example.org/feed.xml")
    (first,) = parse_feed(FEED, body).items
    (second,) = parse_feed(other, body).items
    assert first.paper.key != second.paper.key
    assert parse_feed(FEED, body).items[0].paper.key == first.paper.key  # stable across runs
