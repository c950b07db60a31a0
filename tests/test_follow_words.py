"""The words of a follow note: the word diff, and the note as mail and as a Discord post."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

from bot.delivery.word_diff import MAX_CHARS, token_diff, word_diff
from bot.messages import Channel, FollowNoteMessage, Recipient, RecipientKind
from bot.settings import EmailSettings, SmtpSettings
from handlers.discord.render import follow_note_part
from handlers.email.render import Renderer

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
NOTE = FollowNoteMessage(
    key="follow:7:user:1",
    recipient=Recipient(RecipientKind.USER, 1, Channel.EMAIL, "ada@example.org"),
    paper_key="2611.04321",
    title="Learned <Sparse> Attention & Routing",
    url="https://arxiv.org/abs/2611.04321",
    headline="new version v2 (was v1)",
    lines=("title: {+Learned+} Sparse Attention …",),
)


def test_same_words_are_no_change() -> None:
    assert word_diff("a  b\nc", "a b c") is None
    assert token_diff([], []) is None


def test_changes_with_context_and_ellipses() -> None:
    words = " ".join(f"w{i}" for i in range(30))
    changed = words.replace("w3 ", "x3 ").replace("w25", "x25")
    assert word_diff(words, changed) == (
        "w0 w1 w2 [-w3-] {+x3+} w4 w5 w6 w7 … w21 w22 w23 w24 [-w25-] {+x25+} w26 w27 w28 w29"
    )
    assert word_diff("", "new text") == "{+new text+}"
    assert word_diff("old text", "") == "[-old text-]"


def test_authors_compare_name_by_name() -> None:
    diff = token_diff(["Ada Lovelace", "Alan Turing"], ["Ada Lovelace", "Grace Hopper"], ", ")
    assert diff == "Ada Lovelace, [-Alan Turing-] {+Grace Hopper+}"


def test_a_rewritten_abstract_is_cut() -> None:
    diff = word_diff("a " * 2000, "b " * 2000)
    assert diff is not None and len(diff) == MAX_CHARS and diff.endswith("…")


def test_the_note_as_mail_escapes_the_title() -> None:
    smtp = SmtpSettings(from_address="bell@example.org", from_name="paperbell")
    renderer = Renderer(smtp, EmailSettings(), clock=lambda: NOW)
    mail = message_from_bytes(renderer.follow_note_bytes(NOTE), policy=default)
    assert mail["To"] == "ada@example.org"
    assert mail["Subject"] == (
        "paperbell · new version v2 (was v1): Learned <Sparse> Attention & Routing"
    )
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "title: {+Learned+} Sparse Attention …" in text.get_content()
    assert "https://arxiv.org/abs/2611.04321" in text.get_content()
    assert "Learned &lt;Sparse&gt; Attention &amp; Routing" in html.get_content()
    assert "<Sparse>" not in html.get_content()


def test_the_note_as_a_discord_post() -> None:
    part = follow_note_part(NOTE)
    assert part.content.splitlines()[0].startswith("🔔 **new version v2 (was v1)** · ")
    assert "> title: {+Learned+} Sparse Attention …" in part.content
    assert part.content.endswith("<https://arxiv.org/abs/2611.04321>")
    assert part.paper_keys == ("2611.04321",)
