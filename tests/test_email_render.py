"""Rendering: both parts, headers, escaping, highlighting, limits, subjects, spam score."""

from __future__ import annotations

import html
import itertools
import os
import re
import shutil
import subprocess
import tomllib
import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.delivery.notifier import DigestMessage, DigestSection, ManageLinkMessage, MessageLinks
from bot.errors import ConfigError, PermanentDeliveryError
from bot.models import Links, Paper
from bot.settings import EmailSettings, Settings, SmtpSettings
from handlers.email import format as fmt
from handlers.email.render import Renderer, render_alerts
from handlers.email.views import paper_card
from tests.support_email import (
    LINKS,
    alert_message,
    bodies,
    confirmation_message,
    corpus,
    digest_message,
    item,
    parse,
    recipient,
    subscription,
    with_title,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 11, 22, 7, 30, tzinfo=UTC)
NASTY_TITLE = "Beyond <script>alert('x')</script> & \"Quoted\" Models for $\\alpha$-Nets"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    smtp = SmtpSettings(from_address="bell@example.org", from_name="paperbell")
    return Renderer(smtp, EmailSettings(list_id="bell.example.org"), clock=lambda: NOW)


class _HtmlReader(HTMLParser):
    """Visible text and link targets of an HTML part, as a mail client would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag in ("style", "title")
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)


def read_html(part: str) -> _HtmlReader:
    reader = _HtmlReader()
    reader.feed(part)
    return reader


def visible(part: str) -> str:
    return " ".join("".join(read_html(part).text).split())


def roundtrip(msg: EmailMessage) -> EmailMessage:
    return parse(msg.as_bytes())


# --- both parts ------------------------------------------------------------------------------


def test_digest_parts_carry_the_same_titles_and_links(renderer: Renderer) -> None:
    papers = list(corpus()[:8])
    message = digest_message(papers, notes=["arXiv: no announcement today"])
    msg = roundtrip(renderer.digest(message))
    assert msg.get_content_type() == "multipart/alternative"
    text, html_part = bodies(msg)
    shown = visible(html_part)
    for paper in papers:
        title = " ".join(paper.title.split())
        assert fmt.highlight_text(title, ("models", "model")) in text
        assert title in shown
    hrefs = set(read_html(html_part).hrefs)
    text_urls = set(re.findall(r"https?://\S+", text))
    assert hrefs == text_urls
    assert {p.links.abs for p in papers} | {p.links.pdf for p in papers} <= hrefs
    assert LINKS.unsubscribe_all in hrefs
    assert "arXiv: no announcement today" in text
    assert "arXiv: no announcement today" in shown


def test_a_long_alert_shows_the_best_in_full_and_lists_the_rest_by_title() -> None:
    papers = list(corpus()[:14])
    smtp = SmtpSettings(from_address="bell@example.org")
    renderer = Renderer(smtp, EmailSettings(alert_full_papers=4), clock=lambda: NOW)
    msg = roundtrip(renderer.alerts(alert_message(papers)))
    text, html_part = bodies(msg)
    shown = visible(html_part)
    assert "14 new papers" in msg["Subject"]
    assert text.count("PDF: ") == 4  # four in full, with their links and abstracts
    assert "And 10 more" in text and "And 10 more" in shown
    for paper in papers:  # every paper named, none lost
        title = " ".join(paper.title.split())
        assert title in shown
        assert paper.links.abs in read_html(html_part).hrefs
    assert set(read_html(html_part).hrefs) == set(re.findall(r"https?://\S+", text))


def test_a_paper_read_again_is_compared_once_and_a_changed_one_shown_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dispatcher's paper cache reads the papers again every minute: an equal copy
    takes over the card held (one comparison, then identity), a changed one gets its own."""
    paper = corpus()[7]
    first = paper_card(paper)
    compared: list[int] = []
    equal = Paper.__eq__

    def counting(self: Paper, other: object) -> bool:
        compared.append(1)
        return equal(self, other)

    monkeypatch.setattr(Paper, "__eq__", counting)
    again = replace(paper)  # read again: equal, another object
    assert all(paper_card(again) is first for _ in range(80))
    assert len(compared) == 1
    changed = replace(paper, title="A title the authors changed")
    assert paper_card(changed).title == "A title the authors changed"
    assert paper_card(again).title == first.title


def test_each_digest_section_links_to_stopping_that_subscription(renderer: Renderer) -> None:
    text, html_part = bodies(roundtrip(renderer.digest(digest_message(corpus()[:4]))))
    for sub_id, query in ((1, "query 1 models"), (2, "query 2 models")):
        url = subscription(sub_id, query).unsubscribe_url
        assert f"Stop emails for “{query}”: {url}" in text
        assert url in read_html(html_part).hrefs


def test_title_with_markup_stays_text(renderer: Renderer) -> None:
    papers = [with_title(corpus()[0], NASTY_TITLE), *corpus()[1:3]]
    text, html_part = bodies(roundtrip(renderer.alerts(alert_message(papers))))
    assert "<script" not in html_part.lower()
    assert "&lt;script&gt;" in html_part
    assert "script" not in read_html(html_part).tags
    assert NASTY_TITLE.replace("Models", "*Models*") in text
    assert NASTY_TITLE in visible(html_part)  # LaTeX kept as written, too


def test_unsafe_links_are_not_placed(renderer: Renderer) -> None:
    paper = replace(corpus()[0], links=Links(abs="javascript:alert(1)", pdf="data:text/html,x"))
    text, html_part = bodies(roundtrip(renderer.alerts(alert_message([paper]))))
    assert "javascript:" not in html_part
    assert "javascript:" not in text
    assert "data:text" not in html_part


def test_html_is_inlined_and_ready_for_dark_mode_and_phones(renderer: Renderer) -> None:
    _, html_part = bodies(roundtrip(renderer.digest(digest_message(corpus()[:3]))))
    assert '<meta name="color-scheme" content="light dark">' in html_part
    assert "@media (prefers-color-scheme: dark)" in html_part
    assert "max-width:640px" in html_part
    assert 'style="' in html_part  # rules were inlined onto the elements
    assert ".paper {" not in html_part  # and not kept twice


# --- headers ---------------------------------------------------------------------------------


def test_headers(renderer: Renderer) -> None:
    msg = roundtrip(renderer.digest(digest_message(corpus()[:3])))
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["MIME-Version"] == "1.0"
    assert msg["From"] == "paperbell <bell@example.org>"
    assert msg["To"] == "reader@example.org"
    assert msg["List-Id"] == "paperbell <bell.example.org>"
    assert msg["List-Unsubscribe"] == f"<{LINKS.unsubscribe_all}>"  # no mailto nobody reads
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"


def test_list_unsubscribe_survives_serialisation_verbatim(renderer: Renderer) -> None:
    long_link = "https://bell.example.org/u/all?t=" + "x" * 200 + ",y"
    links = replace(LINKS, unsubscribe_all=long_link)
    message = replace(digest_message(corpus()[:1]), links=links)
    raw = renderer.digest(message).as_bytes()
    assert f"<{long_link}>".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"List-Unsubscribe:")[1].split(b"\r\n\r\n")[0][:300]
    assert parse(raw)["List-Unsubscribe"] == f"<{long_link}>"


def test_message_id_is_derived_from_the_key(renderer: Renderer) -> None:
    first = renderer.alerts(alert_message(corpus()[:2], key="alert:7"))
    again = renderer.alerts(alert_message(corpus()[2:4], key="alert:7"))
    other = renderer.alerts(alert_message(corpus()[:2], key="alert:8"))
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] != other["Message-ID"]
    assert re.fullmatch(r"<[0-9a-f]{32}\.paperbell@example\.org>", first["Message-ID"])


def test_one_click_needs_https_and_links_are_optional(renderer: Renderer) -> None:
    plain = replace(LINKS, unsubscribe_all="http://localhost:8080/u?t=1")
    msg = renderer.digest(replace(digest_message(corpus()[:1]), links=plain))
    assert "List-Unsubscribe-Post" not in msg
    assert msg["List-Unsubscribe"].startswith("<http://localhost:8080/u?t=1>")
    bare = renderer.digest(replace(digest_message(corpus()[:1]), links=MessageLinks()))
    assert "List-Unsubscribe" not in bare
    assert bare["List-Id"] == "paperbell <bell.example.org>"


def test_confirmation_has_code_and_link_in_both_parts(renderer: Renderer) -> None:
    message = confirmation_message()
    msg = roundtrip(renderer.confirmation(message))
    text, html_part = bodies(msg)
    for part in (text, visible(html_part)):
        assert message.code in part
        assert message.confirm_url in part
        assert "expire in 24 hours" in part
        assert "you can ignore this email" in part
    assert message.confirm_url in read_html(html_part).hrefs
    assert "List-Unsubscribe" not in msg
    assert msg["Subject"] == "paperbell · your confirmation code is 048213"


def test_bad_recipients_are_refused_before_rendering(renderer: Renderer) -> None:
    with pytest.raises(PermanentDeliveryError, match="not a deliverable") as caught:
        renderer.alerts(alert_message(corpus()[:1], to=recipient("reader@x.org\r\nBcc: a@b.c")))
    assert caught.value.recipient_unreachable
    with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
        renderer.alerts(alert_message(corpus()[:1], to=recipient("rédacteur@example.org")))


def test_a_bad_sender_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PAPERBELL_SMTP__FROM_ADDRESS: not a deliverable"):
        Renderer(SmtpSettings(from_address="paperbell"), EmailSettings())


def test_module_level_render_functions() -> None:
    msg = render_alerts(alert_message(corpus()[:2]), Settings())
    assert msg["Subject"] == "paperbell · 2 new papers · language models"


# --- digest shape ----------------------------------------------------------------------------


def test_digest_stops_at_the_limit_and_says_how_many_more() -> None:
    limited = Renderer(SmtpSettings(), EmailSettings(digest_max_papers=50), clock=lambda: NOW)
    papers = corpus()[:60]
    message = digest_message(papers, more=3)
    msg = roundtrip(limited.digest(message))
    text, html_part = bodies(msg)
    # The best ten in full (``digest_full_papers``), the other forty by title and link.
    assert html_part.count('class="paper"') == 10
    assert html_part.count("<li><a href=") == 40
    assert len(re.findall(r"^\d+\. ", text, flags=re.MULTILINE)) == 50
    assert "And 13 more papers not shown here." in text
    assert "And 13 more papers not shown here." in visible(html_part)
    assert "63 papers" in msg["Subject"]


def test_a_paper_in_two_sections_is_shown_once(renderer: Renderer) -> None:
    shared, other = corpus()[0], corpus()[1]
    first, second = subscription(1, "circuits"), subscription(2, "training scale")
    sections = (
        DigestSection(first, (item(shared, first, second),)),
        DigestSection(second, (item(shared, first, second), item(other, second))),
    )
    message = replace(digest_message([]), sections=sections)
    text, _ = bodies(roundtrip(renderer.digest(message)))
    assert text.count(" ".join(shared.title.split())) == 1
    assert "Matched by: circuits, training scale" in text
    assert "1 more paper of this subscription is listed above." in text


def test_papers_are_best_first_by_score_then_upvotes(renderer: Renderer) -> None:
    sub = subscription(1, "q")
    low, high, tie_more = corpus()[0], corpus()[1], corpus()[2]
    items = (
        item(replace(low, upvotes=100), sub, score=1.0),
        item(replace(high, upvotes=0), sub, score=3.0),
        item(replace(tie_more, upvotes=200), sub, score=1.0),
    )
    message = replace(digest_message([]), sections=(DigestSection(sub, items),))
    text, _ = bodies(roundtrip(renderer.digest(message)))
    order = [text.index(" ".join(p.title.split())) for p in (high, tie_more, low)]
    assert order == sorted(order)


def test_an_empty_digest_says_all_quiet(renderer: Renderer) -> None:
    message = DigestMessage(
        key="digest:quiet", recipient=recipient(), local_date=date(2024, 11, 22), sections=()
    )
    msg = roundtrip(renderer.digest(message))
    text, html_part = bodies(msg)
    assert msg["Subject"] == "paperbell digest · Fri 22 Nov · all quiet"
    assert "All quiet" in text
    assert "All quiet" in visible(html_part)


def test_paper_details(renderer: Renderer) -> None:
    paper = replace(corpus()[3], authors=tuple(f"Author {n}" for n in range(7)), upvotes=42)
    text, html_part = bodies(roundtrip(renderer.alerts(alert_message([paper]))))
    authors = "Author 0, Author 1, Author 2, Author 3, Author 4 et al."
    assert authors in text
    assert authors in visible(html_part)
    assert "42 upvotes" in text
    assert ", ".join(paper.categories) in text
    assert "Matched by: language models" in text
    assert paper.links.pdf and f"PDF: {paper.links.pdf}" in text


# --- text helpers ----------------------------------------------------------------------------


def test_abstracts_are_trimmed_to_about_sixty_words() -> None:
    words = [f"w{n}" for n in range(200)]
    trimmed = fmt.trim_words(" ".join(words))
    assert trimmed.split()[:60] == words[:60]
    assert trimmed.endswith(" …")
    assert len(trimmed.split()) == 61
    assert fmt.trim_words("short abstract") == "short abstract"


def test_trimming_never_cuts_inside_inline_math() -> None:
    text = " ".join(["w"] * 58 + ["$a", "+", "b", "+", "c$", "tail"] + ["x"] * 20)
    assert "$a + b + c$ …" in fmt.trim_words(text)
    unclosed = " ".join(["w"] * 58 + ["$never", "closed"] + ["y"] * 60)
    assert fmt.trim_words(unclosed).endswith("w …")


def test_subject_lines() -> None:
    queries = ["diffusion video", "author:hinton"]
    assert (
        fmt.subject_line(["paperbell", fmt.plural(12, "new paper")], queries)
        == "paperbell · 12 new papers · diffusion video, author:hinton"
    )
    assert fmt.subject_line(["paperbell", fmt.plural(1, "new paper")], ["x"]).endswith(
        "1 new paper · x"
    )
    day = fmt.short_date(date(2026, 11, 20))
    assert (
        fmt.subject_line(["paperbell digest", day, "12 papers"], queries)
        == "paperbell digest · Fri 20 Nov · 12 papers · diffusion video, author:hinton"
    )


def test_long_subjects_are_cut_sensibly() -> None:
    many = [f"topic number {n} with words" for n in range(12)]
    subject = fmt.subject_line(["paperbell", "30 new papers"], many)
    assert len(subject) <= fmt.SUBJECT_LIMIT
    assert re.search(r", topic number \d+ with words \+\d+ more$", subject)
    huge = fmt.subject_line(["paperbell", "2 new papers"], ["x" * 300, "second"])
    assert len(huge) <= fmt.SUBJECT_LIMIT
    assert huge.endswith("… +1 more")


def test_highlighting_is_whole_word_case_and_accent_insensitive() -> None:
    text = "Modèle and MODELE, modeles; remodele and modèle-based"
    marked = fmt.highlight_text(text, ["modele"])
    assert marked == "*Modèle* and *MODELE*, modeles; remodele and *modèle*-based"
    assert fmt.highlight_text("Video Diffusion  models", ["video diffusion"]) == (
        "*Video Diffusion*  models"
    )


def test_highlighting_escapes_before_wrapping() -> None:
    marked = str(fmt.highlight_html('<b>model</b> & "model" lt amp', ["model", "lt", "b"]))
    assert marked == (
        "&lt;<mark>b</mark>&gt;<mark>model</mark>&lt;/<mark>b</mark>&gt; &amp; "
        "&#34;<mark>model</mark>&#34; <mark>lt</mark> amp"
    )


_TEXT = st.text(alphabet=st.sampled_from("aAéÉ bB<>&\"'ß-$\\ \u0301"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(text=_TEXT, words=st.lists(st.text(alphabet="aéb<&ß", min_size=1, max_size=4), max_size=3))
def test_highlighting_never_changes_or_injects_text(text: str, words: list[str]) -> None:
    marked = str(fmt.highlight_html(text, words))
    without_marks = marked.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks
    assert html.unescape(without_marks) == text
    assert fmt.highlight_text(text, words).replace("*", "") == text.replace("*", "")


def _one_pattern_marks(text: str, words: list[str]) -> list[tuple[int, int]]:
    """Where the straightforward highlighter marks: one alternation of every word, longest
    first, a stray combining accent kept with its letter."""
    folded_words = {" ".join(fmt.fold(w).split()) for w in words} - {""}
    if not folded_words:
        return []
    by_length = sorted(folded_words, key=len, reverse=True)
    alternation = "|".join(r"\s+".join(map(re.escape, w.split())) for w in by_length)
    pattern = re.compile(r"(?<!\w)(?:" + alternation + r")(?!\w)")
    marks: list[tuple[int, int]] = []
    for match in pattern.finditer(fmt.fold(text)):
        end = match.end()
        while end < len(text) and unicodedata.combining(text[end]):
            end += 1
        if not marks or match.start() >= marks[-1][1]:
            marks.append((match.start(), end))
    return marks


def _marked_spans(segments: tuple[fmt.Segment, ...]) -> list[tuple[int, int]]:
    offsets = list(itertools.accumulate((len(piece) for piece, _ in segments), initial=0))
    return [(offsets[i], offsets[i + 1]) for i, (_, hit) in enumerate(segments) if hit]


_PHRASE = st.lists(st.text(alphabet="abéAc+", min_size=1, max_size=3), min_size=1, max_size=3)


@st.composite
def _text_with_words(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Words, phrases over them, and a text mostly made of them (so they overlap)."""
    words = draw(st.lists(_PHRASE.map(" ".join), min_size=1, max_size=4))
    fillers = ["b", "É", "+", "\u0301", "  ", "\n", "c-a"]
    pieces = draw(st.lists(st.sampled_from([*words, *fillers]), max_size=8))
    return draw(st.sampled_from([" ", "", "  ", "-"])).join(pieces), words


@settings(max_examples=400, deadline=None)
@given(text_words=_text_with_words())
# A word's second match overlaps its first: found only by looking at every place.
@example(text_words=("A AA AA AA", ["AA AA", "A AA"]))
# A word overlaps itself ("a+a" at 2 and at 4), and only the second is past the phrase.
@example(text_words=("c a+a+a", ["c a", "a+a"]))
def test_highlighting_word_by_word_marks_what_one_alternation_marks(
    text_words: tuple[str, list[str]],
) -> None:
    """Leftmost match first, the longest there: a phrase wins over its first word."""
    text, words = text_words
    segments = fmt.highlight_segments(text, words)
    assert "".join(piece for piece, _ in segments) == text
    assert all(piece for piece, _ in segments)
    assert _marked_spans(segments) == _one_pattern_marks(text, words)


def test_a_phrase_wins_over_its_first_word() -> None:
    segments = fmt.highlight_segments(
        "video diffusion  models and video", ["video", "video diffusion"]
    )
    assert segments == (("video diffusion", True), ("  models and ", False), ("video", True))


# --- packaging and spam score ----------------------------------------------------------------


def test_templates_ship_in_the_wheel() -> None:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    files = [f.name for f in (resources.files("handlers.email") / "templates").iterdir()]
    assert {"digest.html.j2", "digest.txt.j2", "email.css"} <= set(files)
    assert all(any(fnmatch(name, p) for p in patterns) for name in files)


@pytest.mark.skipif(
    shutil.which("spamassassin") is None,
    reason="spamassassin is not installed (Debian package 'spamassassin'); .ci/run adds it",
)
def test_a_digest_scores_low_with_spamassassin(renderer: Renderer, tmp_path: Path) -> None:
    raw = renderer.digest(digest_message(corpus()[:15], notes=["arXiv: no announcement"]))
    # -L: local tests only, never the network. Bayes off and HOME in tmp_path: the score
    # must not drift with whatever earlier runs auto-learned, nor touch the user's files.
    command = ["spamassassin", "-t", "-L", "-x", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"]
    run = subprocess.run(
        command, input=raw.as_bytes(), capture_output=True, check=True, timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    status = parse(run.stdout)["X-Spam-Status"]
    found = re.search(r"score=(-?[\d.]+)", status)
    assert found is not None, status
    assert float(found.group(1)) < 1.0, status


def test_manage_link_mail_and_the_confirmations_manage_link(renderer: Renderer) -> None:
    url = "https://bell.example.org/manage/abc.def"
    msg = roundtrip(
        renderer.manage_link(ManageLinkMessage("manage:1", "ada@example.org", url, 180))
    )
    text, html_part = bodies(msg)
    assert url in text and url in read_html(html_part).hrefs
    assert "180 days" in text and "List-Unsubscribe" not in msg
    assert msg["Subject"] == "paperbell · your link to manage your subscriptions"
    confirm = replace(confirmation_message(), manage_url=url)
    text, html_part = bodies(roundtrip(renderer.confirmation(confirm)))
    assert f"Manage your subscriptions: {url}" in text and url in read_html(html_part).hrefs
    with pytest.raises(PermanentDeliveryError, match="not http"):
        renderer.manage_link(ManageLinkMessage("manage:2", "ada@example.org", "javascript:x", 1))


def test_alert_footer_carries_the_manage_link(renderer: Renderer) -> None:
    url = "https://bell.example.org/manage/abc.def"
    message = replace(alert_message(corpus()[:1]), links=MessageLinks(manage=url))
    text, html_part = bodies(roundtrip(renderer.alerts(message)))
    assert f"Manage your subscriptions: {url}" in text
    assert url in read_html(html_part).hrefs
