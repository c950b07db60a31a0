"""Message headers: the policy we serialise with, Message-ID, and the list headers.

Bodies are written as they are (``7bit``, or ``8bit`` UTF-8) whenever they can be: about
half the lines and bytes of quoted-printable, and each line is work for every SMTP hop.
A body that cannot (a line over SMTP's 998 octets, a bare CR, a NUL, or the boundary in
its text) is quoted-printable. For a server without 8BITMIME (RFC 6152) ``seven_bit``
re-encodes a message's 8-bit parts as quoted-printable.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import re
from collections.abc import Sequence
from email import message_from_bytes
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy, Policy
from urllib.parse import quote

from bot.delivery.notifier import MessageLinks
from bot.errors import PermanentDeliveryError

# Characters legal in a URI; everything else (spaces, <, >, quotes, non-ASCII) is
# percent-encoded so a link can never break out of its <...> in a header.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~-._"
_ATOM = r"[^\s@<>()\[\],;:\"\\]+"
_ADDRESS_RE = re.compile(rf"^{_ATOM}@{_ATOM}$")
_BRACKETED_RE = re.compile(r"<[^<>]*>")
_DOMAIN_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
_LINE = 78


class _UriListHeader(UnstructuredHeader, BaseHeader):
    """``List-Unsubscribe: <https://...>`` sent verbatim.

    The stdlib folder turns any token longer than the line limit (a signed link easily is)
    into RFC 2047 encoded-words, which no client decodes inside ``<...>``. The URIs are
    plain ASCII already, so fold only between them (lines stay under RFC 5322's 998).
    """

    def fold(self, *, policy: Policy) -> str:
        uris = _BRACKETED_RE.findall(str(self))
        return f"{self.name}: " + f",{policy.linesep} ".join(uris) + policy.linesep


class _Registry(HeaderRegistry):
    """The stdlib makes a new class each time it parses a header; make each one once."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made


def _build_policy() -> EmailPolicy[EmailMessage]:
    registry = _Registry()
    registry.map_to_type("list-unsubscribe", _UriListHeader)
    return SMTP.clone(header_factory=registry)


POLICY = _build_policy()


def check_address(address: str) -> str:
    """The address itself, or ``PermanentDeliveryError`` when it cannot be a mailbox."""
    if not address.isascii():
        reason = "non-ASCII addresses (SMTPUTF8) are not supported"
    elif not _ADDRESS_RE.match(address):
        reason = "not a deliverable email address"
    else:
        return address
    raise PermanentDeliveryError(f"{reason}: {address!r}", recipient_unreachable=True)


def domain_of(address: str) -> str:
    domain = address.rpartition("@")[2].strip().lower()
    return domain if _DOMAIN_RE.fullmatch(domain) else "paperbell.invalid"


def header_line(name: str, value: str) -> str:
    """``Name: value`` folded and CRLF-terminated, as the stdlib generator would write it.

    A short printable ASCII value is written as is: parsing it into the stdlib's token
    tree costs more than rendering a paper and changes nothing. Anything else (non-ASCII,
    long, a line break) is parsed and folded by the policy, once per distinct value.
    """
    if value.isascii() and value.isprintable() and len(name) + len(value) + 2 <= _LINE:
        return f"{name}: {value}\r\n"
    return _folded(name, value)


def subject_header(subject: str) -> str:
    """Always parsed and folded (it usually holds a "·"), like ``msg["Subject"] = ...``."""
    return _folded("Subject", subject)


@functools.lru_cache(maxsize=4096)  # subjects and senders repeat across a day's mail
def _folded(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:  # the check ``msg[name] = value`` makes: no injection
        raise ValueError(f"header value for {name} contains a line break: {value!r}")
    return str(POLICY.header_factory(name, value).fold(policy=POLICY))


def message_id(key: str, domain: str) -> str:
    """Stable across retries of one delivery, so a receiver can drop a duplicate.

    ``key`` is the message's key (``bot.delivery.messages.batch_key``), derived from its
    rows' keys alone; the dispatcher retries a message's rows together, so a re-sent
    message has the same key and Message-ID. Its ``Date`` is the time of that attempt and
    may differ between copies, as a re-sent message's should."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}.paperbell@{domain}>"


def header_uri(uri: str) -> str:
    return quote(uri.strip(), safe=_URI_SAFE)


def list_headers(links: MessageLinks, list_id: str) -> list[str]:
    """List-Id and RFC 8058 one-click unsubscribe (Post only with an HTTPS link).

    Only the HTTPS link: a ``mailto:`` would go to an address nothing reads.
    """
    lines = [header_line("List-Id", f"paperbell <{list_id}>")]
    if links.unsubscribe_all:
        lines.append(_folded("List-Unsubscribe", f"<{header_uri(links.unsubscribe_all)}>"))
    if links.unsubscribe_all and links.unsubscribe_all.lower().startswith("https://"):
        lines.append(header_line("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return lines


# One fixed boundary. "=_" never occurs in quoted-printable ("=" is followed by hex or a
# line break); a body written as it is goes as quoted-printable if it holds the boundary.
_BOUNDARY = "=_paperbell_alternative"
MULTIPART_HEADERS = (
    "MIME-Version: 1.0\r\n",
    f'Content-Type: multipart/alternative; boundary="{_BOUNDARY}"\r\n',
)
_PART_HEAD = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
)
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")  # the stdlib generator's line ends
_MAX_LINE = 998  # octets in a line of a message, CRLF apart (RFC 5322 2.1.1)
_DELIMITER = f"--{_BOUNDARY}\r\n".encode("ascii")
_CLOSE = f"\r\n--{_BOUNDARY}--\r\n".encode("ascii")


def mail_bytes(headers: Sequence[str], text: str, html: str) -> bytes:
    """The whole message: ``headers`` (folded lines, ``MULTIPART_HEADERS`` among them),
    then multipart/alternative with text first and HTML last (the preferred part goes last).

    Written directly: the same bytes as ``EmailMessage.as_bytes`` with ``POLICY`` and the
    same transfer encodings (a test holds them equal), whose generator cost more than
    rendering the digest.
    """
    head = "".join(headers).encode("ascii")
    return b"".join(
        (
            head,
            b"\r\n",
            _DELIMITER,
            _part(text, "plain"),
            b"\r\n",
            _DELIMITER,
            _part(html, "html"),
            _CLOSE,
        )
    )


def body_encoding(body: str, raw: bytes) -> str:
    """``7bit`` or ``8bit`` when ``body`` (``raw`` in UTF-8) can go as it is, else
    ``quoted-printable``."""
    if "\r" in body or "\0" in body or _BOUNDARY in body:
        return "quoted-printable"
    # A line of n characters is at most 4n octets: measure octets only when it matters.
    if (
        max(map(len, body.split("\n"))) * 4 > _MAX_LINE
        and max(map(len, raw.split(b"\n"))) > _MAX_LINE
    ):
        return "quoted-printable"
    return "7bit" if raw.isascii() else "8bit"


def _part(body: str, subtype: str) -> bytes:
    raw = body.encode("utf-8")
    cte = body_encoding(body, raw)
    head = _PART_HEAD.format(subtype=subtype, cte=cte).encode("ascii")
    if cte != "quoted-printable":
        return head + raw.replace(b"\n", b"\r\n")
    # The whole body in one C call. Encoding it line by line, with a cache of the lines
    # seen (titles and abstracts repeat between messages), was slower.
    encoded = binascii.b2a_qp(raw)
    # Rendered bodies end lines with "\n" only; the regex (ten times slower) is for a stray
    # "\r" some field let through, so the line ends are what the generator would write.
    if b"\r" in encoded:
        return head + _NEWLINE_RE.sub("\r\n", encoded.decode("ascii")).encode("ascii")
    return head + encoded.replace(b"\n", b"\r\n")


def seven_bit(data: bytes) -> bytes:
    """``data`` (a whole message) with its 8-bit text parts re-encoded as quoted-printable:
    what a server without 8BITMIME takes. Rare, so the stdlib's parser and generator."""
    message = message_from_bytes(data, policy=POLICY)
    for part in message.walk():
        if part.is_multipart() or part.get("Content-Transfer-Encoding", "").lower() != "8bit":
            continue
        text = part.get_payload(decode=True)
        assert isinstance(text, bytes)  # a leaf part's payload, decoded
        crlf_free = text.replace(b"\r\n", b"\n")
        part.set_payload(binascii.b2a_qp(crlf_free).decode("ascii"))
        part.replace_header("Content-Transfer-Encoding", "quoted-printable")
    return message.as_bytes(policy=POLICY)
