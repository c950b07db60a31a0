"""Pure text helpers for mail: highlighting, trimming, author lists and subject lines.

Highlighting works on segments, never on markup: ``highlight_segments`` splits the raw text
into (text, matched) pieces and each output format escapes a piece before wrapping it, so
a title like ``<script>`` or ``R&D`` can never turn into markup.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date

from markupsafe import Markup, escape

SUBJECT_LIMIT = 100
ABSTRACT_WORDS = 60
AUTHORS_SHOWN = 5
# Caps per field, in characters, whatever a source sent: one paper's block stays a few KB.
TITLE_CHARS = 300
AUTHOR_CHARS = 80
ABSTRACT_CHARS = 800
CATEGORIES_SHOWN = 8
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TRAILING_PUNCT = ",;:-–—"
_DOLLAR_RE = re.compile(r"(?<!\\)\$")

Segment = tuple[str, bool]  # (text, is a matched word)


def _fold_char(char: str) -> str:
    """One character, case- and accent-free ("É" → "e").

    Always one character out, so a position in folded text is the same position in the
    original: what would expand ("ß", "ﬁ", "…") is only lower-cased.
    """
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    if len(base) == 1:
        return base
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on first sight of each character."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code))
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Case- and accent-free text of the same length as ``text``."""
    return text.lower() if text.isascii() else text.translate(_FOLD)


@functools.lru_cache(maxsize=8192)  # readers' words repeat; their combinations much less
def _word_match(word: str) -> tuple[str, Callable[[str, int], re.Match[str] | None]] | None:
    """One folded word or phrase: its first token, and a whole-word match (any run of
    spaces in a phrase) to try where that token is found."""
    parts = fold(word).split()
    if not parts:
        return None
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, parts)) + r"(?!\w)")
    return parts[0], pattern.match


def highlight_segments(text: str, words: Sequence[str]) -> tuple[Segment, ...]:
    """Split ``text`` into plain and matched pieces (case/accent-insensitive, whole words)."""
    return _segments(text, tuple(words))


@functools.lru_cache(maxsize=256)  # each field is highlighted twice: text and HTML part
def _segments(text: str, words: tuple[str, ...]) -> tuple[Segment, ...]:
    wanted = {w for w in map(_word_match, words) if w is not None}
    if not wanted or not text:
        return ((text, False),) if text else ()
    folded = fold(text)
    # Every place each word matches, overlapping ones too ("aa aa" twice in "aa aa aa"),
    # then read as one alternation of them all would: the leftmost match, the longest
    # there (a phrase over its first word), then on from its end. The first token is
    # found with str.find and the pattern tried only there: a pattern tried at every
    # position cost ten times as much, and mail highlights some 40 fields a message.
    spans = [
        (at, -found.end())
        for first, match in wanted
        for at in _places(folded, first)
        if (found := match(folded, at)) is not None
    ]
    spans.sort()
    segments: list[Segment] = []
    cursor = resume = 0  # marked up to; where the next match may start
    for start, negative_end in spans:
        if start < resume:
            continue
        resume = end = -negative_end
        # A stray combining accent after the word (text not in NFC) belongs to its letter.
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


def _places(text: str, part: str) -> Iterator[int]:
    """Every index where ``part`` starts in ``text``, overlapping ones included."""
    at = text.find(part)
    while at >= 0:
        yield at
        at = text.find(part, at + 1)


def highlight_html(text: str, words: Sequence[str], mark: str = "<mark>") -> Markup:
    """Escaped text with matched words in ``<mark>``; the only markup is ours.

    ``mark`` is the opening tag to use: the renderer passes one with its inlined style.
    """
    wrap = Markup(mark + "%s</mark>")
    pieces = (
        wrap % piece if hit else escape(piece) for piece, hit in highlight_segments(text, words)
    )
    return Markup("").join(pieces)


def highlight_text(text: str, words: Sequence[str]) -> str:
    """Plain text with matched words as ``*word*``."""
    return "".join(f"*{p}*" if hit else p for p, hit in highlight_segments(text, words))


def trim_words(text: str, limit: int = ABSTRACT_WORDS) -> str:
    """About ``limit`` words, cut at a word boundary and never inside ``$...$`` math."""
    words = text.split()
    if len(words) <= limit:
        return " ".join(words)
    end = _cut_point(words, limit) if "$" in text else limit
    if end >= len(words):
        return " ".join(words)
    return " ".join(words[:end]).rstrip(_TRAILING_PUNCT) + " …"


def cap_chars(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a space when one is near, marked with " …"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 2]
    space = cut.rfind(" ", limit // 2)
    return (cut[:space] if space > 0 else cut).rstrip(_TRAILING_PUNCT + " ") + " …"


def _cut_point(words: Sequence[str], limit: int, slack: int = 30) -> int:
    """First word index at or past ``limit`` that is outside inline math."""
    open_at: int | None = None
    for position, word in enumerate(words):
        if position >= limit and open_at is None:
            return position
        if open_at is not None and position >= limit + slack:
            return open_at or limit  # the math never closes: cut before it
        if len(_DOLLAR_RE.findall(word)) % 2:
            open_at = position if open_at is None else None
    return len(words)


def format_authors(authors: Sequence[str], shown: int = AUTHORS_SHOWN) -> str:
    """``A, B, C, D, E et al.`` past five names."""
    names = ", ".join(cap_chars(name, AUTHOR_CHARS) for name in authors[:shown])
    return f"{names} et al." if len(authors) > shown else names


def short_date(day: date) -> str:
    """``Fri 20 Nov``, in English whatever the process locale."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def unique_in_order(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(" ".join(v.split()) for v in values if v.strip()))


def subject_line(head: Sequence[str], queries: Sequence[str], limit: int = SUBJECT_LIMIT) -> str:
    """``paperbell · 12 new papers · q1, q2 +3 more`` kept to about ``limit`` characters."""
    text = " · ".join(" ".join(part.split()) for part in head)
    budget = limit - len(text) - len(" · ")
    fitted = fit_queries(unique_in_order(queries), budget)
    return f"{text} · {fitted}" if fitted else text


def fit_queries(queries: Sequence[str], budget: int) -> str:
    """As many whole queries as fit, then ``+N more``; a lone long query is cut with …."""
    shown: list[str] = []
    for position, query in enumerate(queries):
        rest = len(queries) - position - 1
        candidate = ", ".join([*shown, query]) + (f" +{rest} more" if rest else "")
        if len(candidate) > budget:
            break
        shown.append(query)
    hidden = len(queries) - len(shown)
    if shown:
        return ", ".join(shown) + (f" +{hidden} more" if hidden else "")
    if not queries:
        return ""
    tail = f" +{hidden - 1} more" if hidden > 1 else ""
    room = max(budget - len(tail) - 1, 10)
    return queries[0][:room].rstrip() + "…" + tail
