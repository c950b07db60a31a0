"""Sample papers and messages for the email tests and bench, built from tests/data.

Papers come from the recorded corpus (tests/data/papers.jsonl); ids, categories and links
are filled in deterministically from the line number so every run builds the same mail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any

from bot.models import Links, Paper
from bot.notify import (
    AlertItem,
    AlertMessage,
    Channel,
    ConfirmationMessage,
    DigestMessage,
    DigestSection,
    MatchedSubscription,
    MessageLinks,
    Recipient,
    RecipientKind,
)

DATA = Path(__file__).parent / "data" / "papers.jsonl"
ADDRESS = "reader@example.org"
LINKS = MessageLinks(
    unsubscribe_all="https://bell.example.org/u/all?t=eyJ1IjoxfQ.c2lnbmF0dXJl",
    unsubscribe_mailto="mailto:unsubscribe@bell.example.org?subject=unsubscribe%20eyJ1IjoxfQ",
)
_NAMES = (
    "Ana García", "Jürgen Weiß", "Mei Chen", "Olusegun Adeyemi", "Priya Raman",
    "Tomás Novák", "Sara Lindqvist", "Kenji Watanabe", "Léa Dubois", "Omar Haddad",
)  # fmt: skip
_CATEGORIES = (("cs.CV", "cs.LG"), ("cs.CL",), ("cs.LG", "stat.ML"), ("quant-ph",))


@cache
def corpus() -> tuple[Paper, ...]:
    papers = []
    for number, line in enumerate(DATA.read_text(encoding="utf-8").splitlines()):
        papers.append(_paper(number, json.loads(line)))
    return tuple(papers)


def _paper(number: int, row: dict[str, Any]) -> Paper:
    key = f"2411.{10000 + number:05d}"
    # The corpus records only how many authors a paper has; names are made up from a pool.
    count = int(row.get("authors") or number % 8 + 1)
    authors = [_NAMES[(number + i) % len(_NAMES)] for i in range(count)]
    return Paper(
        key=key,
        title=str(row["title"]),
        abstract=str(row.get("abstract", "")),
        authors=tuple(str(a) for a in authors),
        categories=_CATEGORIES[number % len(_CATEGORIES)],
        links=Links(
            abs=f"https://arxiv.org/abs/{key}",
            pdf=f"https://arxiv.org/pdf/{key}",
            hf=f"https://huggingface.co/papers/{key}",
            code=f"https://github.com/example/repo{number}" if number % 3 == 0 else None,
        ),
        upvotes=int(row.get("upvotes") or number % 50),
        sources=("hf",),
    )


def recipient(address: str = ADDRESS) -> Recipient:
    return Recipient(kind=RecipientKind.USER, owner_id=1, channel=Channel.EMAIL, address=address)


def subscription(sub_id: int, query: str, words: Sequence[str] = ()) -> MatchedSubscription:
    return MatchedSubscription(
        sub_id=sub_id,
        query=query,
        words=tuple(words),
        unsubscribe_url=f"https://bell.example.org/u/sub/{sub_id}?t=c2ln{sub_id}",
    )


def item(paper: Paper, *subs: MatchedSubscription, score: float = 1.0) -> AlertItem:
    return AlertItem(paper=paper, subscriptions=subs, score=score)


def alert_message(
    papers: Sequence[Paper], *, key: str = "alert:1:cycle-7", to: Recipient | None = None
) -> AlertMessage:
    sub = subscription(1, "language models", ["language", "models"])
    items = tuple(item(p, sub, score=float(len(papers) - i)) for i, p in enumerate(papers))
    return AlertMessage(key=key, recipient=to or recipient(), items=items, links=LINKS)


def digest_message(
    papers: Sequence[Paper],
    *,
    key: str = "digest:1:2024-11-22",
    sections: int = 2,
    more: int = 0,
    notes: Sequence[str] = (),
    to: Recipient | None = None,
) -> DigestMessage:
    """Papers dealt round-robin into ``sections`` subscriptions."""
    built = []
    for index in range(sections):
        sub = subscription(index + 1, f"query {index + 1} models", ["models", "model"])
        chunk = papers[index::sections]
        items = tuple(item(p, sub, score=float(len(chunk) - i)) for i, p in enumerate(chunk))
        built.append(DigestSection(subscription=sub, items=items))
    return DigestMessage(
        key=key,
        recipient=to or recipient(),
        local_date=date(2024, 11, 22),
        sections=tuple(built),
        more=more,
        source_notes=tuple(notes),
        links=LINKS,
    )


def confirmation_message(key: str = "confirm:1") -> ConfirmationMessage:
    return ConfirmationMessage(
        key=key,
        address=ADDRESS,
        code="048213",
        confirm_url="https://bell.example.org/confirm?t=eyJjIjoxfQ.c2ln",
    )


def with_title(paper: Paper, title: str) -> Paper:
    return replace(paper, title=title)


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(msg: EmailMessage) -> tuple[str, str]:
    """The decoded text and HTML parts."""
    text_part = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    assert text_part is not None
    assert html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    assert isinstance(text, str)
    assert isinstance(html, str)
    return text, html
