"""Readers for the files in deploy/, for tests/test_deploy.py.

Each reads just the subset of its format our files are written in and fails loudly on
anything else, so a test never passes because a line was silently skipped.
"""

from __future__ import annotations

import re
from typing import Any


def seconds(span: str) -> float:
    """A systemd or compose time span ("40s", "1min 30s", "1m30s", "45") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts and all(unit in units for _, unit in parts), f"unreadable time span {span!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


# --- systemd unit files -------------------------------------------------------------------


def unit_directives(text: str) -> dict[str, dict[str, list[str]]]:
    """Section → directive → every value given (a directive may repeat, e.g. filters)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep and not line.endswith("\\"), f"odd line {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


# --- Dockerfile and .dockerignore ---------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


IgnoreRules = list[tuple[bool, re.Pattern[str]]]


def ignore_rules(text: str) -> IgnoreRules:
    """.dockerignore as (is an exception "!", regex), in order: the last match wins."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, glob_regex(line.lstrip("!").strip().strip("/"))))
    return rules


def glob_regex(glob: str) -> re.Pattern[str]:
    """Docker's globs: ``*`` and ``?`` stop at "/", ``**`` spans directories."""
    tokens = re.findall(r"\*\*/|\*\*|\*|\?|\[[^\]]*\]|[^*?\[]+", glob)
    assert "".join(tokens) == glob, f"unreadable .dockerignore pattern {glob!r}"
    special = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    regex = "".join(special.get(t) or (t if t.startswith("[") else re.escape(t)) for t in tokens)
    return re.compile(regex)


def in_build_context(path: str, rules: IgnoreRules) -> bool:
    """Whether docker sends this file: a rule matching a parent matches the file too."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, pattern in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            included = negate
    return included


# --- compose.yaml -------------------------------------------------------------------------


def block_yaml(text: str) -> Any:
    """The block-style YAML subset compose.yaml is written in: mappings, "- " lists and
    plain or quoted scalars, read as strings (PyYAML is not a dependency)."""
    lines = []
    for raw in text.splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            assert " #" not in raw and "\t" not in raw, f"keep comments on their own line: {raw}"
            lines.append((len(raw) - len(raw.lstrip(" ")), raw.strip()))
    node, end = _yaml_node(lines, 0)
    assert end == len(lines), f"could not read the YAML from: {lines[end][1]!r}"
    return node


def _yaml_node(lines: list[tuple[int, str]], i: int) -> tuple[Any, int]:
    indent = lines[i][0]
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            item = lines[i][1][2:]
            if re.match(r"[\w.-]+:( |$)", item):  # "- key: value" opens a mapping
                lines[i] = (indent + 2, item)
                value, i = _yaml_node(lines, i)
            else:
                value, i = _scalar(item), i + 1
            items.append(value)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
        key, sep, value = lines[i][1].partition(":")
        assert sep, f"not a mapping entry: {lines[i][1]!r}"
        i += 1
        if value.strip():
            mapping[key] = _scalar(value)
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _yaml_node(lines, i)
        else:
            mapping[key] = None
    return mapping, i


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def as_strings(node: Any) -> Any:
    """A parsed YAML document with every scalar as ``block_yaml`` reads it."""
    if isinstance(node, dict):
        return {k: as_strings(v) for k, v in node.items()}
    if isinstance(node, list):
        return [as_strings(v) for v in node]
    if isinstance(node, bool):
        return str(node).lower()
    return node if node is None else str(node)
