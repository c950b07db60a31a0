"""An in-process aiosmtpd server for tests, with faults to inject.

It runs in the test's own event loop (``loop.create_server`` on 127.0.0.1, port 0), so no
thread or process is involved and nothing leaks between tests::

    async with SmtpTestServer() as server:
        server.faults = Faults(rcpt={"*": "550 5.1.1 No such user"})
        notifier = SmtpNotifier(server.settings(), EmailSettings())
        ...
        server.received  # what was accepted, envelope and parsed message

TLS needs a certificate: ``self_signed_cert`` makes one with the ``openssl`` command (the
``cryptography`` package is not a dependency) or returns None when openssl is missing.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bot.settings import SmtpSettings
from tests.support_email import parse

CLIENT_NAME = "client.example.org"


@dataclass
class Faults:
    """What the server does wrong. Replies are full SMTP lines, e.g. ``451 4.3.0 Later``."""

    mail: str | None = None  # reply to MAIL FROM
    rcpt: dict[str, str] = field(default_factory=dict)  # address or "*" -> reply to RCPT
    data: str | None = None  # reply after the whole message was received
    disconnect_in_data: bool = False  # hang up after the first line of message data
    stall_in_data: bool = False  # receive the message, then never answer


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    ehlo: str  # the name the client gave in EHLO/HELO
    tls: bool  # whether the session was encrypted
    mail_options: tuple[str, ...] = ()  # e.g. BODY=8BITMIME

    @property
    def message(self) -> EmailMessage:
        return parse(self.data)


def _encrypted(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _Handler:
    def __init__(self, owner: SmtpTestServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.owner.faults.mail:
            return self.owner.faults.mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.owner.eight_bit_mime:
            return responses
        return [line for line in responses if "8BITMIME" not in line]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        rcpt = self.owner.faults.rcpt
        reply = rcpt.get(address) or rcpt.get("*")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        faults = self.owner.faults
        if faults.stall_in_data:
            await asyncio.Event().wait()  # cancelled when the client gives up and hangs up
        content = envelope.original_content or b""
        got = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=content,
            ehlo=str(session.host_name),
            tls=_encrypted(server),
            mail_options=tuple(envelope.mail_options),
        )
        if faults.data:
            self.owner.refused.append(got)
            return faults.data
        self.owner.received.append(got)
        return f"250 2.0.0 OK queued as {len(self.owner.received)}"


class _FaultySMTP(SMTP):
    """aiosmtpd's protocol, counting connections and able to hang up inside DATA."""

    def __init__(self, owner: SmtpTestServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), **kwargs)
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again on the same connection
        super().connection_made(transport)
        if first:
            self.owner.connections += 1
            self.owner.live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.owner.live.discard(self)
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        if self.owner.faults.disconnect_in_data and self.envelope and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # some of the message, not all of it
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class SmtpTestServer:
    """A loopback SMTP server; ``starttls``/``implicit_tls`` take a server SSL context."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        data_size_limit: int | None = None,  # aiosmtpd answers "552 Too much mail data" past it
        port: int = 0,
        eight_bit_mime: bool = True,  # False: a server that takes 7-bit bodies only
    ) -> None:
        self.faults = Faults()
        self.eight_bit_mime = eight_bit_mime
        self.data_size_limit = data_size_limit
        self.received: list[Received] = []
        self.refused: list[Received] = []  # messages received, then answered with faults.data
        self.connections = 0
        self.live: set[_FaultySMTP] = set()
        self.port = port  # 0: any free port
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SmtpTestServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, "127.0.0.1", self.port, ssl=self._implicit_tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening and hang up; later connections are refused. Idempotent."""
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _protocol(self) -> _FaultySMTP:
        return _FaultySMTP(
            self,
            hostname="smtp.test",
            tls_context=self._starttls,
            authenticator=self._authenticate if self._credentials else None,
            auth_require_tls=False,  # test-only: lets AUTH be tried on a plain connection
            loop=asyncio.get_running_loop(),
            **({"data_size_limit": self.data_size_limit} if self.data_size_limit else {}),
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False)  # let aiosmtpd send the 235/535

    def drop_connections(self) -> None:
        """Hang up on every client, as a server's idle timeout would."""
        for protocol in list(self.live):
            if protocol.transport is not None:
                protocol.transport.close()

    def settings(self, **overrides: Any) -> SmtpSettings:
        """Client settings pointing here: plain SMTP unless overridden."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "ehlo_name": CLIENT_NAME,
            "from_address": "bell@example.org",
            "timeout": 5.0,
        }
        return SmtpSettings(**(values | overrides))


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """(cert, key) for 127.0.0.1 made with openssl, or None when openssl is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    """Trusts exactly the test certificate, with hostname checking left on."""
    return ssl.create_default_context(cafile=str(cert))
