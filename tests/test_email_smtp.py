"""The email notifiers against a real in-process aiosmtpd server and a real directory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.errors import (
    ChannelDownError,
    ChannelUnreachableError,
    ConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from bot.settings import EmailSettings, SmtpSettings
from handlers.email.smtp import SmtpNotifier, SmtpTransport, raise_for_refusal
from tests.smtp_server import (
    CLIENT_NAME,
    Faults,
    SmtpTestServer,
    client_context,
    self_signed_cert,
    server_context,
)
from tests.support_email import (
    ADDRESS,
    alert_message,
    bodies,
    confirmation_message,
    corpus,
    digest_message,
    with_title,
)

NotifierFactory = Callable[..., SmtpNotifier]


@pytest.fixture
async def server() -> AsyncIterator[SmtpTestServer]:
    async with SmtpTestServer() as smtp_server:
        yield smtp_server


@pytest.fixture
async def make_notifier(server: SmtpTestServer) -> AsyncIterator[NotifierFactory]:
    made: list[SmtpNotifier] = []

    def make(**overrides: object) -> SmtpNotifier:
        notifier = SmtpNotifier(server.settings(**overrides), EmailSettings())
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        await notifier.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = self_signed_cert(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip(
            "the openssl command is not installed (Debian package openssl): "
            "cannot make a test certificate"
        )
    return made


# --- delivery --------------------------------------------------------------------------------


async def test_digest_is_delivered_to_the_recipient(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    message = digest_message(corpus()[:6])
    await make_notifier().send_digest(message)
    [got] = server.received
    assert got.mail_from == "bell@example.org"
    assert got.rcpt_tos == (ADDRESS,)
    assert got.ehlo == CLIENT_NAME
    assert got.message["To"] == ADDRESS
    assert got.message["Subject"].startswith("paperbell digest · Fri 22 Nov · 6 papers")
    text, _ = bodies(got.message)
    assert "PDF: https://arxiv.org/pdf/2411.10000" in text


async def test_confirmation_is_delivered(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    await make_notifier().send_confirmation(confirmation_message())
    [got] = server.received
    assert "048213" in got.message["Subject"]


@pytest.mark.parametrize("eight_bit_mime", [True, False], ids=["8bitmime", "7bit-only"])
async def test_non_ascii_mail_goes_8bit_only_to_a_server_that_offers_8bitmime(
    eight_bit_mime: bool,
) -> None:
    papers = [
        with_title(corpus()[0], "Gödel, Escher and Büchi automata — a survey"),
        *corpus()[1:3],
    ]
    async with SmtpTestServer(eight_bit_mime=eight_bit_mime) as server:
        notifier = SmtpNotifier(server.settings(), EmailSettings())
        await notifier.send_alerts(alert_message(papers))
        await notifier.close()
        transport = SmtpTransport(server.settings(), ehlo_name=CLIENT_NAME)
        await transport.send("bell@example.org", [ADDRESS], b"Subject: hi\r\n\r\nplain\r\n")
        await transport.close()
    alert, ascii_only = server.received
    assert alert.data.isascii() is not eight_bit_mime
    assert alert.mail_options == (("BODY=8BITMIME",) if eight_bit_mime else ())
    parts = list(alert.message.iter_parts())
    encoding = "8bit" if eight_bit_mime else "quoted-printable"
    assert [part["Content-Transfer-Encoding"] for part in parts] == [encoding, encoding]
    text, html = bodies(alert.message)
    assert "1. Gödel, Escher and Büchi automata — a survey" in text
    assert "Gödel, Escher and Büchi automata — a survey</a>" in html
    assert max(len(line) for line in alert.data.split(b"\r\n")) <= 998
    # An ASCII message needs no 8BITMIME, whatever the server offers.
    assert ascii_only.data == b"Subject: hi\r\n\r\nplain\r\n"
    assert ascii_only.mail_options == ()


async def test_both_encodings_carry_the_same_mail(server: SmtpTestServer) -> None:
    papers = [with_title(corpus()[0], "Étude of naïve Bayes"), *corpus()[1:3]]
    plain = SmtpTestServer(eight_bit_mime=False)
    async with plain:
        for target in (server, plain):
            notifier = SmtpNotifier(target.settings(), EmailSettings())
            await notifier.send_alerts(alert_message(papers))
            await notifier.close()
    [eight], [seven] = server.received, plain.received
    assert bodies(eight.message) == bodies(seven.message)
    assert [eight.message[h] for h in ("Subject", "Message-ID", "List-Unsubscribe")] == [
        seven.message[h] for h in ("Subject", "Message-ID", "List-Unsubscribe")
    ]


# --- faults ----------------------------------------------------------------------------------

TRANSIENT_FAULTS = [
    pytest.param(Faults(mail="421 4.3.2 Service closing"), id="421-mail"),
    pytest.param(Faults(rcpt={"*": "421 4.3.2 Service closing"}), id="421-rcpt"),
    pytest.param(Faults(mail="451 4.3.0 Local error, try later"), id="451-mail"),
    pytest.param(Faults(rcpt={"*": "451 4.7.1 Greylisted, try later"}), id="451-rcpt"),
    pytest.param(Faults(data="451 4.3.0 Local error in processing"), id="451-data"),
    pytest.param(Faults(rcpt={"*": "452 4.2.2 Insufficient storage"}), id="452-rcpt"),
    pytest.param(Faults(data="452 4.3.1 Insufficient system storage"), id="452-data"),
]


@pytest.mark.parametrize("faults", TRANSIENT_FAULTS)
async def test_4xx_replies_are_transient(
    server: SmtpTestServer, make_notifier: NotifierFactory, faults: Faults
) -> None:
    server.faults = faults
    notifier = make_notifier()
    with pytest.raises(TransientDeliveryError) as caught:
        await notifier.send_digest(digest_message(corpus()[:3]))
    code = (faults.mail or faults.data or faults.rcpt["*"])[:3]
    assert f"SMTP {code}" in str(caught.value)
    assert server.received == []
    server.faults = Faults()  # the server recovers: the same notifier delivers again
    await notifier.send_digest(digest_message(corpus()[:3]))
    assert len(server.received) == 1


async def test_550_on_rcpt_is_permanent_and_marks_recipient_unreachable(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    server.faults = Faults(rcpt={ADDRESS: "550 5.1.1 Mailbox unavailable"})
    with pytest.raises(PermanentDeliveryError) as caught:
        await make_notifier().send_alerts(alert_message(corpus()[:2]))
    assert caught.value.recipient_unreachable
    assert "SMTP 550 at RCPT TO: 5.1.1 Mailbox unavailable" in caught.value.reason
    assert server.received == []


@pytest.mark.parametrize(
    ("faults", "stage"),
    [
        (Faults(data="554 5.7.1 Message rejected as spam"), "DATA"),
        (Faults(mail="553 5.7.1 Sender not allowed"), "MAIL FROM"),
        (Faults(rcpt={"*": "552 5.2.2 Mailbox full"}), "RCPT TO"),
    ],
)
async def test_other_5xx_are_permanent_without_blaming_the_address(
    server: SmtpTestServer, make_notifier: NotifierFactory, faults: Faults, stage: str
) -> None:
    server.faults = faults
    with pytest.raises(PermanentDeliveryError) as caught:
        await make_notifier().send_alerts(alert_message(corpus()[:2]))
    assert not caught.value.recipient_unreachable
    assert f"at {stage}" in caught.value.reason


async def test_disconnect_in_the_middle_of_data_is_transient_and_recovers(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier()
    server.faults = Faults(disconnect_in_data=True)
    with pytest.raises(TransientDeliveryError):
        await notifier.send_digest(digest_message(corpus()[:4]))
    assert server.received == []
    server.faults = Faults()
    await notifier.send_digest(digest_message(corpus()[:4]))
    assert len(server.received) == 1
    assert server.connections == 2


async def test_a_server_that_never_answers_times_out_as_transient(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    server.faults = Faults(stall_in_data=True)
    with pytest.raises(TransientDeliveryError, match="connection problem"):
        await make_notifier(timeout=0.2).send_alerts(alert_message(corpus()[:1]))


async def test_refused_connection_makes_the_channel_wait(make_notifier: NotifierFactory) -> None:
    notifier = make_notifier(port=1)  # nothing listens on port 1 of the loopback
    with pytest.raises(
        ChannelUnreachableError, match=r"cannot reach the SMTP server 127\.0\.0\.1:1"
    ):
        await notifier.send_alerts(alert_message(corpus()[:1]))


async def test_one_of_two_recipients_refused_is_read_from_the_result(
    server: SmtpTestServer,
) -> None:
    bad = "gone@example.org"
    server.faults = Faults(rcpt={bad: "550 5.1.1 No such user"})
    transport = SmtpTransport(server.settings(), ehlo_name=CLIENT_NAME)
    payload = parse_payload()
    result = await transport.send("bell@example.org", [ADDRESS, bad], payload)
    await transport.close()
    assert result.accepted == (ADDRESS,)
    assert result.refused[bad].code == 550
    assert "queued as 1" in result.response
    [got] = server.received
    assert got.rcpt_tos == (ADDRESS,)
    raise_for_refusal(result, ADDRESS)  # ours went through: nothing to raise
    with pytest.raises(PermanentDeliveryError) as caught:
        raise_for_refusal(result, bad)
    assert caught.value.recipient_unreachable


async def test_a_temporary_refusal_in_the_result_is_transient(server: SmtpTestServer) -> None:
    server.faults = Faults(rcpt={ADDRESS: "450 4.2.0 Mailbox busy"})
    transport = SmtpTransport(server.settings(), ehlo_name=CLIENT_NAME)
    result = await transport.send("bell@example.org", [ADDRESS], parse_payload())
    assert result.accepted == ()
    assert server.received == []
    with pytest.raises(TransientDeliveryError, match="SMTP 450 at RCPT TO"):
        raise_for_refusal(result, ADDRESS)
    # Nothing was accepted, so the transaction was reset and the connection kept.
    server.faults = Faults()
    await transport.send("bell@example.org", [ADDRESS], parse_payload())
    await transport.close()
    assert server.connections == 1


def parse_payload() -> bytes:
    return b"From: bell@example.org\r\nTo: reader@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


# --- TLS and login ---------------------------------------------------------------------------


async def test_starttls_required_but_not_offered_fails_and_sends_nothing(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(security="starttls")
    with pytest.raises(ChannelDownError, match="does not offer STARTTLS"):
        await notifier.send_digest(digest_message(corpus()[:3]))
    assert server.received == []


async def test_starttls_happy_path(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    async with SmtpTestServer(starttls=server_context(cert, key)) as server:
        settings = server.settings(security="starttls")
        notifier = SmtpNotifier(settings, EmailSettings(), tls_context=client_context(cert))
        await notifier.send_digest(digest_message(corpus()[:3]))
        await notifier.close()
    [got] = server.received
    assert got.tls


async def test_implicit_tls_happy_path(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    async with SmtpTestServer(implicit_tls=server_context(cert, key)) as server:
        settings = server.settings(security="tls")
        notifier = SmtpNotifier(settings, EmailSettings(), tls_context=client_context(cert))
        await notifier.send_alerts(alert_message(corpus()[:1]))
        await notifier.close()
    [got] = server.received
    assert got.tls


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_an_untrusted_certificate_stops_the_channel(
    tls_files: tuple[Path, Path], security: str
) -> None:
    cert, key = tls_files
    context = server_context(cert, key)
    if security == "starttls":
        smtp_server = SmtpTestServer(starttls=context)
    else:
        smtp_server = SmtpTestServer(implicit_tls=context)
    async with smtp_server as server:
        notifier = SmtpNotifier(server.settings(security=security), EmailSettings())
        with pytest.raises(ChannelDownError, match="certificate not trusted: self-signed"):
            await notifier.send_alerts(alert_message(corpus()[:1]))
        await notifier.close()
    assert server.received == []


async def test_implicit_tls_against_a_plain_server_stops_the_channel(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    with pytest.raises(ChannelDownError, match="TLS with the SMTP server failed"):
        await make_notifier(security="tls").send_alerts(alert_message(corpus()[:1]))
    assert server.received == []


async def test_login_with_the_right_password_delivers() -> None:
    async with SmtpTestServer(credentials=("bell", "s3cret-pw")) as server:
        notifier = SmtpNotifier(
            server.settings(username="bell", password="s3cret-pw"), EmailSettings()
        )
        await notifier.send_alerts(alert_message(corpus()[:1]))
        await notifier.close()
    assert len(server.received) == 1


async def test_a_refused_login_stops_the_channel_without_leaking_the_password() -> None:
    async with SmtpTestServer(credentials=("bell", "s3cret-pw")) as server:
        notifier = SmtpNotifier(
            server.settings(username="bell", password="wrong-pw"), EmailSettings()
        )
        with pytest.raises(ChannelDownError, match="login refused: 535") as caught:
            await notifier.send_alerts(alert_message(corpus()[:1]))
        await notifier.close()
    assert "wrong-pw" not in str(caught.value)
    assert server.received == []


# --- the connection pool ---------------------------------------------------------------------


async def test_connections_are_reused_across_sends(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(connections=1)
    for number in range(5):
        await notifier.send_alerts(alert_message(corpus()[number : number + 1], key=f"k{number}"))
    assert len(server.received) == 5
    assert server.connections == 1


async def test_concurrent_sends_stay_within_the_connection_bound(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(connections=2)
    messages = [alert_message(corpus()[n : n + 1], key=f"k{n}") for n in range(8)]
    await asyncio.gather(*(notifier.send_alerts(m) for m in messages))
    assert len(server.received) == 8
    assert server.connections == 2
    assert notifier.transport.connections_opened == 2


async def test_many_concurrent_senders_each_message_arrives_once(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(connections=3)
    assert notifier.concurrency == 6  # what the dispatcher runs at once: two per connection
    messages = [alert_message(corpus()[n : n + 1], key=f"k{n}") for n in range(30)]
    await asyncio.gather(*(notifier.send_alerts(m) for m in messages))
    ids = [str(r.message["Message-ID"]) for r in server.received]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert notifier.transport.connections_opened == 3


async def test_reconnects_after_the_server_closed_the_connection(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(connections=1)
    await notifier.send_alerts(alert_message(corpus()[:1], key="before"))
    server.drop_connections()  # no await: the client still believes it is connected
    await notifier.send_alerts(alert_message(corpus()[1:2], key="after"))
    assert len(server.received) == 2
    assert server.connections == 2


async def test_close_quits_and_later_sends_are_refused(
    server: SmtpTestServer, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier()
    await notifier.send_alerts(alert_message(corpus()[:1]))
    await notifier.close()
    await notifier.close()
    with pytest.raises(ChannelDownError, match="closed"):
        await notifier.send_alerts(alert_message(corpus()[:1]))


# --- construction ----------------------------------------------------------------------------


def test_a_short_ehlo_name_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="handlers.email.smtp"):
        notifier = SmtpNotifier(SmtpSettings(host="127.0.0.1", ehlo_name="mybox"), EmailSettings())
        SmtpNotifier(SmtpSettings(host="127.0.0.1", ehlo_name="mail.example.org"), EmailSettings())
    assert [r.getMessage() for r in caplog.records] == [notifier.ehlo_warning]
    assert "'mybox' is not a fully qualified domain name" in (notifier.ehlo_warning or "")


def test_an_smtp_notifier_needs_a_host() -> None:
    with pytest.raises(ConfigError, match="PAPERBELL_SMTP__HOST"):
        SmtpNotifier(SmtpSettings(), EmailSettings())
