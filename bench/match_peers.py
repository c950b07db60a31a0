"""The matching benchmark's peers: SQLite FTS5, Tantivy and Hyperscan, fed our analysis.

FTS5 and Tantivy index the paper batch and run one query per subscription. So that they
answer exactly what paperbell answers, they index paperbell's own analysis: index terms
(stems) for words, folded tokens in order for phrases and prefixes, author-name tokens
with a separator word between names, hex-coded category and source tokens (so a
category prefix is a token prefix), and the upvote count; queries are translated from
the parsed ``Query``. Hyperscan does not evaluate queries: it scans each paper once for
every subscription's words at once, the multi-pattern speed limit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import hyperscan
import tantivy

from bot.matching.analysis import fold, fold_name, latex_fold, term_key, tokenize
from bot.matching.query import (
    And,
    Cat,
    Field,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Source,
    Term,
    Upvotes,
    is_positive,
    leaves,
)
from bot.models import Paper

SEPARATOR = "zzsepzz"  # between two author names: a phrase never spans them
TEXT_COLUMNS = ("title_terms", "abstract_terms", "title_words", "abstract_words", "authors")


def _tokens(text: str) -> list[str]:
    return tokenize(fold(latex_fold(text)))


def _hex(value: str) -> str:
    return "x" + value.encode().hex()


def paper_columns(p: Paper) -> dict[str, Any]:
    title, abstract = _tokens(p.title), _tokens(p.abstract)
    authors = f" {SEPARATOR} ".join(" ".join(_tokens(a)) for a in p.authors)
    return {
        "title_terms": " ".join(sorted({term_key(t) for t in title})),
        "abstract_terms": " ".join(sorted({term_key(t) for t in abstract})),
        "title_words": " ".join(title),
        "abstract_words": " ".join(abstract),
        "authors": authors,
        "cats": " ".join(_hex(c.strip().lower()) for c in p.categories),
        "srcs": " ".join(_hex(fold_name(s)) for s in p.sources),
        "upvotes": p.upvotes,
    }


_TERM_COLUMNS = {
    Field.ANY: ("title_terms", "abstract_terms"),
    Field.TITLE: ("title_terms",),
    Field.ABSTRACT: ("abstract_terms",),
    Field.AUTHOR: ("authors",),
}
_WORD_COLUMNS = {
    Field.ANY: ("title_words", "abstract_words"),
    Field.TITLE: ("title_words",),
    Field.ABSTRACT: ("abstract_words",),
    Field.AUTHOR: ("authors",),
}


def _has_upvotes(q: Query) -> bool:
    return any(isinstance(leaf, Upvotes) for leaf in leaves(q))


# --- SQLite FTS5 ---------------------------------------------------------------------------


class Fts5:
    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        cols = ", ".join((*TEXT_COLUMNS, "cats", "srcs", "upvotes UNINDEXED"))
        self.db.execute(f"CREATE VIRTUAL TABLE docs USING fts5({cols}, detail=full)")

    def index(self, papers: Sequence[Paper]) -> None:
        rows = [tuple(paper_columns(p).values()) for p in papers]
        self.db.executemany(f"INSERT INTO docs VALUES ({', '.join('?' * 8)})", rows)
        self.db.commit()

    def run(self, sql: tuple[str, list[Any]]) -> set[int]:
        return {rowid - 1 for (rowid,) in self.db.execute(sql[0], sql[1])}

    @staticmethod
    def compile(q: Query) -> tuple[str, list[Any]]:
        if not _has_upvotes(q):
            return "SELECT rowid FROM docs WHERE docs MATCH ?", [_fts(q)]
        params: list[Any] = []
        return "SELECT rowid FROM docs WHERE " + _sql(q, params), params


def _fts(q: Query) -> str:
    if isinstance(q, And):
        pos = [_fts(c) for c in q.children if not isinstance(c, Not)]
        text = " AND ".join(f"({p})" for p in pos)
        for c in q.children:
            if isinstance(c, Not):
                text = f"({text}) NOT ({_fts(c.child)})"
        return text
    if isinstance(q, Or):
        return " OR ".join(f"({_fts(c)})" for c in q.children)
    if isinstance(q, Term | Phrase):
        words = (q.word,) if isinstance(q, Term) else q.words
        stem = isinstance(q, Term) and q.field is not Field.AUTHOR
        cols = (_TERM_COLUMNS if isinstance(q, Term) else _WORD_COLUMNS)[q.field]
        text = " ".join(term_key(w) if stem else w for w in words)
        return f'{{{" ".join(cols)}}} : "{text}"'
    if isinstance(q, Prefix):
        return f'{{{" ".join(_WORD_COLUMNS[q.field])}}} : "{q.prefix}" *'
    if isinstance(q, Cat):
        return f'cats : "{_hex(q.value)}"' + (" *" if q.prefix else "")
    assert isinstance(q, Source), q
    return f'srcs : "{_hex(q.name)}"'


def _sql(q: Query, params: list[Any]) -> str:
    """A WHERE clause for queries that mix upvotes with text (FTS5 cannot filter on them)."""
    if not _has_upvotes(q) and is_positive(q):
        params.append(_fts(q))
        return "rowid IN (SELECT rowid FROM docs WHERE docs MATCH ?)"
    if isinstance(q, Upvotes):
        params.append(q.at_least)
        return "coalesce(upvotes, -1) >= ?"
    if isinstance(q, Not):
        return f"NOT ({_sql(q.child, params)})"
    assert isinstance(q, And | Or), q
    joiner = " AND " if isinstance(q, And) else " OR "
    return "(" + joiner.join(_sql(c, params) for c in q.children) + ")"


# --- Tantivy -------------------------------------------------------------------------------


class Tantivy:
    def __init__(self) -> None:
        builder = tantivy.SchemaBuilder()
        for name in (*TEXT_COLUMNS, "cats", "srcs"):
            builder.add_text_field(name, tokenizer_name="whitespace", index_option="position")
        builder.add_integer_field("upvotes", indexed=True, fast=True)
        builder.add_integer_field("idx", stored=True, fast=True)
        self.schema = builder.build()
        self.index_ = tantivy.Index(self.schema)
        self.searcher: Any = None
        self.size = 0

    def index(self, papers: Sequence[Paper]) -> None:
        writer = self.index_.writer(100_000_000, 1)
        for i, p in enumerate(papers):
            doc = tantivy.Document()
            for name, value in paper_columns(p).items():
                if name == "upvotes":
                    if value is not None:
                        doc.add_integer("upvotes", value)
                elif value:
                    doc.add_text(name, value)
            doc.add_integer("idx", i)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        self.index_.reload()
        self.searcher = self.index_.searcher()
        self.size = len(papers)

    def run(self, query: Any) -> set[int]:
        hits = self.searcher.search(query, limit=self.size, count=False).hits
        return set(self.searcher.fast_field_values("idx", [addr for _, addr in hits]))

    def compile(self, q: Query) -> Any:
        Q, Occur = tantivy.Query, tantivy.Occur
        if isinstance(q, And):
            clauses = [
                (Occur.MustNot, self.compile(c.child)) if isinstance(c, Not)
                else (Occur.Must, self.compile(c))
                for c in q.children
            ]  # fmt: skip
            if all(o == Occur.MustNot for o, _ in clauses):
                clauses.append((Occur.Must, Q.all_query()))
            return Q.boolean_query(clauses)
        if isinstance(q, Or):
            return Q.boolean_query([(Occur.Should, self.compile(c)) for c in q.children])
        if isinstance(q, Not):
            return Q.boolean_query(
                [(Occur.Must, Q.all_query()), (Occur.MustNot, self.compile(q.child))]
            )
        return self._leaf(q)

    def _leaf(self, q: Query) -> Any:
        s, Q = self.schema, tantivy.Query
        if isinstance(q, Upvotes):
            return Q.range_query(s, "upvotes", tantivy.FieldType.Integer, q.at_least, None)
        if isinstance(q, Cat | Source):
            field, value = ("cats", q.value) if isinstance(q, Cat) else ("srcs", q.name)
            if isinstance(q, Cat) and q.prefix:
                return Q.regex_query(s, field, _hex(value) + ".*")
            return Q.term_query(s, field, _hex(value))
        assert isinstance(q, Term | Phrase | Prefix), q
        return _any_of([_text_leaf(s, q, col) for col in _columns(q)])


def _columns(q: Term | Phrase | Prefix) -> tuple[str, ...]:
    return (_TERM_COLUMNS if isinstance(q, Term) else _WORD_COLUMNS)[q.field]


def _text_leaf(s: Any, q: Term | Phrase | Prefix, col: str) -> Any:
    Q = tantivy.Query
    if isinstance(q, Prefix):
        return Q.regex_query(s, col, q.prefix + ".*")
    if isinstance(q, Term):
        return Q.term_query(s, col, q.word if q.field is Field.AUTHOR else term_key(q.word))
    if len(q.words) == 1:
        return Q.term_query(s, col, q.words[0])
    return Q.phrase_query(s, col, list(q.words))


def _any_of(queries: list[Any]) -> Any:
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])


# --- Hyperscan -----------------------------------------------------------------------------


class Hyperscan:
    """Every subscription's words as one pattern set; each paper scanned once."""

    def __init__(self, queries: Sequence[Query]) -> None:
        patterns = sorted({p for q in queries for p in _patterns(q)})
        self.db = hyperscan.Database()
        flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
        self.db.compile(
            expressions=[p.encode() for p in patterns],
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=[flags] * len(patterns),
        )
        self.patterns = len(patterns)

    def scan(self, text: bytes) -> int:
        found: list[int] = []
        self.db.scan(text, match_event_handler=_on_match, context=found)
        return len(found)


def _on_match(pattern: int, start: int, end: int, flags: int, found: object) -> None:
    assert isinstance(found, list)
    found.append(pattern)


def _patterns(q: Query) -> Iterator[str]:
    for leaf in leaves(q):
        if isinstance(leaf, Term) and leaf.field is not Field.AUTHOR:
            yield r"\b" + term_key(leaf.word)  # the stem starts every word it stands for
        elif isinstance(leaf, Phrase) and leaf.field is not Field.AUTHOR:
            yield r"\b" + r"\W+".join(leaf.words) + r"\b"
        elif isinstance(leaf, Prefix) and leaf.field is not Field.AUTHOR:
            yield r"\b" + leaf.prefix


PEERS: dict[str, Callable[..., Any]] = {"fts5": Fts5, "tantivy": Tantivy}
