"""The data directory holds every subscriber's address: only its owner may read it.

Outside systemd (whose unit sets ``UMask=0077``) a default umask made the directory 0755 and
the database, its WAL and SHM files 0644. Files are created 0600 and directories 0700 here,
and ones a looser earlier version left are tightened, with one log line saying so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) owner-only, or tighten it if it exists looser."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten([path])


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only, unless it exists."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def tighten(paths: Iterable[Path]) -> None:
    """Drop group and other access from those of ``paths`` that exist and are ours."""
    changed = [f"{path} ({mode:o})" for path in paths if (mode := _tighten(path)) is not None]
    if changed:
        log.info(  # fixed, nothing for the operator to do: a warning would be noise
            "made owner-only, as they hold subscribers' addresses (mode was): %s",
            ", ".join(changed),
        )


def _tighten(path: Path) -> int | None:
    """The old mode if ``path`` was looser and is now owner-only; None otherwise."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077 or info.st_uid != os.geteuid():
        return None  # already private, or not ours to change (the open will say if unusable)
    path.chmod(mode & 0o700)
    return mode
