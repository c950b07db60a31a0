"""Mail stays within a size budget; a refusal for size is retried as smaller messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.errors import MessageTooLargeError, PermanentDeliveryError
from bot.models import Paper
from bot.settings import EmailSettings
from handlers.email.files import FileNotifier
from handlers.email.smtp import SmtpNotifier, reply_error
from tests.smtp_server import Faults, SmtpTestServer
from tests.support_email import alert_message, bodies, corpus, digest_message, parse

LIMIT = 30_000  # bytes of message data the test server takes


def huge(paper: Paper) -> Paper:
    """What a hostile feed sent: a 5-million-character title, a 2 MB abstract, 5000 authors."""
    return replace(
        paper,
        title="Attention " * 500_000,
        abstract="x" * 2_000_000,
        authors=tuple("Author " * 2000 + str(n) for n in range(5000)),
        categories=tuple(f"cs.{n}" for n in range(5000)),
    )


@pytest.fixture
async def server() -> AsyncIterator[SmtpTestServer]:
    async with SmtpTestServer(data_size_limit=LIMIT) as smtp_server:
        yield smtp_server


@pytest.fixture
async def notifier(server: SmtpTestServer) -> AsyncIterator[SmtpNotifier]:
    # Every paper in full, so 30 of them make a message over the server's limit.
    notifier = SmtpNotifier(server.settings(), EmailSettings(alert_full_papers=500))
    yield notifier
    await notifier.close()


def papers_in(server: SmtpTestServer) -> list[str]:
    """The arXiv links of every paper the server received, in order."""
    found = []
    for got in server.received:
        text, _ = bodies(got.message)
        found += [
            line.split()[-1] for line in text.splitlines() if line.strip().startswith("PDF: ")
        ]
    return found


async def test_one_huge_paper_goes_out_capped_with_the_others(
    server: SmtpTestServer, notifier: SmtpNotifier
) -> None:
    papers = [*corpus()[:2], huge(corpus()[2])]
    await notifier.send_alerts(alert_message(papers))
    [got] = server.received
    assert len(got.data) < 20_000
    text, _ = bodies(got.message)
    assert "Attention Attention" in text and "Attention " * 100 not in text
    assert len(papers_in(server)) == 3


async def test_a_refusal_for_size_is_retried_as_smaller_messages(
    server: SmtpTestServer, notifier: SmtpNotifier
) -> None:
    papers = corpus()[:30]  # about 65 KB as one message, over the server's 30 KB
    await notifier.send_alerts(alert_message(papers))
    assert len(server.received) >= 3
    assert all(len(got.data) <= LIMIT for got in server.received)
    assert sorted(papers_in(server)) == sorted(p.links.pdf or "" for p in papers)
    ids = {got.message["Message-ID"] for got in server.received}
    assert len(ids) == len(server.received)  # each part its own, stable Message-ID


async def test_parts_keep_their_message_ids_when_sent_again(
    server: SmtpTestServer, notifier: SmtpNotifier
) -> None:
    message = alert_message(corpus()[:30])
    for _ in range(2):
        await notifier.send_alerts(message)
    ids = [got.message["Message-ID"] for got in server.received]
    half = len(ids) // 2
    assert ids[:half] == ids[half:]


async def test_a_full_mailbox_is_not_split(server: SmtpTestServer, notifier: SmtpNotifier) -> None:
    server.faults = Faults(data="552 5.2.2 Mailbox full: quota exceeded")
    with pytest.raises(PermanentDeliveryError) as caught:
        await notifier.send_alerts(alert_message(corpus()[:4]))
    assert not isinstance(caught.value, MessageTooLargeError)
    assert server.connections == 1 and "quota" in caught.value.reason


async def test_a_server_refusing_even_one_paper_fails_with_the_reason(
    server: SmtpTestServer, notifier: SmtpNotifier
) -> None:
    server.faults = Faults(data="554 5.3.4 Message too big for system")
    with pytest.raises(MessageTooLargeError, match="too large for the server"):
        await notifier.send_alerts(alert_message(corpus()[:3]))


async def test_a_digest_over_the_budget_is_written_in_parts(tmp_path: Path) -> None:
    # Every paper in full, as a digest with a high ``digest_full_papers`` shows them.
    outbox = FileNotifier(tmp_path / "outbox", email=EmailSettings(digest_full_papers=500))
    outbox.max_bytes = 40_000
    papers = corpus()[:40]
    await outbox.send_digest(digest_message(papers, sections=3, notes=["arXiv: a holiday"]))
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) >= 3 and all(f.stat().st_size <= 40_000 for f in files)
    texts = [bodies(parse(f.read_bytes()))[0] for f in files]
    assert sum("arXiv: a holiday" in text for text in texts) == 1
    shown = [
        line for text in texts for line in text.splitlines() if line.strip().startswith("PDF: ")
    ]
    assert len(shown) == len(papers)


@pytest.mark.parametrize(
    ("code", "text", "stage", "size"),
    [
        (552, "5.3.4 Message size exceeds fixed maximum message size", "DATA", True),
        (552, "Error: Too much mail data", "DATA", True),
        (554, "5.3.4 Message too big for system", "DATA", True),
        (552, "5.2.2 Mailbox full", "DATA", False),
        (552, "Requested mail action aborted: exceeded storage allocation", "RCPT TO", False),
        (554, "5.7.1 Rejected as spam", "DATA", False),
        (552, "Message size exceeds limit", "MAIL FROM", True),
    ],
)
def test_which_refusals_are_about_size(code: int, text: str, stage: str, size: bool) -> None:
    error = reply_error(code, text, stage)
    assert isinstance(error, PermanentDeliveryError)
    assert isinstance(error, MessageTooLargeError) is size
