"""Is ``PAPERBELL_DATA_DIR`` usable? Checked once by the CLI before any command opens it.

A directory left owned by root after a ``sudo paperbell ...``, a file where the directory
should be, or a parent we may not write to would otherwise surface deep inside SQLite as a
traceback. Here each becomes one ``ConfigError`` line naming the path and the fix (exit 78).
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from bot.errors import ConfigError
from bot.store.private_files import private_dir

# What paperbell keeps in the directory and must be able to rewrite (outbox/: mail files).
DATA_FILES = ("paperbell.db", "paperbell.db-wal", "paperbell.db-shm", "secret_key", "outbox")


def check_data_dir(path: Path, *, create: bool) -> bool:
    """True when ``path`` is a usable directory (made if ``create``); False when it does
    not exist and ``create`` is False. Raises ``ConfigError`` when it cannot be used."""
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"PAPERBELL_DATA_DIR {path} is a file, not a directory: move the file away "
            "or set PAPERBELL_DATA_DIR to a directory"
        )
    if not path.exists():
        if not create:
            return False
        _make(path)
    blocked = [p for p in (path, *(path / n for n in DATA_FILES)) if _blocked(p)]
    if blocked:
        raise ConfigError(_not_writable(path, blocked[0]))
    return True


def _make(path: Path) -> None:
    try:
        private_dir(path)  # 0700: it will hold every subscriber's address
    except OSError as exc:
        raise ConfigError(
            f"PAPERBELL_DATA_DIR {path} cannot be created ({exc.strerror}): create it "
            "writable for this user, or set PAPERBELL_DATA_DIR to a directory you own"
        ) from None


def _blocked(path: Path) -> bool:
    if path.is_dir():
        return not os.access(path, os.R_OK | os.W_OK | os.X_OK)
    return path.exists() and not os.access(path, os.R_OK | os.W_OK)


def _not_writable(data_dir: Path, path: Path) -> str:
    user = _me()
    try:
        owner = path.owner()
    except (KeyError, OSError):
        owner = str(path.stat().st_uid)
    what = "" if path == data_dir else f": {path.name}"
    return (
        f"PAPERBELL_DATA_DIR {data_dir}{what} is not writable by {user} (owned by {owner}, "
        f"perhaps after a sudo command): run `sudo chown -R {user} {data_dir}` "
        "or set PAPERBELL_DATA_DIR to a directory you own"
    )


def _me() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry, as in some containers
        return str(os.getuid())
