"""One ``paperbell run`` per data directory.

Two daemons on one database would both poll, match and deliver (claims keep them from
sending a row twice, but not from fetching everything twice or fighting over the Discord
bot). ``paperbell run`` holds an exclusive ``flock`` on ``DATA_DIR/paperbell.pid`` for its
whole life, with its pid written inside for the message the second one prints. The kernel
drops the lock when the process dies however it dies, so a file left by ``kill -9`` never
blocks the next start; the file itself stays, which is harmless.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import ConfigError

PID_FILE = "paperbell.pid"


@contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[Path]:
    """Hold the data directory's pid file locked while the block runs; ``ConfigError``
    (exit 78) naming the directory and the holder's pid when another process has it."""
    path = data_dir / PID_FILE
    fd = _open(path)
    try:
        _lock(fd, data_dir)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing releases the lock


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot use the data directory {path.parent}: {why} "
            "(set PAPERBELL_DATA_DIR to a directory this user can write)"
        ) from exc


def _lock(fd: int, data_dir: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        raise ConfigError(
            f"another paperbell run (pid {holder}) is using the data directory {data_dir}; "
            "stop it first, or give this one its own PAPERBELL_DATA_DIR"
        ) from None
