"""Mail bytes stay what they were: rendering the shared paper block once per paper, or
the papers listed by title once per title, must not change one byte of any message
(tests/data/mail_sha256.json was written by the renderer that rendered every block per
reader, with every paper of a digest in full: ``digest_full_papers`` past any digest's
size, and written again when bodies went as 8-bit text instead of quoted-printable, each
message checked to decode to the same headers and parts as before; ``--write`` is only
for a deliberate change of the templates or the encoding)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import TypeVar

from bot.messages import AlertItem, AlertMessage, DigestMessage, FeedbackLinks
from bot.settings import EmailSettings, SmtpSettings
from handlers.email.headers import POLICY
from handlers.email.render import Renderer
from tests.support_email import alert_message, corpus, digest_message, recipient, subscription

EXPECTED = Path(__file__).parent / "data" / "mail_sha256.json"
M = TypeVar("M", AlertMessage, DigestMessage)
AT = datetime(2024, 11, 22, 8, 0, tzinfo=UTC)


def _reader(n: int, message: M) -> M:
    """Reader ``n``'s own tail: their queries, feedback links and reasons on some papers."""
    sub = subscription(n, f"reader {n} query", ["models", "learning", "graph"][: n % 4])

    def own(item: AlertItem) -> AlertItem:
        links = FeedbackLinks(
            f"https://b.example.org/l/{n}/{item.paper.key}", f"https://b.example.org/d/{n}"
        )
        return replace(
            item,
            subscriptions=(*item.subscriptions, sub) if n % 2 else item.subscriptions,
            because=f"close to paper {n}" if n % 3 == 0 else "",
            feedback=links if n % 2 == 0 else None,
        )

    to = recipient(f"reader{n}@example.org")
    if isinstance(message, AlertMessage):
        return replace(message, recipient=to, items=tuple(own(i) for i in message.items))
    sections = tuple(replace(s, items=tuple(own(i) for i in s.items)) for s in message.sections)
    return replace(message, recipient=to, sections=sections)


def messages(email: EmailSettings | None = None) -> list[bytes]:
    papers = corpus()
    renderer = Renderer(
        SmtpSettings(host="127.0.0.1", from_address="bell@example.org"),
        email or EmailSettings(digest_full_papers=500),
        clock=lambda: AT,
    )
    out = []
    for n in range(12):
        chosen = papers[n * 3 : n * 3 + 4 + n]  # overlapping: papers shared between readers
        out.append(renderer.alerts_bytes(_reader(n, alert_message(chosen, key=f"alert:{n}"))))
        digest = digest_message(papers[n : n + 9 + n], key=f"digest:{n}", sections=1 + n % 3)
        out.append(renderer.digest_bytes(_reader(n, digest)))
    return out


def digests(data: list[bytes]) -> list[str]:
    return [hashlib.sha256(m).hexdigest() for m in data]


def test_every_message_is_byte_for_byte_as_before() -> None:
    data = messages()
    expected = json.loads(EXPECTED.read_text())
    assert digests(data) == expected
    assert digests(messages()) == expected  # again, from the caches


def test_a_digest_shows_its_best_in_full_and_lists_the_rest_by_title() -> None:
    """By default a digest is the same mail up to ``digest_full_papers`` papers; past
    them, the others are listed by title and link, like an alert's."""
    full, default = messages(), messages(EmailSettings(digest_full_papers=10))
    cut = 0
    for was, now in list(zip(full, default, strict=True))[1::2]:  # the digests
        before, after = _text(was), _text(now)
        papers = set(re.findall(r"https://arxiv\.org/abs/\S+", before))
        assert set(re.findall(r"https://arxiv\.org/abs/\S+", after)) == papers
        if len(papers) <= 10:
            assert now == was
            continue
        cut += 1
        assert after.count("PDF: ") <= 10 < before.count("PDF: ")
        assert len(now) < len(was)
    assert cut >= 5


def _text(mail: bytes) -> str:
    body = message_from_bytes(mail, policy=POLICY).get_body(("plain",))
    assert body is not None
    return str(body.get_content())


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    EXPECTED.write_text(json.dumps(digests(messages()), indent=1) + "\n")
