"""The embedded default: every message becomes an ``.eml`` file in ``DATA_DIR/outbox/``.

A new user sees real, openable digests without configuring a server. Each file is written
to a temporary name and renamed into place, so a reader never sees half a message, and the
name derives from the delivery key, so a retry overwrites instead of duplicating.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import tempfile
from pathlib import Path

from bot.errors import ChannelDownError, DeliveryError, TransientDeliveryError
from bot.settings import EmailSettings, SmtpSettings
from handlers.email.base import EmailNotifier
from handlers.email.render import Renderer

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_CHARS = 80
# Worth retrying later: the disk may have room again. Anything else (permissions, a file
# where the directory should be, a read-only mount) needs a person.
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR})


def eml_name(key: str) -> str:
    """A file name for a delivery key: readable, safe, and distinct for distinct keys."""
    readable = _UNSAFE_RE.sub("_", key).strip("._")[:_NAME_CHARS] or "message"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{readable}-{digest}.eml"


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, flush it to disk, rename over."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the files are 0600 (mkstemp)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _file_error(exc: OSError, path: Path) -> DeliveryError:
    detail = f"cannot write {path}: {exc.strerror or exc}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientDeliveryError(detail)
    return ChannelDownError(detail)


class FileNotifier(EmailNotifier):
    """Writes each message to ``outbox_dir/<key>.eml`` instead of sending it."""

    def __init__(
        self,
        outbox_dir: Path,
        *,
        smtp: SmtpSettings | None = None,
        email: EmailSettings | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        super().__init__(renderer or Renderer(smtp or SmtpSettings(), email or EmailSettings()))
        self.outbox_dir = Path(outbox_dir)

    def path_for(self, key: str) -> Path:
        return self.outbox_dir / eml_name(key)

    async def _deliver(self, key: str, payload: bytes, address: str) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(write_atomically, path, payload)
        except OSError as exc:
            raise _file_error(exc, path) from exc

    async def close(self) -> None:
        """Nothing is held open between messages."""
