"""Recursive-descent parser: tokens → canonical ``Query``, or one clear ``QueryError``.

Grammar (OR binds tighter than AND, as in Google Scholar)::

    query   = and_expr END
    and_expr = or_expr { ["AND"] or_expr }
    or_expr  = unary { "OR" unary }
    unary    = { "NOT" | "-" } primary
    primary  = "(" and_expr ")" | PHRASE | WORD | FIELD value | FIELD "(" and_expr ")"
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from bot.errors import QueryError
from bot.matching.analysis import fold, fold_name, tokenize
from bot.matching.query.ast import (
    Cat,
    Field,
    Like,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
    Upvotes,
    is_positive,
    make_and,
    make_not,
    make_or,
    render,
)
from bot.matching.query.lexer import Kind, Token, lex


@dataclass(frozen=True, slots=True)
class Limits:
    length: int = 512
    terms: int = 32
    nesting: int = 8


USER_LIMITS = Limits()
# For re-parsing a normalized form: written out it can be longer and one level deeper per
# level than what the user typed (``a OR b c`` renders as ``(a OR b) AND c``).
STORED_LIMITS = Limits(length=2048, terms=32, nesting=2 * USER_LIMITS.nesting + 2)

MIN_PREFIX = 3
MAX_UPVOTES = 1_000_000
_STARTS_UNARY = frozenset({Kind.NOT, Kind.LPAREN, Kind.PHRASE, Kind.WORD, Kind.FIELD})
_TEXT_FIELDS = {"title": Field.TITLE, "abstract": Field.ABSTRACT, "author": Field.AUTHOR}
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9.\-]*")
_UPVOTES = re.compile(r"(>=|≥|>)?\s*(\d+)")
# A paper key as ``paperbell papers`` shows it: a new- or old-style arXiv id (an "arXiv:"
# prefix, a version and an old-style subject class dropped, as the sources store it), or
# feed:<hex> for a feed item without one.
_PAPER_KEY = re.compile(
    r"(?:arxiv:)?(?:(\d{4}\.\d{4,5})|([a-z]+(?:-[a-z]+)?)(?:\.[a-z]{2})?(/\d{7}))(?:v\d+)?"
    r"|(feed:[0-9a-f]{8,64})"
)


def parse_query(
    text: str, *, sources: Collection[str] | None = None, limits: Limits = USER_LIMITS
) -> Query:
    """Parse a subscription query. ``sources``: the configured source names, to reject
    an unknown ``source:``; ``None`` accepts any name. Raises ``QueryError``."""
    if not text.strip():
        raise QueryError(
            "the query is empty", column=1, hint="type at least one word, e.g. diffusion"
        )
    parser = _Parser(lex(text, limits.length), limits, sources)
    q = parser.parse()
    if len(render(q)) > STORED_LIMITS.length:
        raise QueryError(
            "the query is too long once written out",
            column=1,
            hint="shorten it (long Greek or ligature characters are spelt out)",
        )
    return q


def normalize_query(text: str, *, sources: Collection[str] | None = None) -> str:
    """The canonical text of a query, to show the user how it was understood."""
    return render(parse_query(text, sources=sources))


class _Parser:
    def __init__(self, tokens: list[Token], limits: Limits, sources: Collection[str] | None):
        self.tokens = tokens
        self.pos = 0
        self.limits = limits
        self.sources = None if sources is None else {fold_name(s) for s in sources}
        self.terms = 0
        self.depth = 0
        self.group_field: Field | None = None

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Query:
        q = self.and_expr()
        if self.peek().kind is Kind.RPAREN:
            raise _stray_closer(self.peek())
        if not is_positive(q):
            raise QueryError(
                "the query only says what to leave out",
                column=1,
                hint="add a word to look for, e.g. diffusion -survey",
            )
        return q

    def and_expr(self) -> Query:
        items: list[Query] = []
        while (tok := self.peek()).kind not in (Kind.END, Kind.RPAREN):
            if tok.kind is Kind.AND:
                if not items:
                    raise _nothing_before(tok)
                self.take()
                if self.peek().kind not in _STARTS_UNARY:
                    raise _nothing_after(tok)
            items.append(self.or_expr())
        if not items:  # "(" ... END is caught by group(); here only a stray ")" is left
            raise _stray_closer(self.peek())
        return make_and(items)

    def or_expr(self) -> Query:
        start = self.peek()
        alternatives = [(start.col, self.unary())]
        while (tok := self.peek()).kind is Kind.OR:
            self.take()
            if self.peek().kind not in _STARTS_UNARY:
                raise _nothing_after(tok)
            alternatives.append((self.peek().col, self.unary()))
        if len(alternatives) > 1:
            for col, alt in alternatives:
                if not is_positive(alt):
                    raise QueryError(
                        "this side of OR only says what to leave out",
                        column=col,
                        hint="each side of OR needs a word to look for; "
                        "put the NOT outside: (a OR b) -c",
                    )
        return make_or(q for _, q in alternatives)

    def unary(self) -> Query:
        negations = 0
        first = self.peek()
        while self.peek().kind is Kind.NOT:
            self.take()
            negations += 1
        if negations and self.peek().kind not in _STARTS_UNARY:
            raise _nothing_after(first)
        q = self.primary()
        return make_not(q) if negations % 2 else q

    def primary(self) -> Query:
        tok = self.take()
        if tok.kind is Kind.LPAREN:
            return self.group(tok)
        if tok.kind is Kind.PHRASE:
            return self.phrase(tok, self.group_field or Field.ANY)
        if tok.kind is Kind.WORD:
            self.check_bare_word(tok)
            return self.word(tok, self.group_field or Field.ANY)
        if tok.kind is Kind.FIELD:
            return self.fielded(tok)
        if tok.kind in (Kind.AND, Kind.OR):
            raise _nothing_before(tok)
        raise _stray_closer(tok)  # only ")" is left: and_expr stops at END

    def group(self, opener: Token) -> Query:
        self.depth += 1
        if self.depth > self.limits.nesting:
            raise QueryError(
                f"parentheses nested too deeply (at most {self.limits.nesting} levels)",
                column=opener.col,
                hint="simplify the query, or split it into several subscriptions",
            )
        if self.peek().kind is Kind.RPAREN:
            raise QueryError(
                "empty parentheses", column=opener.col, hint="put words inside or remove them"
            )
        if self.peek().kind is Kind.END:
            raise QueryError("unbalanced parenthesis", column=opener.col, hint="close it with )")
        q = self.and_expr()
        if self.take().kind is not Kind.RPAREN:
            raise QueryError("unbalanced parenthesis", column=opener.col, hint="close it with )")
        self.depth -= 1
        return q

    def count_term(self, tok: Token) -> None:
        self.terms += 1
        if self.terms > self.limits.terms:
            raise QueryError(
                f"too many terms (at most {self.limits.terms} words, phrases and filters)",
                column=tok.col,
                hint="split it into several subscriptions",
            )

    def check_bare_word(self, tok: Token) -> None:
        # "And," or "OR!" would be written back as a bare lower-case operator word.
        words = tokenize(fold(tok.text))
        lowered = words[0] if len(words) == 1 and "*" not in tok.text else tok.text.lower()
        if lowered in ("and", "or", "not"):
            upper = lowered.upper()
            raise QueryError(
                f'"{tok.text}" is ambiguous',
                column=tok.col,
                hint=f'write {upper} in capitals for the operator, or "{lowered}" in quotes '
                "to look for the word",
            )
        if tok.text in ("&", "&&", "|", "||"):
            op = "AND" if "&" in tok.text else "OR"
            raise QueryError(f'"{tok.text}" is not an operator', column=tok.col, hint=f"write {op}")

    # --- leaves ----------------------------------------------------------------------

    def word(self, tok: Token, field: Field) -> Query:
        self.count_term(tok)
        text = tok.text
        star = text.find("*")
        if star >= 0 and star != len(text) - 1:
            raise QueryError(
                "* inside a word",
                column=tok.col + star,
                hint="a * can only end a word, as in transform* (prefix search)",
            )
        if star >= 0:
            return self.prefix(tok, field)
        words = tokenize(fold(text))
        if not words:
            raise QueryError(
                f'nothing to look for in "{text}"', column=tok.col, hint="use letters or digits"
            )
        return Term(field, words[0]) if len(words) == 1 else Phrase(field, tuple(words))

    def prefix(self, tok: Token, field: Field) -> Query:
        words = tokenize(fold(tok.text[:-1]))
        if len(words) > 1:
            raise QueryError(
                "a prefix must be a single word",
                column=tok.col,
                hint="remove the hyphen or punctuation before *, or quote the other words",
            )
        if not words or len(words[0]) < MIN_PREFIX:
            raise QueryError(
                f"prefix too short (at least {MIN_PREFIX} letters before *)",
                column=tok.col,
                hint="add letters, e.g. transform*",
            )
        return Prefix(field, words[0])

    def phrase(self, tok: Token, field: Field) -> Query:
        self.count_term(tok)
        if not tok.text.strip():
            raise QueryError("empty phrase", column=tok.col, hint="put words between the quotes")
        words = tokenize(fold(tok.text))
        if not words:
            raise QueryError(
                "nothing to look for in the phrase", column=tok.col, hint="use letters or digits"
            )
        return Phrase(field, tuple(words))

    def fielded(self, tok: Token) -> Query:
        name = tok.text
        if self.group_field is not None:
            raise QueryError(
                f"{name}: inside a {self.group_field.value}:( ) group",
                column=tok.col,
                hint="a group takes one field; move it outside the parentheses",
            )
        value = self.take()
        if value.kind is Kind.LPAREN:
            return self.field_group(name, tok, value)
        if name in _TEXT_FIELDS:
            field = _TEXT_FIELDS[name]
            return (
                self.phrase(value, field) if value.kind is Kind.PHRASE else self.word(value, field)
            )
        self.count_term(value)
        if name == "cat":
            return _category(value)
        if name == "source":
            return self.source(value)
        if name == "like":
            return _like(value)
        return _upvotes(value)

    def field_group(self, name: str, tok: Token, opener: Token) -> Query:
        if name not in _TEXT_FIELDS:
            raise QueryError(
                f"{name}: takes one value, not a group",
                column=tok.col,
                hint=f"write {name}:a OR {name}:b",
            )
        self.group_field = _TEXT_FIELDS[name]
        q = self.group(opener)
        self.group_field = None
        return q

    def source(self, tok: Token) -> Query:
        name = fold_name(tok.text)
        if not name or "*" in name:
            raise QueryError(
                f'bad source name "{tok.text}"',
                column=tok.col,
                hint="write source:hf, source:arxiv or a feed's name",
            )
        if self.sources is not None and name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none configured"
            raise QueryError(
                f'unknown source "{tok.text}"', column=tok.col, hint=f"sources are {known}"
            )
        return Source(name)


def _category(tok: Token) -> Query:
    value = tok.text.strip().lower()
    prefix = value.endswith("*")
    body = value[:-1] if prefix else value
    if not _CATEGORY.fullmatch(body) or (prefix and len(body) < 2):
        raise QueryError(
            f'bad category "{tok.text}"',
            column=tok.col,
            hint="write an arXiv category like cat:cs.LG, or cat:cs.* for a whole archive",
        )
    return Cat(body, prefix)


def paper_key(text: str) -> str | None:
    """The stored key of a paper id as people write it (``arXiv:2406.11779v2`` →
    ``2406.11779``), or None if ``text`` is no paper id."""
    m = _PAPER_KEY.fullmatch(text.strip().lower())
    if m is None:
        return None
    new, archive, number, feed = m.groups()
    return new or feed or f"{archive}{number}"


def _like(tok: Token) -> Query:
    key = paper_key(tok.text)
    if key is None:
        raise QueryError(
            f'bad paper id "{tok.text}" in like:',
            column=tok.col,
            hint="write an arXiv id like like:2406.11779, or a paper's key as "
            "`paperbell papers` shows it",
        )
    return Like(key)


def _upvotes(tok: Token) -> Query:
    m = _UPVOTES.fullmatch(tok.text.strip())
    if m is None or m.group(1) is None or int(m.group(2)) > MAX_UPVOTES:
        example = m.group(2) if m is not None and len(m.group(2)) < 8 else "10"
        raise QueryError(
            f'bad upvotes "{tok.text}"',
            column=tok.col,
            hint=f"write upvotes:>={example} for papers with {example} or more upvotes "
            f"(a whole number up to {MAX_UPVOTES})",
        )
    n = int(m.group(2))
    return Upvotes(n + 1 if m.group(1) == ">" else n)


def _stray_closer(tok: Token) -> QueryError:
    return QueryError(
        "unbalanced parenthesis", column=tok.col, hint="remove it, or add ( before it"
    )


def _nothing_before(tok: Token) -> QueryError:
    return QueryError(
        f"{tok.text} has nothing before it",
        column=tok.col,
        hint=f"put a word before {tok.text}, or remove it",
    )


def _nothing_after(tok: Token) -> QueryError:
    return QueryError(
        f"{tok.text} has nothing after it",
        column=tok.col,
        hint=f"put a word after {tok.text}, or remove it",
    )
