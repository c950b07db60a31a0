"""Query text → tokens, each with its 1-based column. One pass, no backtracking.

A token is ``(`` or ``)``, a quoted phrase (straight or curly quotes), a field name
(``title:``) glued to its value, one of the operators ``AND``/``OR``/``NOT`` (capitals
only), a leading ``-`` (NOT), or a bare word: anything else up to a space, parenthesis or
quote. What a bare word means is the parser's business.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import QueryError

QUOTES = '"“”„'
FIELDS = ("title", "abstract", "author", "cat", "source", "upvotes", "like")
ALIASES = {
    "ti": "title",
    "abs": "abstract",
    "au": "author",
    "authors": "author",
    "category": "cat",
    "src": "source",
}
_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_]*):")
_OPERATORS = frozenset({"AND", "OR", "NOT"})


class Kind(StrEnum):
    WORD = "word"
    PHRASE = "phrase"
    FIELD = "field"
    LPAREN = "("
    RPAREN = ")"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    col: int


def lex(text: str, max_length: int) -> list[Token]:
    """Tokens of ``text``, ending with ``END``; raises ``QueryError`` for what no parse
    could fix: too long, control characters, an unclosed quote, an unknown field."""
    _check_chars(text, max_length)
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(Token(Kind.LPAREN if c == "(" else Kind.RPAREN, c, i + 1))
            i += 1
        elif c in QUOTES:
            i = _quoted(text, i, out)
        else:
            j = i
            while j < n and not (text[j].isspace() or text[j] in "()" or text[j] in QUOTES):
                j += 1
            _bare(text, i, j, out)
            i = j
    out.append(Token(Kind.END, "", n + 1))
    return out


def _check_chars(text: str, max_length: int) -> None:
    if len(text) > max_length:
        raise QueryError(
            f"query is too long ({len(text)} characters, at most {max_length})",
            column=max_length + 1,
            hint="shorten it, or split it into two subscriptions",
        )
    for i, c in enumerate(text):
        if c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Cs"):
            raise QueryError(
                f"invisible or control character U+{ord(c):04X}",
                column=i + 1,
                hint="remove it (retype the query rather than pasting it)",
            )


def _quoted(text: str, i: int, out: list[Token]) -> int:
    end = next((j for j in range(i + 1, len(text)) if text[j] in QUOTES), -1)
    if end < 0:
        raise QueryError("unbalanced quote", column=i + 1, hint='close it with "')
    out.append(Token(Kind.PHRASE, text[i + 1 : end], i + 1))
    return end + 1


def _bare(text: str, i: int, j: int, out: list[Token]) -> None:
    """Lex ``text[i:j]``: leading minus signs, then an operator, a field or a word."""
    while i < j and text[i] == "-":
        out.append(Token(Kind.NOT, "-", i + 1))
        i += 1
    if i == j:
        if j < len(text) and text[j] in "(" + QUOTES:
            return  # -(...) or -"..."
        raise QueryError(
            "- has nothing after it",
            column=i,
            hint="write -word, with no space, to leave out papers with that word",
        )
    run = text[i:j]
    if run in _OPERATORS:
        out.append(Token(Kind(run), run, i + 1))
        return
    m = _FIELD.match(run)
    if m is None:
        out.append(Token(Kind.WORD, run, i + 1))
        return
    out.append(Token(Kind.FIELD, _field_name(m.group(1), run, i + 1), i + 1))
    _field_value(text, i + m.end(), j, m.group(1), out)


def _field_name(name: str, run: str, col: int) -> str:
    canonical = ALIASES.get(name.lower(), name.lower())
    if canonical in FIELDS:
        return canonical
    raise QueryError(
        f'unknown field "{name}:"',
        column=col,
        hint=f"fields are {', '.join(f + ':' for f in FIELDS)}; "
        f'to search for the text itself, quote it: "{run}"',
    )


def _field_value(text: str, i: int, j: int, name: str, out: list[Token]) -> None:
    if i < j:
        if text[i] == "-":
            raise QueryError(
                f"{name}: is followed by -",
                column=i + 1,
                hint=f"to leave out matches, put the minus first: -{name}:{text[i + 1 : j]}",
            )
        out.append(Token(Kind.WORD, text[i:j], i + 1))
    elif j >= len(text) or text[j] not in "(" + QUOTES:
        example = _EXAMPLES.get(ALIASES.get(name.lower(), name.lower()), f'{name}:"some words"')
        raise QueryError(
            f"{name}: has no value",
            column=i,
            hint=f"write it with no space after the colon, e.g. {example}",
        )


_EXAMPLES = {
    "cat": "cat:cs.LG",
    "source": "source:hf",
    "upvotes": "upvotes:>=10",
    "like": "like:2406.11779",
}
