"""The embedded default: every message becomes an ``.eml`` file in ``DATA_DIR/outbox/``.

A new user sees real, openable digests without configuring a server. Each file is written
to a temporary name, flushed to disk and renamed into place, so a reader never sees half a
message, and the name derives from the delivery key, so a retry overwrites instead of
duplicating. A send returns only once its rename is durable too: after an fsync of the
directory that began after the rename. Under a burst that fsync is shared (group commit):
every sender waiting when one begins is covered by it, so N concurrent senders cost one
directory fsync, not N, and their file fsyncs run side by side in threads, where the
filesystem's journal commits them together.
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
# Writers at once: enough to keep the disk's queue full, few enough for the thread pool.
FILE_CONCURRENCY = 8


def eml_name(key: str) -> str:
    """A file name for a delivery key: readable, safe, and distinct for distinct keys."""
    readable = _UNSAFE_RE.sub("_", key).strip("._")[:_NAME_CHARS] or "message"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{readable}-{digest}.eml"


def place(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, flush it to disk, rename over.

    The content is durable when this returns; the rename only after ``fsync_dir``.
    """
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


def fsync_dir(directory: Path) -> None:
    """Make the renames done in ``directory`` so far durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """``place`` and make the rename durable: the whole file is on disk on return."""
    place(path, data)
    fsync_dir(path.parent)


def _file_error(exc: OSError, path: Path) -> DeliveryError:
    detail = f"cannot write {path}: {exc.strerror or exc}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientDeliveryError(detail)
    return ChannelDownError(detail)


class DirectorySync:
    """Group commit: one directory fsync answers every caller waiting when it begins.

    A caller's rename is durable once an fsync that began *after* the rename has returned.
    The fsync running when a caller arrives may have begun before its rename, so the caller
    waits for the next one, which covers everyone who arrived in the meantime.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.syncs = 0  # fsyncs run so far: fewer than callers under a burst
        self._waiting: list[asyncio.Future[None]] = []
        self._runner: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        """Return once the directory's renames done before this call are durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        await future  # a caller cancelled here only stops waiting; the fsync still runs

    async def wait_idle(self) -> None:
        """Wait for the fsyncs in progress and due (closing: none must be cut short)."""
        while self._runner is not None:
            await asyncio.shield(self._runner)

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                error: OSError | None = None
                try:
                    await asyncio.to_thread(fsync_dir, self.directory)
                except OSError as exc:
                    error = exc
                self.syncs += 1
                _settle(batch, error)
        finally:
            self._runner = None
            _settle(self._waiting, None, cancel=True)  # only when this task was cancelled
            self._waiting = []


def _settle(
    futures: list[asyncio.Future[None]], error: OSError | None, *, cancel: bool = False
) -> None:
    for future in futures:
        if future.done():
            continue  # its caller was cancelled
        if cancel:
            future.cancel()
        elif error is not None:  # one exception per caller: each raise adds its traceback
            future.set_exception(OSError(error.errno, error.strerror))
        else:
            future.set_result(None)


class FileNotifier(EmailNotifier):
    """Writes each message to ``outbox_dir/<key>.eml`` instead of sending it.

    Safe to call from several tasks at once; ``concurrency`` is how many is worth it.
    """

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
        self.directory_sync = DirectorySync(self.outbox_dir)

    @property
    def concurrency(self) -> int:
        """How many concurrent senders keep the disk busy (the dispatcher reads it)."""
        return FILE_CONCURRENCY

    def path_for(self, key: str) -> Path:
        return self.outbox_dir / eml_name(key)

    async def _deliver(self, key: str, payload: bytes, address: str) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(place, path, payload)
            await self.directory_sync.sync()
        except OSError as exc:
            raise _file_error(exc, path) from exc

    async def close(self) -> None:
        """Nothing is held open between messages; a directory fsync under way finishes."""
        await self.directory_sync.wait_idle()
