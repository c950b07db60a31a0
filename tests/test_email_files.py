"""The file outbox, the notifier factory, and the Notifier contract for both email notifiers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.delivery.notifier import Channel, Recipient, RecipientKind
from bot.errors import ChannelDownError
from bot.settings import EmailSettings, Settings, SmtpSettings
from bot.text import html_to_text
from handlers.email.files import FileNotifier, eml_name
from handlers.email.notifier import build_email_notifier
from handlers.email.smtp import SmtpNotifier
from tests.notifier_contract import Delivered, Harness, NotifierContract
from tests.smtp_server import SmtpTestServer
from tests.support_email import alert_message, bodies, corpus, digest_message, parse, recipient


def test_the_factory_picks_by_host(tmp_path: Path) -> None:
    files = build_email_notifier(Settings(data_dir=tmp_path))
    assert isinstance(files, FileNotifier)
    assert files.outbox_dir == tmp_path / "outbox"
    smtp = build_email_notifier(
        Settings(data_dir=tmp_path, smtp=SmtpSettings(host="127.0.0.1", ehlo_name="a.example"))
    )
    assert isinstance(smtp, SmtpNotifier)


# --- the file outbox -------------------------------------------------------------------------


async def test_file_notifier_writes_parseable_eml(tmp_path: Path) -> None:
    notifier = FileNotifier(tmp_path / "outbox")
    message = digest_message(corpus()[:4])
    await notifier.send_digest(message)
    await notifier.send_digest(message)  # a retry overwrites, it does not duplicate
    [path] = (tmp_path / "outbox").iterdir()
    assert path.name == eml_name(message.key)
    parsed = parse(path.read_bytes())
    assert parsed["Subject"].startswith("paperbell digest")
    text, html = bodies(parsed)
    assert f"PDF: {corpus()[0].links.pdf}" in text
    assert "<html" in html


def test_eml_names_are_safe_and_distinct() -> None:
    names = {eml_name(k) for k in ("../../etc/passwd", "a:b", "a_b", "a/b", "")}
    assert len(names) == 5
    assert all("/" not in n and not n.startswith(".") and n.endswith(".eml") for n in names)


async def test_an_unwritable_outbox_stops_the_channel(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(ChannelDownError, match="cannot write"):
        await FileNotifier(blocker).send_alerts(alert_message(corpus()[:1]))


# --- the Notifier contract, for both email notifiers -----------------------------------------


def _delivered(data: bytes) -> Delivered:
    parsed = parse(data)
    _, html = bodies(parsed)
    return Delivered(text=html_to_text(html), identity=str(parsed["Message-ID"]))


DISCORD_USER = Recipient(kind=RecipientKind.USER, owner_id=1, channel=Channel.DISCORD, address="1")


class TestEmailNotifierContract(NotifierContract):
    @pytest.fixture(params=["smtp", "file"])
    async def harness(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[Harness]:
        if request.param == "file":
            outbox = tmp_path / "outbox"
            files = FileNotifier(outbox)

            async def read_files() -> list[Delivered]:
                paths = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
                return [_delivered(p.read_bytes()) for p in paths]

            async def block_outbox() -> None:
                outbox.mkdir(exist_ok=True)
                outbox.rename(tmp_path / "moved")
                outbox.write_text("not a directory")

            yield Harness(files, read_files, block_outbox, recipient(), DISCORD_USER)
            return
        async with SmtpTestServer() as smtp_server:
            smtp = SmtpNotifier(smtp_server.settings(), EmailSettings())

            async def read_smtp() -> list[Delivered]:
                return [_delivered(got.data) for got in smtp_server.received]

            yield Harness(smtp, read_smtp, smtp_server.close, recipient(), DISCORD_USER)
            await smtp.close()
