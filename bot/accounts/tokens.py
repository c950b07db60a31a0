"""Signed tokens for links in mail (confirm an address, unsubscribe) and 6-digit codes.

A token is ``base64url(payload JSON) . base64url(HMAC-SHA256(key, purpose . payload))``.
The purpose is part of what is signed, so an unsubscribe token can never confirm an
address. Comparison is constant-time. The key comes from ``PAPERBELL_SECRET_KEY`` or is
generated once into ``DATA_DIR/secret_key`` (mode 0600) so links survive restarts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import InvalidTokenError
from bot.settings import Settings
from bot.store.private_files import private_dir, tighten

KEY_FILE = "secret_key"


def load_secret_key(settings: Settings) -> bytes:
    """The configured key, else the one kept in DATA_DIR, else a new one saved there."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode()
    path = settings.data_dir / KEY_FILE
    if path.exists():
        tighten([path])
        return path.read_bytes().strip()
    return _create_key_file(path)


def _create_key_file(path: Path) -> bytes:
    private_dir(path.parent)
    key = secrets.token_urlsafe(48).encode()
    # O_EXCL: two processes starting at once must not both write different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# One encoder: json.dumps with options builds a new one per call, most of a link's cost.
_canonical = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


@dataclass(frozen=True)
class Signer:
    key: bytes

    def _mac(self, purpose: str, body: str) -> str:
        # hmac.digest: the one-shot C path; a mail signs two links per paper shown.
        return _b64(hmac.digest(self.key, f"{purpose}.{body}".encode(), "sha256"))

    def sign(self, purpose: str, payload: dict[str, Any], expires: datetime | None = None) -> str:
        data = dict(payload)
        if expires is not None:
            data["exp"] = int(expires.timestamp())
        body = _b64(_canonical(data).encode())
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str, now: datetime) -> dict[str, Any]:
        """The payload of a valid token; ``InvalidTokenError`` with a reason otherwise."""
        body, sep, mac = token.partition(".")
        if not sep or not hmac.compare_digest(mac.encode(), self._mac(purpose, body).encode()):
            raise InvalidTokenError("this link is not valid (it may have been cut short)")
        try:
            data = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            raise InvalidTokenError("this link is not valid") from None
        if not isinstance(data, dict):
            raise InvalidTokenError("this link is not valid")
        if "exp" in data and now.timestamp() > data["exp"]:
            raise InvalidTokenError("this link has expired; ask for a new one")
        return data

    def code(self, purpose: str, subject: str, issued: datetime) -> str:
        """A 6-digit code bound to a subject and its issue time (typed into Discord)."""
        mac = hmac.new(
            self.key, f"{purpose}|{subject}|{int(issued.timestamp())}".encode(), hashlib.sha256
        ).digest()
        return f"{int.from_bytes(mac[:8], 'big') % 1_000_000:06d}"

    def check_code(self, purpose: str, subject: str, issued: datetime, code: str) -> bool:
        return hmac.compare_digest(self.code(purpose, subject, issued), code.strip())


def expiry(now: datetime, hours: int = 24) -> datetime:
    return now + timedelta(hours=hours)
