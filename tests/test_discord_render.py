"""Papers, alerts and digests rendered for Discord, without Discord: limits, splitting, safety."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.accounts.addresses import AddressRequest, Confirmation
from bot.delivery.notifier import DigestSection
from bot.models import Links, User
from handlers.discord.notifier import message_nonce
from handlers.discord.render import (
    ABSTRACT_CHARS,
    EMBEDS_PER_MESSAGE,
    MESSAGE_EMBED_CHARS,
    MessagePart,
    alert_parts,
    digest_parts,
    escaped,
    highlight,
    pack,
    paper_card,
    trim,
)
from handlers.discord.render_replies import email_set_reply, email_verified_reply
from tests.discord_fake_models import CAROL, PAPERS_CHANNEL
from tests.support_discord import channel_recipient, dm_recipient, embed_titles, unmark
from tests.support_email import alert_message, corpus, digest_message, item, subscription

USER = dm_recipient(CAROL)
CHANNEL = channel_recipient(PAPERS_CHANNEL)


def _titles(parts: list[MessagePart]) -> list[str]:
    return [t for part in parts for t in embed_titles(e.to_dict() for e in part.embeds)]


def test_twenty_five_papers_make_three_messages_in_order() -> None:
    papers = corpus()[:25]
    parts = alert_parts(alert_message(papers, to=USER))
    assert [len(p.embeds) for p in parts] == [10, 10, 5]
    assert _titles(parts) == [" ".join(p.title.split()) for p in papers]
    assert [k for p in parts for k in p.paper_keys] == [p.key for p in papers]
    assert parts[0].content.startswith("🔔 25 new papers for you")
    assert [p.content for p in parts[1:]] == ["(part 2 of 3)", "(part 3 of 3)"]
    assert all(p.embed_chars <= MESSAGE_EMBED_CHARS for p in parts)


def test_the_character_budget_splits_before_ten_embeds() -> None:
    long = [replace(p, title="T" * 400, abstract="word " * 2000) for p in corpus()[:30]]
    parts = alert_parts(alert_message(long, to=USER))
    assert sum(len(p.embeds) for p in parts) == 30  # never a dropped paper
    assert all(len(p.embeds) <= EMBEDS_PER_MESSAGE for p in parts)
    assert all(p.embed_chars <= MESSAGE_EMBED_CHARS for p in parts)
    assert len(parts) > 3  # the 6,000 budget, not the count of 10, decided
    for part in parts:
        for embed in part.embeds:
            assert len(embed.title or "") <= 256
            assert (embed.title or "").endswith("…")


def test_whole_corpus_fits_the_limits() -> None:
    papers = corpus()
    parts = alert_parts(alert_message(papers, to=CHANNEL))
    assert sum(len(p.embeds) for p in parts) == len(papers)
    for part in parts:
        assert len(part.embeds) <= 10
        assert part.embed_chars <= 6000
        assert len(part.content) <= 2000
        assert len(part.buttons) <= 25
        assert {b.row for b in part.buttons} <= set(range(5))
        for embed in part.embeds:
            for field in embed.fields:
                assert 1 <= len(field.value or "") <= 1024
            assert len(embed.description or "") <= 4096
    assert parts[0].content.startswith(f"🔔 {len(papers)} new papers for this channel")


def test_embed_shows_paper_and_why_it_matched() -> None:
    paper = replace(corpus()[3], upvotes=42, authors=tuple(f"Author {i}" for i in range(7)))
    sub = subscription(9, "language models", ["language", "models"])
    [part] = alert_parts(replace(alert_message([paper], to=USER), items=(item(paper, sub),)))
    embed = part.embeds[0].to_dict()
    assert embed["url"] == paper.links.abs
    fields = {f["name"]: f["value"] for f in embed.get("fields", [])}
    assert fields["Authors"] == "Author 0, Author 1, Author 2, Author 3 +3 more"
    assert fields["Categories"] == " ".join(paper.categories)
    assert fields["Upvotes"] == "▲ 42"
    assert fields["Matched"] == "**language models** · language, models"
    assert embed["footer"]["text"] == f"#1 · arXiv:{paper.key} · hf"
    assert len(unmark(embed["description"])) <= ABSTRACT_CHARS
    assert [(b.label, b.url) for b in part.buttons] == [
        ("#1 Abstract", paper.links.abs),
        ("#1 PDF", paper.links.pdf),
    ]


def test_matched_words_are_bold_and_markdown_is_escaped() -> None:
    assert highlight("Large Language models, LLMs.", ["language", "llms"]) == (
        "Large **Language** models, **LLMs**."
    )
    assert highlight("a *b* _c_", []) == r"a \*b\* \_c\_"
    title = "**Bold** claim_s with `code` " + "x" * 300
    result = escaped(title, 256)
    assert len(result) <= 256
    assert result.startswith(r"\*\*Bold\*\* claim\_s with \`code\`")
    assert not result.endswith("\\…")


def test_everyone_in_a_title_or_query_pings_nobody() -> None:
    paper = replace(corpus()[0], title="@everyone read this <@130000000000000010>")
    sub = subscription(1, "@everyone @here", ["read"])
    message = replace(alert_message([paper], to=CHANNEL), items=(item(paper, sub),))
    [part] = alert_parts(message)
    assert "@everyone" not in part.content
    assert "@\u200beveryone" in part.content
    assert "@\u200bhere" in part.content
    # Embed text never pings; the notifier also sends allowed_mentions none (tested e2e).
    assert part.embeds[0].title == "@everyone read this <@130000000000000010>"


def test_links_only_when_they_are_web_links() -> None:
    paper = replace(corpus()[1], links=Links(abs="javascript:alert(1)", pdf=None, hf=None))
    card = paper_card(paper, 4)
    assert card.links == ()
    assert card.embed.url is None


def test_digest_lists_sections_and_each_paper_once() -> None:
    papers = corpus()[40:52]
    message = digest_message(
        papers, to=USER, more=7, notes=["arXiv made no announcement today (weekend/holiday)"]
    )
    shared = DigestSection(subscription(3, "extra"), (item(papers[0], subscription(3, "extra")),))
    message = replace(message, sections=(*message.sections, shared))
    parts = digest_parts(message)
    assert sorted(_titles(parts)) == sorted(" ".join(p.title.split()) for p in papers)
    header = parts[0].content
    assert header.startswith("📬 **Your paperbell digest for Fri 22 Nov 2024** · 19 papers")
    assert "• **query 1 models** — 6 papers" in header
    assert "…and 7 more past the digest limit" in header
    assert "arXiv made no announcement today (weekend/holiday)" in header


def test_an_empty_digest_says_all_quiet() -> None:
    [part] = digest_parts(digest_message([], to=USER, sections=0))
    assert "All quiet" in part.content
    assert part.embeds == ()


def test_an_alert_without_papers_is_no_message() -> None:
    assert alert_parts(alert_message([], to=USER)) == []


def test_pack_of_nothing_is_nothing() -> None:
    assert pack("header", []) == []


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("short", 10, "short"),
    ("one two three four", 12, "one two…"),
    ("  spaced\n\tout  ", 20, "spaced out"),
])  # fmt: skip
def test_trim(text: str, limit: int, expected: str) -> None:
    assert trim(text, limit) == expected


def test_nonces_are_stable_short_and_distinct() -> None:
    first = message_nonce("alert", "alert:k", 0, ["2411.1"])
    assert first == message_nonce("alert", "alert:k", 0, ["2411.1"])
    assert len(first) <= 25
    others = {
        message_nonce("alert", "alert:k", 1, ["2411.1"]),
        message_nonce("alert", "alert:j", 0, ["2411.1"]),
        message_nonce("digest", "alert:k", 0, ["2411.1"]),
        message_nonce("alert", "alert:k", 0, ["2411.2"]),
    }
    assert first not in others
    assert len(others) == 4


def test_email_replies_say_what_is_true() -> None:
    when = datetime(2026, 11, 20, tzinfo=UTC)
    ada = User(id=1, created_at=when, email="ada@example.org", email_verified=True)
    done = email_set_reply(AddressRequest(ada, Confirmation.CONFIRMED)).content
    assert (
        done
        == "✅ **ada@example.org** is already confirmed: email delivery is on. Nothing was sent."
    )
    queued = email_set_reply(
        AddressRequest(replace(ada, email_verified=False), Confirmation.QUEUED)
    )
    assert queued.content.startswith("📧 A confirmation to **ada@example.org** is queued")
    stopped = replace(ada, email_suppressed=True, email_suppressed_reason="you unsubscribed")
    assert email_verified_reply(stopped).content == (
        "✅ **ada@example.org** is confirmed, but no mail goes to it (you unsubscribed). "
        "Run `/email set` again to resume."
    )
