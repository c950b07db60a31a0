"""The straightforward highlighter ``handlers.email.format`` must equal: one alternation
of every word, longest first, searched once over the folded text."""

from __future__ import annotations

import re
import unicodedata

from handlers.email.format import Segment, fold


def reference_segments(text: str, words: tuple[str, ...]) -> tuple[Segment, ...]:
    folded = {" ".join(fold(w).split()) for w in words}
    parts = [r"\s+".join(map(re.escape, w.split())) for w in sorted(folded, key=len, reverse=True)]
    parts = [p for p in parts if p]
    if not parts or not text:
        return ((text, False),) if text else ()
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")
    segments: list[Segment] = []
    cursor = 0
    for match in pattern.finditer(fold(text)):
        start, end = match.span()
        while end < len(text) and unicodedata.combining(text[end]):
            end += 1
        if start < cursor:
            continue
        if start > cursor:
            segments.append((text[cursor:start], False))
        segments.append((text[start:end], True))
        cursor = end
    if cursor < len(text):
        segments.append((text[cursor:], False))
    return tuple(segments)
