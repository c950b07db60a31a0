"""Send rendered mail over SMTP through a few reused connections.

Security is explicit: ``starttls`` upgrades or fails (aiosmtplib's ``start_tls=None`` would
quietly carry on in plain text when the server does not offer it), ``tls`` is implicit TLS,
``none`` is plain. Errors become the ``bot.errors`` delivery tree: 4xx replies, disconnects
and timeouts are transient, 5xx replies are permanent, and what breaks the whole channel
(login refused, no STARTTLS, a server refusing us outright) is ``ChannelDownError``. A
server that cannot be reached at all (connection refused, DNS, a connect timeout) is
``ChannelUnreachableError``: mail waits, pending, and the next dispatch tries again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectResponseError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from bot.errors import (
    ChannelDownError,
    ChannelUnreachableError,
    ConfigError,
    DeliveryError,
    MessageTooLargeError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from bot.settings import EmailSettings, SmtpSettings
from handlers.email.base import EmailNotifier
from handlers.email.headers import seven_bit
from handlers.email.render import Renderer

logger = logging.getLogger(__name__)

# 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed: the address
# itself is bad. Other 5xx (552 over quota, 554 policy) are permanent for this message only.
_UNREACHABLE_CODES = frozenset({550, 551, 553})
# A refusal for size (retried as smaller messages) against one for a full mailbox (not).
_SIZE_RE = re.compile(
    r"size|too (?:large|big|long)|exceed|too much (?:mail )?data|\b5\.3\.4\b", re.I
)
_QUOTA_RE = re.compile(r"quota|mailbox (?:is )?full|storage|insufficient|\b5\.2\.2\b", re.I)
_QUIT_TIMEOUT = 5.0
_REPLY_CHARS = 300


@dataclass(frozen=True, slots=True)
class SendResult:
    """One SMTP transaction: who was accepted, who was refused (with the reply)."""

    accepted: tuple[str, ...]
    refused: Mapping[str, SMTPResponse] = field(default_factory=dict)
    response: str = ""  # the server's reply to DATA, often with its queue id


def resolve_ehlo_name(smtp: SmtpSettings) -> tuple[str, str | None]:
    """The EHLO name to use and, when it will hurt deliverability, a warning to log."""
    name = smtp.ehlo_name.strip() or socket.getfqdn()
    if not name.isascii() or any(c.isspace() for c in name):
        raise ConfigError(f"PAPERBELL_SMTP__EHLO_NAME: {name!r} is not a valid host name")
    if name.lower().startswith("localhost") or "." not in name:
        return name, (
            f"SMTP EHLO name {name!r} is not a fully qualified domain name; many servers "
            "score or refuse such mail. Set PAPERBELL_SMTP__EHLO_NAME to this host's name."
        )
    return name, None


def _clean(text: str) -> str:
    return " ".join(text.split())[:_REPLY_CHARS]


def _stage(exc: SMTPResponseException) -> str:
    stages: tuple[tuple[type[SMTPResponseException], str], ...] = (
        (SMTPSenderRefused, "MAIL FROM"),
        (SMTPRecipientRefused, "RCPT TO"),
        (SMTPDataError, "DATA"),
        (SMTPConnectResponseError, "connect"),
        (SMTPHeloError, "EHLO"),
    )
    return next((name for kind, name in stages if isinstance(exc, kind)), "command")


def reply_error(code: int, text: str, stage: str) -> DeliveryError:
    """The delivery error for one SMTP reply at one stage of the conversation."""
    detail = f"SMTP {code} at {stage}: {_clean(text)}"
    in_transaction = stage in ("MAIL FROM", "RCPT TO", "DATA")
    if 400 <= code < 500:
        return TransientDeliveryError(detail)
    if 500 <= code < 600 and not in_transaction:
        return ChannelDownError(f"the SMTP server refuses us: {detail}")
    if _about_size(code, text, stage):
        return MessageTooLargeError(f"{detail} (the message is too large for the server)")
    if 500 <= code < 600:
        unreachable = stage == "RCPT TO" and code in _UNREACHABLE_CODES
        return PermanentDeliveryError(detail, recipient_unreachable=unreachable)
    return TransientDeliveryError(f"unexpected {detail}")


def _about_size(code: int, text: str, stage: str) -> bool:
    """552/554 to MAIL FROM or DATA that is about the message's size, not a full mailbox."""
    if code not in (552, 554) or stage not in ("MAIL FROM", "DATA") or _QUOTA_RE.search(text):
        return False
    return bool(_SIZE_RE.search(text)) or (code == 552 and stage == "DATA")


def delivery_error(exc: BaseException) -> DeliveryError:
    """Map an aiosmtplib or socket error; messages carry code and text, never credentials."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SMTPAuthenticationError):
        return ChannelDownError(f"SMTP login refused: {exc.code} {_clean(exc.message)}")
    if isinstance(exc, SMTPResponseException):
        return reply_error(exc.code, exc.message, _stage(exc))
    tls = _tls_failure(exc)
    if tls is not None:  # a configuration problem, not a network hiccup: do not retry it
        return ChannelDownError(f"TLS with the SMTP server failed: {tls}")
    if isinstance(exc, OSError | TimeoutError):  # disconnects, refused connections, timeouts
        return TransientDeliveryError(f"SMTP connection problem: {_clean(str(exc))}")
    # SMTPException without a reply: AUTH or SMTPUTF8 not offered, TLS misconfigured.
    return ChannelDownError(f"SMTP error: {_clean(str(exc))}")


def _tls_failure(exc: BaseException) -> str | None:
    """What went wrong in TLS (untrusted certificate, no TLS on the port), if that was it.

    A connection closed mid-handshake (``SSLEOFError``) is an ordinary disconnect.
    """
    for candidate in (exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return "certificate not trusted: " + _clean(candidate.verify_message or "")
        if isinstance(candidate, ssl.SSLError) and not isinstance(
            candidate, ssl.SSLEOFError | ssl.SSLZeroReturnError
        ):
            return _clean(str(candidate.reason or candidate))
    return None


def raise_for_refusal(result: SendResult, address: str) -> None:
    """Raise what a refusal of ``address`` in ``result`` means; nothing if it was accepted."""
    reply = result.refused.get(address)
    if reply is not None:
        raise reply_error(reply.code, reply.message, "RCPT TO")
    if address not in result.accepted:
        raise PermanentDeliveryError(f"{address} was not part of the SMTP transaction")


async def _mail(client: SMTP, sender: str, payload: bytes) -> bytes:
    """``MAIL FROM`` accepted; the payload to send over this connection: an 8-bit one goes
    as it is with ``BODY=8BITMIME`` where the server offers it (RFC 6152), else re-encoded
    as quoted-printable."""
    try:
        options: tuple[str, ...] = ()
        if not payload.isascii():
            await _greet(client)
            if client.supports_extension("8bitmime"):
                options = ("BODY=8BITMIME",)
            else:
                payload = seven_bit(payload)
        await client.mail(sender, options=options)
    except BaseException:
        client.close()
        raise
    return payload


async def _greet(client: SMTP) -> None:
    """EHLO (HELO if refused) once per connection, so its extensions are known before MAIL."""
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except SMTPHeloError:
            await client.helo()


async def _reset(client: SMTP) -> None:
    """End a transaction with no accepted recipient so the connection stays usable."""
    try:
        await client.rset()
    except (SMTPException, OSError, TimeoutError):
        client.close()  # not reusable; the refusals we already have are the answer


async def _quit(client: SMTP) -> None:
    try:
        await client.quit(timeout=_QUIT_TIMEOUT)
    except (SMTPException, OSError, TimeoutError):
        # Shutting down: a server that already hung up has nothing left to tell us.
        client.close()


class SmtpTransport:
    """Up to ``smtp.connections`` concurrent transactions over reused connections.

    Safe for any number of concurrent senders: each waits for a free connection, and a
    connection carries one transaction at a time (taken from the idle pool, put back after).
    """

    def __init__(
        self,
        smtp: SmtpSettings,
        *,
        ehlo_name: str,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._smtp = smtp
        self._ehlo_name = ehlo_name
        self._tls_context = tls_context  # None: the system's trust store, verified
        self._idle: list[SMTP] = []
        self.connections = smtp.connections
        self._slots = asyncio.Semaphore(smtp.connections)
        self._closed = False
        self.connections_opened = 0

    async def send(self, sender: str, recipients: Sequence[str], payload: bytes) -> SendResult:
        if self._closed:
            raise ChannelDownError("the SMTP notifier is closed")
        try:
            async with self._slots:
                client, payload = await self._start(sender, payload)
                try:
                    result = await self._finish(client, recipients, payload)
                except BaseException:
                    client.close()
                    raise
                self._release(client, result)
                return result
        except (SMTPException, OSError, TimeoutError) as exc:
            raise delivery_error(exc) from exc

    async def close(self) -> None:
        """QUIT every idle connection; idempotent. Busy ones close when they finish."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client in idle))

    async def _start(self, sender: str, payload: bytes) -> tuple[SMTP, bytes]:
        """A connection with ``MAIL FROM`` accepted, and the payload to send over it."""
        client, reused = await self._checkout()
        try:
            return client, await _mail(client, sender, payload)
        except SMTPServerDisconnected:
            if not reused:
                raise
            # The server closed this pooled connection while it sat idle. Nothing of this
            # message was sent yet, so one retry on a fresh connection cannot duplicate it.
            client = await self._open()
            return client, await _mail(client, sender, payload)

    @staticmethod
    async def _finish(client: SMTP, recipients: Sequence[str], payload: bytes) -> SendResult:
        refused: dict[str, SMTPResponse] = {}
        for address in recipients:
            try:
                await client.rcpt(address)
            except SMTPRecipientRefused as exc:
                refused[address] = SMTPResponse(exc.code, exc.message)
        accepted = tuple(a for a in recipients if a not in refused)
        if not accepted:
            await _reset(client)
            return SendResult(accepted=(), refused=refused)
        response = await client.data(payload)
        return SendResult(accepted=accepted, refused=refused, response=response.message)

    async def _checkout(self) -> tuple[SMTP, bool]:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
            client.close()
        return await self._open(), False

    def _release(self, client: SMTP, result: SendResult) -> None:
        # 421 means the server is closing this connection whatever else it said.
        closing = any(reply.code == 421 for reply in result.refused.values())
        if self._closed or closing or not client.is_connected:
            client.close()
        else:
            self._idle.append(client)

    async def _open(self) -> SMTP:
        smtp = self._smtp
        client = SMTP(
            hostname=smtp.host,
            port=smtp.port,
            local_hostname=self._ehlo_name,
            timeout=smtp.timeout,
            use_tls=smtp.security == "tls",
            start_tls=False,  # never the library's "if offered": see _starttls
            tls_context=self._tls_context,
        )
        try:
            await self._connect(client)
            if smtp.security == "starttls":
                await self._starttls(client)
            if smtp.username:
                await client.login(smtp.username, smtp.password.get_secret_value())
        except BaseException:
            client.close()
            raise
        self.connections_opened += 1
        return client

    async def _connect(self, client: SMTP) -> None:
        try:
            await client.connect()
        except SMTPResponseException:
            raise  # it answered: reply_error says what the reply means
        except (SMTPException, OSError, TimeoutError) as exc:
            if _tls_failure(exc) is not None:
                raise
            where = f"{self._smtp.host}:{self._smtp.port}"
            raise ChannelUnreachableError(
                f"cannot reach the SMTP server {where}: {_clean(str(exc))}"
            ) from exc

    async def _starttls(self, client: SMTP) -> None:
        await client.ehlo()
        if not client.supports_extension("starttls"):
            raise ChannelDownError(
                f"SMTP server {self._smtp.host}:{self._smtp.port} does not offer STARTTLS and "
                "PAPERBELL_SMTP__SECURITY is 'starttls': refusing to send in plain text "
                "(use 'tls' for implicit TLS on port 465, 'none' only for a trusted relay)"
            )
        await client.starttls()


class SmtpNotifier(EmailNotifier):
    """Email over SMTP. ``tls_context`` is for tests (trust a self-signed CA)."""

    def __init__(
        self,
        smtp: SmtpSettings,
        email: EmailSettings,
        *,
        tls_context: ssl.SSLContext | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        if not smtp.host:
            raise ConfigError("PAPERBELL_SMTP__HOST is empty: there is no SMTP server to use")
        super().__init__(renderer or Renderer(smtp, email))
        ehlo_name, self.ehlo_warning = resolve_ehlo_name(smtp)
        if self.ehlo_warning:
            logger.warning("%s", self.ehlo_warning)  # once, at startup
        self._sender = smtp.from_address
        self.transport = SmtpTransport(smtp, ehlo_name=ehlo_name, tls_context=tls_context)

    @property
    def concurrency(self) -> int:
        """Senders worth running at once: two per pooled connection (``smtp.connections``),
        so one message is rendered while another is on the wire, and the dispatcher
        writes 'sent' for the messages that finish together in one transaction. More
        would only queue for a connection; the notifier is safe to call from any number.
        """
        return 2 * self.transport.connections

    async def _deliver(self, key: str, payload: bytes, address: str) -> None:
        result = await self.transport.send(self._sender, [address], payload)
        raise_for_refusal(result, address)

    async def close(self) -> None:
        await self.transport.close()
