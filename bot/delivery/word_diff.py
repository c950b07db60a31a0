"""A word diff for short notes: what changed between two versions of a text, with a few
words of context either side, removed words as ``[-old-]`` and added ones as ``{+new+}``.
Pure."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

CONTEXT = 4  # words kept either side of a change
MAX_CHARS = 600  # a note stays short: a rewritten abstract is cut, and says so


def word_diff(before: str, after: str) -> str | None:
    """The changes from ``before`` to ``after``, or None when the words are the same."""
    return token_diff(before.split(), after.split())


def token_diff(old: Sequence[str], new: Sequence[str], joiner: str = " ") -> str | None:
    """The same over any tokens (an author list: one name a token, joined by ", ")."""
    matcher = SequenceMatcher(a=old, b=new, autojunk=False)
    if old == new:
        return None
    groups = list(matcher.get_grouped_opcodes(CONTEXT))
    pieces = [
        joiner.join(
            p for p in (_piece(joiner, op, old[a:b], new[c:d]) for op, a, b, c, d in g) if p
        )
        for g in groups
    ]
    # An ellipsis says words were left out before the first change, between two, after the last.
    head = "… " if groups[0][0][1] > 0 else ""
    tail = " …" if groups[-1][-1][2] < len(old) else ""
    text = head + " … ".join(pieces) + tail
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rstrip() + "…"


def _piece(joiner: str, tag: str, old: Sequence[str], new: Sequence[str]) -> str:
    if tag == "equal":
        return joiner.join(old)
    removed = f"[-{joiner.join(old)}-]" if old else ""
    added = f"{{+{joiner.join(new)}+}}" if new else ""
    return " ".join(p for p in (removed, added) if p)
