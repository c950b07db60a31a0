"""Message headers: the policy we serialise with, Message-ID, and the list headers.

Bodies are quoted-printable, so a serialised message is 7-bit clean and can go to any
server (no 8BITMIME needed) and into an ``.eml`` file byte for byte.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import re
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


def set_header(msg: EmailMessage, name: str, value: str) -> None:
    """Add a header; a short printable ASCII line is stored as is.

    The stdlib parses every header it is given into a token tree, which costs more than
    rendering a paper; a value that needs no encoding or folding gains nothing from it.
    Anything else (non-ASCII, long, or with a line break) takes the normal, checked path.
    Not for headers the generator reads back (Content-Type): a raw value is re-parsed on
    every read, a parsed one never again.
    """
    if value.isascii() and value.isprintable() and len(name) + len(value) + 2 <= _LINE:
        msg.set_raw(name, value)
    else:
        msg[name] = value


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


def add_list_headers(msg: EmailMessage, links: MessageLinks, list_id: str) -> None:
    """List-Id and RFC 8058 one-click unsubscribe (Post only with an HTTPS link).

    Only the HTTPS link: a ``mailto:`` would go to an address nothing reads.
    """
    set_header(msg, "List-Id", f"paperbell <{list_id}>")
    if links.unsubscribe_all:
        msg["List-Unsubscribe"] = f"<{header_uri(links.unsubscribe_all)}>"
    if links.unsubscribe_all and links.unsubscribe_all.lower().startswith("https://"):
        set_header(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")


# One fixed boundary: "=_" never occurs in quoted-printable ("=" is followed by hex or a
# line break), so it cannot clash with a body, and the generator need not search for one.
_BOUNDARY = "=_paperbell_alternative"


@functools.cache
def _fixed_header(name: str, value: str) -> BaseHeader:
    """Headers that never change, parsed once: parsing costs more than a paper's HTML."""
    header: BaseHeader = POLICY.header_factory(name, value)
    return header


def attach_bodies(msg: EmailMessage, text: str, html: str) -> None:
    """multipart/alternative: text first, HTML last (the preferred part goes last)."""
    set_header(msg, "MIME-Version", "1.0")
    content_type = f'multipart/alternative; boundary="{_BOUNDARY}"'
    msg["Content-Type"] = _fixed_header("Content-Type", content_type)
    msg.set_payload([_qp_part(text, "plain"), _qp_part(html, "html")])


def _qp_part(body: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = _fixed_header("Content-Type", f'text/{subtype}; charset="utf-8"')
    part["Content-Transfer-Encoding"] = _fixed_header(
        "Content-Transfer-Encoding", "quoted-printable"
    )
    # binascii's encoder is C; the email package's own quoted-printable is pure Python
    # and cost more than rendering the digest. Same output: 76-column lines, soft breaks.
    part.set_payload(binascii.b2a_qp(body.encode("utf-8")).decode("ascii"))
    return part
