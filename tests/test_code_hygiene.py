"""The code keeps its promises: every import is declared, one rule for naive datetimes."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from datetime import UTC, datetime
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from bot.sources._common import parse_iso, parse_rfc822
from bot.store.merge import to_utc

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"bot", "handlers", "tests", "bench"}


def _imported(folder: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - LOCAL - set(sys.stdlib_module_names)


def _declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower() for spec in specs}


@pytest.mark.parametrize(
    ("folder", "extras"),
    [("bot", ()), ("handlers", ()), ("tests", ("test",)), ("bench", ("test", "bench"))],
)
def test_every_imported_package_is_declared(folder: str, extras: tuple[str, ...]) -> None:
    owners = packages_distributions()
    declared = _declared(*extras)
    missing = {
        module
        for module in _imported(folder)
        if module in owners and not {d.lower() for d in owners[module]} & declared
    }
    assert not missing, f"{folder}/ imports undeclared packages: {sorted(missing)}"


def test_one_to_utc_and_it_refuses_naive_times() -> None:
    defined = [
        path
        for path in (ROOT / "bot").rglob("*.py")
        if re.search(r"^def to_utc\(", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert [p.relative_to(ROOT).as_posix() for p in defined] == ["bot/store/merge.py"]
    with pytest.raises(ValueError, match="naive"):
        to_utc(datetime(2026, 1, 1))


def test_feed_times_without_an_offset_are_read_as_utc() -> None:
    expected = datetime(2024, 4, 1, tzinfo=UTC)
    assert parse_rfc822("Mon, 01 Apr 2024 00:00:00 -0000") == expected
    assert parse_iso("2024-04-01T00:00:00") == expected
    assert parse_iso("2024-04-01T02:00:00+02:00") == expected
