"""Search text as a PostgreSQL ``tsquery`` that cannot inject syntax.

Two inputs, never spliced into SQL: the plain words of ``paperbell search`` typed by a
user (``words_query``), and the FTS5 expressions ``bot.matching.search`` builds for
``search_candidates`` (``expression_query``: quoted strings, ``"x" *`` prefixes, AND, OR and
parentheses, as SQLite's index reads them). Either becomes SQL built from fixed fragments
(``phraseto_tsquery``, ``to_tsquery``, ``&&``, ``||``) whose every word is a bound
parameter: the text is parsed as document text, never as query syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.errors import InvalidQueryError

CONFIG = "paperbell"  # the text search configuration of migration 0001
MAX_SEARCH_WORDS = 32

# A word is worth searching for only if it holds a letter or digit (as SQLite's store).
_WORDLIKE = re.compile(r"[^\W_]")
_TOKEN = re.compile(r'\s*(?:(")((?:[^"]|"")*)"|(\*)|(\()|(\))|(AND|OR)\b)')
# The parts of a word tsquery's parser would see as separate lexemes.
_PIECES = re.compile(r"[^\W_]+")


def words_query(text: str, first_param: int) -> tuple[str, list[str]]:
    """User words, every one required, as (SQL tsquery expression, its parameters)."""
    words = [w.replace("\x00", "") for w in text.split() if _WORDLIKE.search(w)]
    if not words:
        raise InvalidQueryError("search needs at least one word")
    if len(words) > MAX_SEARCH_WORDS:
        raise InvalidQueryError(
            f"search takes at most {MAX_SEARCH_WORDS} words; this one has {len(words)}"
        )
    parts = [_phrase(first_param + i) for i in range(len(words))]
    return "(" + " && ".join(parts) + ")", words


def expression_query(expression: str, first_param: int) -> tuple[str, list[str]]:
    """An FTS5 expression from ``bot.matching.search`` as (SQL tsquery expression, params).

    ``StoreError``-free by design: anything it cannot read raises ``InvalidQueryError``.
    """
    parser = _Parser(expression, first_param)
    sql = parser.parse()
    return sql, parser.params


def _phrase(param: int) -> str:
    return f"phraseto_tsquery('{CONFIG}', ${param})"


class _Parser:
    """Recursive descent over FTS5's grammar as ``fts_match`` writes it: OR binds loosest."""

    def __init__(self, expression: str, first_param: int) -> None:
        self._tokens = _tokenize(expression)
        self._at = 0
        self._first = first_param
        self.params: list[str] = []

    def parse(self) -> str:
        sql = self._or()
        if self._at != len(self._tokens):
            raise InvalidQueryError(f"cannot read search expression near token {self._at}")
        return sql

    def _peek(self) -> str | None:
        return self._tokens[self._at][0] if self._at < len(self._tokens) else None

    def _or(self) -> str:
        parts = [self._and()]
        while self._peek() == "OR":
            self._at += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._atom()]
        while self._peek() in ("AND", '"', "("):  # FTS5: adjacent terms are ANDed
            if self._peek() == "AND":
                self._at += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"

    def _atom(self) -> str:
        kind = self._peek()
        if kind == "(":
            self._at += 1
            inner = self._or()
            if self._peek() != ")":
                raise InvalidQueryError("unbalanced parentheses in search expression")
            self._at += 1
            return inner
        if kind != '"':
            raise InvalidQueryError(f"cannot read search expression near token {self._at}")
        words = self._tokens[self._at][1].replace('""', '"').replace("\x00", "")
        self._at += 1
        if self._peek() == "*":
            self._at += 1
            return self._prefix(words)
        return self._bind(words, _phrase)

    def _prefix(self, words: str) -> str:
        pieces = _PIECES.findall(words)
        if not pieces:
            return self._bind(words, _phrase)
        # Each piece a quoted lexeme (quotes and backslashes escaped), the last a prefix.
        quoted = ["'" + p.replace("\\", "\\\\").replace("'", "''") + "'" for p in pieces]
        query = " <-> ".join(quoted) + ":*"
        return self._bind(query, lambda n: f"to_tsquery('{CONFIG}', ${n})")

    def _bind(self, value: str, fragment: Callable[[int], str]) -> str:
        self.params.append(value)
        return fragment(self._first + len(self.params) - 1)


def _tokenize(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(expression):
        if expression[at:].strip() == "":
            break
        match = _TOKEN.match(expression, at)
        if match is None:
            raise InvalidQueryError(f"cannot read search expression at {expression[at:][:20]!r}")
        quote, inner, star, opening, closing, operator = match.groups()
        if quote:
            tokens.append(('"', inner))
        else:
            tokens.append((star or opening or closing or operator, ""))
        at = match.end()
    return tokens
