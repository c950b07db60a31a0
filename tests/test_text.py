"""Display normalisation: whitespace, one level of entities, TeX names, dc:creator splitting."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import (
    MAX_SPLIT_AUTHORS,
    collapse_whitespace,
    decode_entities,
    display_text,
    html_to_text,
    name_to_unicode,
    split_authors,
    strip_invisible,
)


def test_collapse_whitespace_removes_arxiv_hard_wraps() -> None:
    assert (
        collapse_whitespace("Scaling for\n  Contrastive\tLoss \n") == "Scaling for Contrastive Loss"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a &amp; b", "a & b"),
        ("&lt;think&gt;", "<think>"),
        ("&#946;-VAE &#x3A3;", "β-VAE Σ"),
        ("&amp;lt;", "&lt;"),  # one level only: a triple escape keeps its last level
        ("R&D and A&B", "R&D and A&B"),
        ("&parameter &not x &copy", "&parameter &not x &copy"),  # no semicolon: literal
        ("$a &= b$", "$a &= b$"),
        ("no entities", "no entities"),
    ],
)
def test_decode_entities_decodes_complete_references_once(text: str, expected: str) -> None:
    assert decode_entities(text) == expected


def test_xml_decoding_plus_display_text_undoes_a_double_escape_but_not_more() -> None:
    # The feed escaped "<b> & c" twice; the XML parser undid one level, we undo the other.
    doubly = ET.fromstring("<t>&amp;lt;b&amp;gt; &amp;amp; c</t>").text or ""
    assert doubly == "&lt;b&gt; &amp; c"
    assert display_text(doubly) == "<b> & c"
    # Singly escaped text is already final after XML parsing and stays as it is.
    singly = ET.fromstring("<t>p &lt; 0.01 &amp; q</t>").text or ""
    assert display_text(singly) == "p < 0.01 & q"


def test_display_text_keeps_latex() -> None:
    text = "A $\\mathbb{Z}_2$ model with $J_1$\n  and \\textbf{bold} 98\\%"
    assert display_text(text) == r"A $\mathbb{Z}_2$ model with $J_1$ and \textbf{bold} 98\%"
    assert display_text(None) == ""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (r"J\"urgen Schmidhuber", "Jürgen Schmidhuber"),
        (r"Przemys{\l}aw Biecek", "Przemysław Biecek"),
        (r"St\'ephan Cl\'emen\c{c}on", "Stéphan Clémençon"),
        (r"Bj\"orn L\"utjens", "Björn Lütjens"),
        (r"Paul Erd\H{o}s", "Paul Erdős"),
        (r"{\"O}zg{\"u}r", "Özgür"),
        (r"J.~Smith", "J. Smith"),
        (r"A.\ Bc 100% & Co", "A. Bc 100% & Co"),  # %, & stay literal when TeX is parsed
        ("Götz S. Uhrig", "Götz S. Uhrig"),
        ("R&D Team", "R&D Team"),
        ("  Ada   Lovelace ", "Ada Lovelace"),
    ],
)
def test_name_to_unicode(name: str, expected: str) -> None:
    assert name_to_unicode(name) == expected


@pytest.mark.parametrize(
    ("creators", "expected"),
    [
        ("Alice Smith, Bob Jones", ("Alice Smith", "Bob Jones")),
        (
            "A. Araujo (University of Brasilia Brazil, The University of Melbourne Australia)",
            ("A. Araujo",),
        ),
        (
            'Rhys Gould, Euan Ong (University of Cambridge, UK), J\\"urgen Schmidhuber '
            "(IDSIA, USI, SUPSI), Przemys{\\l}aw Biecek",
            ("Rhys Gould", "Euan Ong", "Jürgen Schmidhuber", "Przemysław Biecek"),
        ),
        ("Ann Lee (Lab (West), Inc.), Bo Chen", ("Ann Lee", "Bo Chen")),
        ("Ann Lee, Bo Chen and Cy Dao", ("Ann Lee", "Bo Chen", "Cy Dao")),
        ("Ann Lee, Bo Chen, and Cy Dao", ("Ann Lee", "Bo Chen", "Cy Dao")),
        ("Ann Lee and Bo Chen", ("Ann Lee", "Bo Chen")),
        ("Anand Kumar, Ferdinand Brandt", ("Anand Kumar", "Ferdinand Brandt")),
        ("Single Author", ("Single Author",)),
        ("", ()),
        (" , ,", ()),
    ],
)
def test_split_authors(creators: str, expected: tuple[str, ...]) -> None:
    assert split_authors(creators) == expected


def test_split_authors_handles_hundreds_of_names() -> None:
    names = [f"Author {i} (Lab {i}, City {i})" for i in range(250)]
    assert split_authors(", ".join(names)) == tuple(f"Author {i}" for i in range(250))


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("<p>Hello &amp; <b>world</b></p><p>Next</p>", "Hello & world Next"),
        ("line<br/>break", "line break"),
        ("<script>alert(1)</script>safe", "safe"),
        ("Monday &rarr; Tuesday", "Monday → Tuesday"),
        ("plain text", "plain text"),
        ("", ""),
        (None, ""),
    ],
)
def test_html_to_text(fragment: str | None, expected: str) -> None:
    assert html_to_text(fragment) == expected


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80))
def test_display_text_is_idempotent_on_text_without_ampersands(text: str) -> None:
    text = text.replace("&", "")
    once = display_text(text)
    assert display_text(once) == once
    assert "  " not in once
    assert once == once.strip()


def test_every_format_character_and_non_space_control_is_stripped() -> None:
    import sys
    import unicodedata

    invisible = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Cf"
        or (unicodedata.category(chr(c)) == "Cc" and not chr(c).isspace())
    ]
    assert strip_invisible("a" + "".join(invisible) + "b") == "ab"
    assert display_text("safe\u202etxt.exe\u200b\u2066x\ufeff") == "safetxt.exex"
    assert name_to_unicode('J\\"urgen\u200f Wei\u00df') == "Jürgen Weiß"


def test_visible_text_is_left_alone() -> None:
    text = "Σ-Mem: β-VAE 中文 عربي émoji 🎉 $J_1$"
    assert strip_invisible(text) == text


def test_split_authors_stops_past_the_cap() -> None:
    names = split_authors(", ".join(f"Author {n}" for n in range(100_000)))
    assert len(names) == MAX_SPLIT_AUTHORS
