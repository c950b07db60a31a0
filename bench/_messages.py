"""Sample alerts and digests for the benches and the tests: fixed links, one reader.

Shared like ``_corpus`` (tests import it; it imports nothing from tests/). Builders take
the papers to put in, so any slice of either corpus flavour can be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.delivery.notifier import (
    AlertItem,
    AlertMessage,
    Channel,
    DigestMessage,
    DigestSection,
    MatchedSubscription,
    MessageLinks,
    Recipient,
    RecipientKind,
)
from bot.models import Paper

ADDRESS = "reader@example.org"
LINKS = MessageLinks(
    unsubscribe_all="https://bell.example.org/u/all?t=eyJ1IjoxfQ.c2lnbmF0dXJl",
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
