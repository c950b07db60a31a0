"""arXiv identifiers: every spelling sources use, and what must not pass for an id."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sources.arxiv_ids import ArxivId, find_arxiv_id_in_url, parse_arxiv_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2403.16981", ArxivId("2403.16981", None)),
        ("2403.16981v2", ArxivId("2403.16981", 2)),
        ("0704.0001", ArxivId("0704.0001", None)),
        ("1412.6980v9", ArxivId("1412.6980", 9)),
        ("1501.00001", ArxivId("1501.00001", None)),
        ("arXiv:2403.16981v2", ArxivId("2403.16981", 2)),
        ("arxiv: 2403.16981", ArxivId("2403.16981", None)),
        ("oai:arXiv.org:2606.00101v1", ArxivId("2606.00101", 1)),
        ("  2606.00101v12\n", ArxivId("2606.00101", 12)),
        ("hep-th/9901001", ArxivId("hep-th/9901001", None)),
        ("hep-th/9711200v3", ArxivId("hep-th/9711200", 3)),
        ("math.GT/0309136", ArxivId("math/0309136", None)),
        ("arXiv:cond-mat/0501001v2", ArxivId("cond-mat/0501001", 2)),
        ("oai:arXiv.org:astro-ph/0601001", ArxivId("astro-ph/0601001", None)),
        ("https://arxiv.org/abs/2403.16981v2", ArxivId("2403.16981", 2)),
    ],
)
def test_parse_arxiv_id_accepts_every_spelling(text: str, expected: ArxivId) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024.12345",  # a year and a number, not YYMM: month 24
        "2413.12345",  # month 13
        "0612.1234",  # before new-style ids began (0704)
        "1501.1234",  # four digits after 1501
        "1412.12345",  # five digits before 1501
        "2403.16981v0",
        "2403.16981v",
        "2403.169811",
        "see 2403.16981",
        "2403.16981 and more",
        "hep-th/991301",  # six digits
        "hep-th/9913001",  # month 13
        "HEP-TH/9901001",
        "doi:10.1000/182",
        "reading-group-note-1",
        "https://example.org/abs/2403.16981",
    ],
)
def test_parse_arxiv_id_rejects_non_ids(text: str) -> None:
    assert parse_arxiv_id(text) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://arxiv.org/abs/2403.16981", ArxivId("2403.16981", None)),
        ("http://arxiv.org/abs/2403.16981v2", ArxivId("2403.16981", 2)),
        ("https://www.arxiv.org/abs/2403.16981v2/", ArxivId("2403.16981", 2)),
        ("https://export.arxiv.org/abs/2403.16981", ArxivId("2403.16981", None)),
        ("https://arxiv.org/pdf/2403.16981", ArxivId("2403.16981", None)),
        ("https://arxiv.org/pdf/2403.16981v3.pdf", ArxivId("2403.16981", 3)),
        ("https://arxiv.org/html/2403.16981v1", ArxivId("2403.16981", 1)),
        ("http://arxiv.org/abs/astro-ph/0601001v1", ArxivId("astro-ph/0601001", 1)),
        ("https://arxiv.org/pdf/math.GT/0309136v2", ArxivId("math/0309136", 2)),
        ("https://huggingface.co/papers/2606.00467", ArxivId("2606.00467", None)),
        ("https://huggingface.co/papers/2606.00467?utm=x#c", ArxivId("2606.00467", None)),
        ("https://huggingface.co/api/papers/2606.00467", ArxivId("2606.00467", None)),
        ("arxiv.org/abs/2403.16981", ArxivId("2403.16981", None)),
        ("HTTPS://ARXIV.ORG/abs/2403.16981", ArxivId("2403.16981", None)),
    ],
)
def test_find_arxiv_id_in_url(url: str, expected: ArxivId) -> None:
    assert find_arxiv_id_in_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/abs/2403.16981",
        "https://blog.example.org/2024.12345",
        "https://arxiv.org/list/cs.LG/2403.16981",
        "https://arxiv.org/abs/",
        "https://arxiv.org/abs/2403.16981/extra",
        "https://huggingface.co/datasets/2403.16981",
        "https://arxiv.org.evil.example/abs/2403.16981",
        "ftp://arxiv.org/abs/2403.16981",
        "file:///abs/2403.16981",
        "https://arxiv.org/api/errors#incorrect_id_format_for_1234.12345",
    ],
)
def test_find_arxiv_id_in_url_rejects_other_urls(url: str) -> None:
    assert find_arxiv_id_in_url(url) is None


@settings(max_examples=60, deadline=None)
@given(
    year=st.integers(15, 99),
    month=st.integers(1, 12),
    number=st.integers(0, 99999),
    version=st.one_of(st.none(), st.integers(1, 99)),
)
def test_new_style_ids_round_trip(year: int, month: int, number: int, version: int | None) -> None:
    ident = f"{year:02d}{month:02d}.{number:05d}"
    text = ident + (f"v{version}" if version else "")
    assert parse_arxiv_id(text) == ArxivId(ident, version)
    assert find_arxiv_id_in_url(f"https://arxiv.org/abs/{text}") == ArxivId(ident, version)
    assert parse_arxiv_id(f"oai:arXiv.org:{text}") == ArxivId(ident, version)
