"""Normalising text from sources for display.

Titles and abstracts keep their LaTeX (``$J_1$``); only whitespace and stray HTML entities
are cleaned. Author names are different: arXiv RSS is pure ASCII and writes ``J\\"urgen``,
so names go through pylatexenc to become ``Jürgen``.

Invisible characters: format controls (Unicode category Cf: zero-width spaces and joiners,
bidi embeddings and overrides such as U+202E, which can make a title read backwards in a
mail client) and C0/C1 control codes (terminal escapes) are removed from every text a
source gives us, by ``collapse_whitespace``, which every display helper ends with.

Entities: an XML parser (or feedparser) already decoded one level of escaping, so ``&lt;``
in the document is ``<`` by the time we see it. Some feeds escape twice and leave
``&amp;`` or ``&lt;`` in the decoded text; ``decode_entities`` undoes that one extra level.
It only touches complete, semicolon-terminated references: ``html.unescape`` alone would
also turn ``&para`` inside ``&parameter`` into ``¶meter``.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from pylatexenc.latex2text import LatexNodes2Text

_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# A % or & that TeX would read as a comment or an alignment tab, i.e. not already escaped.
_TEX_SPECIAL_RE = re.compile(r"(?<!\\)([%&#])")
_AND_RE = re.compile(r"(?:^|\s+)and\s+")
# Every Cf character of Unicode 15 (tests compare with unicodedata), and the C0/C1
# controls that are not whitespace (whitespace ones collapse into one space anyway).
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f"
    "\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
# Author lists are cut at ingest (bot.sources.checks); splitting stops a little past that
# so a hostile "A, B, C, ..." of millions of names costs no more than the cap needs.
MAX_SPLIT_AUTHORS = 501
# pylatexenc is slow on long input; no real name is near this, and ingest cuts names shorter.
_MAX_TEX_NAME = 2000
_BLOCK_TAGS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"blockquote", "pre", "hr", "table", "section", "article", "header", "footer"}
)
_latex = LatexNodes2Text()


def collapse_whitespace(text: str) -> str:
    """One space between words; arXiv hard wraps (``"\\n  "``) and tabs disappear, and so do
    invisible format and control characters (see module doc)."""
    return " ".join(strip_invisible(text).split())


def strip_invisible(text: str) -> str:
    """``text`` without zero-width, bidi-control and other invisible control characters."""
    return _INVISIBLE_RE.sub("", text)


def decode_entities(text: str) -> str:
    """Decode one more level of complete HTML character references (see module doc)."""
    if "&" not in text:
        return text
    return _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), text)


def display_text(text: str | None) -> str:
    """A title or abstract as we show it: entities decoded once, whitespace collapsed."""
    return collapse_whitespace(decode_entities(text or ""))


def name_to_unicode(name: str) -> str:
    """An author name with TeX accents (``Przemys{\\l}aw``) turned into Unicode."""
    name = decode_entities(name)
    if any(char in name for char in "\\{~") and len(name) <= _MAX_TEX_NAME:
        # Unescaped %, & and # mean something else to TeX; keep them literal.
        name = _latex.latex_to_text(_TEX_SPECIAL_RE.sub(r"\\\1", name))
    return collapse_whitespace(name)


def split_authors(creators: str) -> tuple[str, ...]:
    """Split arXiv RSS ``dc:creator`` (one string, all names) into names.

    Commas inside parentheses belong to affiliations, which are dropped; ``A, B and C``
    and ``A, B, and C`` give three names.
    """
    names: list[str] = []
    for chunk in _split_outside_parens(creators):
        for part in _AND_RE.split(chunk):
            name = name_to_unicode(part)
            if name:
                names.append(name)
            if len(names) >= MAX_SPLIT_AUTHORS:
                return tuple(names)
    return tuple(names)


def _split_outside_parens(text: str) -> list[str]:
    """Top-level comma-separated chunks with every parenthesised part removed."""
    chunks: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif depth == 0 and char == ",":
            chunks.append("".join(current))
            current = []
        elif depth == 0:
            current.append(char)
    chunks.append("".join(current))
    return chunks


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; block tags become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(fragment: str | None) -> str:
    """Readable plain text of an HTML fragment: tags dropped, entities decoded once."""
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return collapse_whitespace(fragment)
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return collapse_whitespace("".join(parser.parts))


# ``scheme://userinfo@``: userinfo ends at the first "@" before any "/", "?" or "#".
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@")


def redact_url(url: str) -> str:
    """``https://user:secret@host/feed`` as ``https://***@host/feed``.

    For everything a person or the database sees (logs, errors, ``status``, source ids);
    the URL used to fetch keeps its credentials. Any text works: every URL in it is redacted.
    """
    return _USERINFO_RE.sub(r"\1***@", url)
