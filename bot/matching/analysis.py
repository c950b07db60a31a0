"""Text analysis shared by subscription queries and papers: fold, tokenize, stem.

A paper is analysed once (``analyze_paper``); queries go through the same functions, so
both sides always agree. The steps, in order:

1. LaTeX fold (``latex_fold``), regex-based: accent commands become the accented letter
   (``G\\"odel`` → ``Gödel``), ``{\\l}``-style letters their letter, Greek commands their
   name (``$\\alpha$`` → ``alpha``), every other command, ``$``, ``{`` and ``}`` vanish and
   the words they wrap stay. pylatexenc's ``LatexNodes2Text`` does this properly but took
   about 7 ms per abstract, more than all other matching work together.
2. Fold (``fold``): NFKD, combining accents dropped, casefold, the few letters NFKD keeps
   (ł ø æ œ đ ð þ ħ ı) spelt in ASCII, and Greek letters spelt out, so ``β-VAE``,
   ``$\\beta$-VAE`` and ``beta-VAE`` all read ``beta vae``.
3. Tokens (``tokenize``): maximal runs of letters and digits. Anything else separates, so
   hyphenated and slashed words split: ``in-context`` → ``in``, ``context``.
4. Index terms (``term_key``): the Snowball English stem (PyStemmer), then a trailing ``s``
   that Snowball left on a stem of three or more characters is dropped (not after another
   ``s``, not on Snowball's invariant words such as ``news``). This is how acronym plurals
   meet their singular (``llms`` → ``llm``, ``gpus`` → ``gpu``, ``cnns`` → ``cnn``): a rule
   on the folded text, not on the original capitals, so it is the same for a query typed
   in lower case and for a paper that wrote ``LLMs``.

Index keys (``PaperTerms.keys``) carry a namespace so one set holds every field: a bare
term is "title or abstract", ``ti:`` restricts it to the title, a pair of words
``("in", "context")`` is two adjacent words of the title or of the abstract (unstemmed:
phrase search), ``au:`` is a word of an author's name, ``cat:``/``cat*:`` a category and
its prefixes, ``src:`` a source, ``like:`` a stored paper this one is similar to (added by
the match step from the papers' vectors, ``with_likes``). ``pre:``/``au*:`` keys (word
prefixes) are not stored: a matcher derives the few it needs from ``words``/``author_words``.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain, pairwise
from typing import TypeAlias

import Stemmer

from bot.models import Paper

TITLE_NS = "ti:"
AUTHOR_NS = "au:"
PREFIX_NS = "pre:"
AUTHOR_PREFIX_NS = "au*:"
CAT_NS = "cat:"
CAT_PREFIX_NS = "cat*:"
SOURCE_NS = "src:"
# A paper similar to a stored one (``like:``): added per paper by ``with_likes``.
LIKE_NS = "like:"

# An index key: a namespaced string, or a pair of adjacent words.
Key: TypeAlias = str | tuple[str, str]

# Haystack positions in PaperTerms.hays.
HAY_ANY, HAY_TITLE, HAY_ABSTRACT, HAY_AUTHOR = 0, 1, 2, 3
# Separates title from abstract and one author from the next in a haystack, so a phrase
# never spans two of them. Never part of a token.
HAY_BREAK = "|"

_STEMMER = Stemmer.Stemmer("english")
# Snowball keeps these as they are; dropping their "s" would make "news" match "new".
_INVARIANT = frozenset({"news", "atlas", "cosmos", "bias", "andes"})

_TOKEN = re.compile(r"[^\W_]+")
# Same tokens for ASCII text, five times faster: punctuation to spaces, then split.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
}
# \"o, \"{o}, \'{\i}, \v{s}, \c c. Letter-named accents need "{" or a space after them,
# so \bf or \cite are left for the generic command rule.
_LATEX_ACCENT = re.compile(
    r"""\\(?:(["'`^~=.])|([uvHckrdb])(?=[\s{]))\s*(?:\{\s*\\?([A-Za-z])\s*\}|\\?([A-Za-z]))"""
)
_LATEX_LETTERS = {
    "ss": "ß",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "i": "i",
    "j": "j",
}
_LATEX_LETTER = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z]) ?")
_GREEK_NAMES = (
    "alpha|beta|gamma|delta|epsilon|zeta|eta|theta|iota|kappa|lambda|mu|nu|xi|omicron|pi|"
    "rho|sigma|tau|upsilon|phi|chi|psi|omega"
)
_LATEX_GREEK = re.compile(r"\\(?:var)?(" + _GREEK_NAMES + r")(?![A-Za-z])", re.I)
# Citation keys, labels and URLs are not words of the paper.
_LATEX_REFERENCE = re.compile(r"\\(?:cite[pt]?|ref|eqref|label|url|href)\*?\{[^}]*\}")
_LATEX_COMMAND = re.compile(r"\\(?:[A-Za-z]+\*?|.)")
_LATEX_DROP = re.compile(r"[${}]")


def _fold_table() -> dict[int, str]:
    """Letters NFKD leaves whole, and Greek letters spelt out (α → alpha)."""
    table = {
        ord(k): v
        for k, v in zip("łøæœđðþħı", ["l", "o", "ae", "oe", "d", "d", "th", "h", "i"], strict=True)
    }
    for code in range(0x3B1, 0x3CA):  # α..ω, final sigma included
        name = unicodedata.name(chr(code), "")
        if name.startswith("GREEK SMALL LETTER"):
            table[code] = name.rsplit(" ", 1)[-1].lower()
    return table


_FOLD_TABLE = _fold_table()


def latex_fold(text: str) -> str:
    """Strip LaTeX markup, keeping the words it wraps (``\\textbf{Deep}`` → ``Deep``)."""
    if "\\" not in text and "$" not in text and "{" not in text:
        return text
    text = _LATEX_REFERENCE.sub(" ", text)
    text = _LATEX_ACCENT.sub(_accent, text)
    text = _LATEX_LETTER.sub(lambda m: _LATEX_LETTERS[m.group(1)], text)
    text = _LATEX_GREEK.sub(lambda m: f" {m.group(1).lower()} ", text)
    text = _LATEX_COMMAND.sub(" ", text)
    return unicodedata.normalize("NFC", _LATEX_DROP.sub("", text))


def _accent(m: re.Match[str]) -> str:
    mark = _ACCENTS[m.group(1) or m.group(2)]
    return (m.group(3) or m.group(4)) + mark


def fold(text: str) -> str:
    """Case-, accent- and compatibility-fold ``text`` (idempotent)."""
    if text.isascii():
        return text.lower()
    text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    text = text.casefold().translate(_FOLD_TABLE)
    # casefold can expose a new decomposable letter; a second pass settles it.
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def tokenize(folded: str) -> list[str]:
    """Tokens of already-folded text, in order."""
    if folded.isascii():
        return folded.translate(_ASCII_SEPARATORS).split()
    return _TOKEN.findall(folded)


def text_tokens(text: str) -> list[str]:
    """Tokens of raw paper or query text: LaTeX fold, fold, tokenize."""
    return tokenize(fold(latex_fold(text)))


@lru_cache(maxsize=1 << 17)
def term_key(token: str) -> str:
    """The index term of one folded token: its stem, acronym plurals made singular."""
    stem: str = _STEMMER.stemWord(token)
    if len(stem) >= 3 and stem[-1] == "s" and stem[-2] != "s" and stem not in _INVARIANT:
        stem = stem[:-1]
    # Interned: a paper's terms and the matcher's keys are then the same objects, and
    # lookups in the matcher's big dicts compare pointers instead of characters.
    return sys.intern(stem)


@lru_cache(maxsize=1 << 16)
def spaced_key(namespace: str, value: str) -> str:
    """``namespace + value``, interned (``ti:transform``, ``au:hinton``)."""
    return sys.intern(namespace + value)


def fold_name(name: str) -> str:
    """A source name as ``source:`` compares it: folded, spaces collapsed."""
    return " ".join(fold(name).split())


def hay(token_lists: Iterable[list[str]]) -> str:
    """Space-padded token text (`` a b | c d ``): phrase and prefix checks are substring
    searches, and the break keeps a phrase inside one part."""
    return " " + f" {HAY_BREAK} ".join(" ".join(t) for t in token_lists) + " "


@dataclass(frozen=True, slots=True)
class PaperTerms:
    """Everything matching needs from one paper, computed once by ``analyze_paper``.

    ``keys``: index keys (see module doc). ``hays``: haystacks for phrases and prefixes, by
    ``HAY_ANY``/``HAY_TITLE``/``HAY_ABSTRACT``/``HAY_AUTHOR``. ``words``/``author_words``:
    distinct tokens of title+abstract / of author names. ``abstract_terms``: index terms
    of the abstract alone. ``title``, ``abstract``, ``authors``: LaTeX-folded text, for
    highlighting.
    """

    keys: frozenset[Key]
    hays: tuple[str, str, str, str]
    upvotes: int | None
    words: frozenset[str] = frozenset()
    author_words: frozenset[str] = frozenset()
    abstract_terms: frozenset[str] = frozenset()
    title: str = ""
    abstract: str = ""
    authors: tuple[str, ...] = ()


def analyze_paper(paper: Paper) -> PaperTerms:
    title, abstract = latex_fold(paper.title), latex_fold(paper.abstract)
    authors = tuple(latex_fold(a) for a in paper.authors)
    title_toks, abstract_toks = tokenize(fold(title)), tokenize(fold(abstract))
    author_toks = [tokenize(fold(a)) for a in authors]
    title_words, abstract_words = frozenset(title_toks), frozenset(abstract_toks)
    title_terms = frozenset(map(term_key, title_words))
    abstract_terms = frozenset(map(term_key, abstract_words))
    author_words = frozenset(t for toks in author_toks for t in toks)
    keys: frozenset[Key] = frozenset(
        chain[Key](
            title_terms,
            abstract_terms,
            [spaced_key(TITLE_NS, t) for t in title_terms],
            pairwise(title_toks),
            pairwise(abstract_toks),
            [spaced_key(AUTHOR_NS, t) for t in author_words],
            _tag_keys(tuple(paper.categories), tuple(paper.sources)),
        )
    )
    title_hay, abstract_hay = hay((title_toks,)), hay((abstract_toks,))
    hays = (title_hay + HAY_BREAK + abstract_hay, title_hay, abstract_hay, hay(author_toks))
    return PaperTerms(
        keys, hays, paper.upvotes, title_words | abstract_words, author_words, abstract_terms,
        title, abstract, authors,
    )  # fmt: skip


def with_likes(terms: PaperTerms, similar: Iterable[str]) -> PaperTerms:
    """``terms`` holding a ``like:`` key for each stored paper it is similar to."""
    extra = [spaced_key(LIKE_NS, key) for key in similar]
    return replace(terms, keys=terms.keys.union(extra)) if extra else terms


@lru_cache(maxsize=1024)
def _tag_keys(categories: tuple[str, ...], sources: tuple[str, ...]) -> frozenset[str]:
    cats = {c.strip().lower() for c in categories}
    keys = {CAT_NS + c for c in cats}
    keys.update(CAT_PREFIX_NS + c[:i] for c in cats for i in range(1, len(c) + 1))
    keys.update(SOURCE_NS + fold_name(s) for s in sources)
    return frozenset(keys)


def key_frequencies(papers: Iterable[PaperTerms]) -> dict[Key, float]:
    """Share of ``papers`` holding each key: the rarity estimate a ``Matcher`` can use to
    index each subscription under its most selective terms."""
    counts: Counter[Key] = Counter()
    total = 0
    for terms in papers:
        counts.update(terms.keys)
        total += 1
    return {k: n / total for k, n in counts.items()} if total else {}


def surface_words(text: str) -> set[str]:
    """The distinct words of ``text`` as written (NFC), each a run of letters and digits."""
    text = unicodedata.normalize("NFC", text)
    # ASCII: the same words as the regex finds, ten times faster (see tokenize).
    return set(
        text.translate(_ASCII_SEPARATORS).split() if text.isascii() else _TOKEN.findall(text)
    )


def surface_forms(text: str) -> dict[str, set[str]]:
    """Folded token → the words of ``text`` (as written) that produce it, for highlighting."""
    out: dict[str, set[str]] = {}
    for word in surface_words(text):
        for tok in word_tokens(word):
            out.setdefault(tok, set()).add(word)
    return out


@lru_cache(maxsize=1 << 17)
def word_tokens(word: str) -> tuple[str, ...]:
    """The folded tokens of one word as written: words recur from paper to paper."""
    return tuple(tokenize(fold(word)))


@lru_cache(maxsize=1 << 17)
def word_terms(word: str) -> tuple[str, ...]:
    """The distinct index terms of one word as written."""
    return tuple(dict.fromkeys(term_key(tok) for tok in word_tokens(word)))
