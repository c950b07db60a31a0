"""Email address syntax: the one check every way in (CLI, Discord, web, the store) uses."""

from __future__ import annotations

import re
from email.utils import parseaddr

from bot.errors import InvalidValueError

_MAX_ADDRESS, _MAX_LOCAL = 254, 64
# RFC 5322 dot-atom characters; quoted local parts are legal but too rare to be worth it.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_email_address(text: str) -> str:
    """The address, trimmed, with its domain in lower case; ``InvalidValueError`` if bad."""
    address = text.strip()
    if not address:
        raise InvalidValueError("give an email address, like ada@example.org")
    if not address.isprintable():
        raise InvalidValueError("an email address cannot contain line breaks or control characters")
    if not address.isascii():
        raise InvalidValueError(
            "only addresses written in plain ASCII are supported (no accented letters)"
        )
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidValueError(
            f"{address!r} is not an email address; write it like ada@example.org"
        )
    if len(address) > _MAX_ADDRESS or len(local) > _MAX_LOCAL:
        raise InvalidValueError(f"{address!r} is too long to be an email address")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidValueError(f"{domain!r} is not a valid domain for an email address")
    if not _LOCAL.match(local) or parseaddr(address)[1] != address:
        raise InvalidValueError(f"the part before the @ in {address!r} is not valid")
    return f"{local}@{domain.lower()}"
