"""Warn about ``PAPERBELL_*`` names that no setting reads: a typo is otherwise ignored.

pydantic-settings drops unknown variables silently (``extra="ignore"``), so
``PAPERBELL_SMTP_HOST`` (one underscore) would leave mail going to files with no word.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import BaseModel

from bot.settings import ENV_PREFIX, Settings


def known_names() -> frozenset[str]:
    """Every variable a setting reads: top-level names, and ``A__B`` for nested ones (a
    nested group may also be given whole, as JSON, under its own name)."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        env = ENV_PREFIX + name.upper()
        names.add(env)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"{env}__{sub.upper()}" for sub in annotation.model_fields}
    return frozenset(names)


def unknown_setting_warnings(environ: Mapping[str, str], env_file: Path) -> list[str]:
    """One line per unknown ``PAPERBELL_*`` name in ``environ`` or ``env_file``."""
    known = known_names()
    lines: list[str] = []
    seen: set[str] = set()
    for origin, name in _names(environ, env_file):
        upper = name.upper()  # pydantic-settings matches names case-insensitively
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in seen:
            continue
        seen.add(upper)
        hint = _closest(upper, known)
        lines.append(f"paperbell: warning: {name} ({origin}) is not a setting, ignored{hint}")
    return lines


def _names(environ: Mapping[str, str], env_file: Path) -> Iterator[tuple[str, str]]:
    for name in environ:
        yield "environment", name
    try:
        text = env_file.read_text("utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        key, sep, _ = line.strip().removeprefix("export ").partition("=")
        if sep and not key.startswith("#"):
            yield str(env_file), key.strip()


def _closest(name: str, known: frozenset[str]) -> str:
    # Compared without the shared prefix, which would make every name look alike.
    tails = {k.removeprefix(ENV_PREFIX): k for k in known}
    close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), tails, n=1, cutoff=0.6)
    return f"; did you mean {tails[close[0]]}?" if close else ""
