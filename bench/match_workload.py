"""The matching benchmark's workload: recombined real papers and seeded subscriptions.

Papers: the 213 real listings of tests/data/papers.jsonl, then recombinations of them —
each bench paper takes the title of one listing and the first half of one abstract
joined to the second half of another — so every word is real text while there are as many
distinct papers as asked for. Authors, categories and sources come from the synthetic
assignments of ``_corpus.load_corpus``, upvotes from the listing (or a seeded count).

Subscriptions: drawn with a fixed seed from the corpus's mid-frequency words (their
index term, the stem matching sees, is in ``WORD_BAND`` of the papers: about 1 to 10 of
the 213 listings; commoner ones are stop-words and generic words) and two-word phrases
seen in ``PHRASE_BAND`` of the papers whose words are not stop-words (each in at most
``STOPWORD_SHARE`` of the papers). Shapes, in a fixed mix: single words, phrases,
prefixes (a word cut short by 1–3 letters, at least 5 kept), 2–3-term ANDs, ORs,
AND-of-OR, NOTs, title/abstract/author scopes, categories, sources, upvotes.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TypeAlias

from _corpus import AUTHOR_NAMES, load_corpus
from bot.matching.analysis import term_key, text_tokens
from bot.matching.query import Query, parse_query
from bot.models import Paper

SEED = 20240611
WORD_BAND = (0.005, 0.05)
PHRASE_BAND = (0.0025, 0.05)
STOPWORD_SHARE = 0.2
_Shape: TypeAlias = "Callable[[random.Random, Vocabulary], str]"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def recombined_papers(n: int, seed: int = SEED) -> list[Paper]:
    corpus = load_corpus()
    rng = random.Random(seed)
    papers = list(corpus[:n])
    while len(papers) < n:
        head, tail, named = rng.choice(corpus), rng.choice(corpus), rng.choice(corpus)
        a, b = _SENTENCE.split(head.abstract), _SENTENCE.split(tail.abstract)
        abstract = " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        upvotes = (
            tail.upvotes if tail.upvotes is not None else rng.choice((None, rng.randrange(60)))
        )
        papers.append(
            replace(
                named,
                key=f"bench-{len(papers)}",
                abstract=abstract,
                authors=head.authors,
                categories=tail.categories,
                sources=tail.sources if upvotes is None else ("hf", *tail.sources[1:]),
                upvotes=upvotes,
            )
        )
    return papers


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]
    phrases: list[str]
    authors: list[str]
    categories: list[str]


def mid_frequency(papers: list[Paper]) -> Vocabulary:
    words: Counter[str] = Counter()
    stems: Counter[str] = Counter()  # what matching sees: a word stands for its stem
    pairs: Counter[tuple[str, str]] = Counter()
    for p in papers:
        toks = text_tokens(p.title) + text_tokens(p.abstract)
        words.update({t for t in toks if t.isalpha() and len(t) > 2})
        stems.update({term_key(t) for t in toks})
        pairs.update(set(pairwise(toks)))
    n = len(papers)

    def within(count: int, band: tuple[float, float]) -> bool:
        return band[0] * n <= count <= band[1] * n

    content = {w for w, c in words.items() if c <= STOPWORD_SHARE * n}
    return Vocabulary(
        words=sorted(w for w in words if within(stems[term_key(w)], WORD_BAND)),
        phrases=sorted(
            f"{a} {b}"
            for (a, b), c in pairs.items()
            if a in content and b in content and within(c, PHRASE_BAND)
        ),
        authors=sorted({t for name in AUTHOR_NAMES for t in text_tokens(name) if len(t) > 2}),
        categories=sorted({c for p in papers for c in p.categories}),
    )


def subscriptions(n: int, vocab: Vocabulary, seed: int = SEED) -> list[tuple[str, Query]]:
    """``n`` (text, parsed query) pairs; every text goes through the real parser."""
    rng = random.Random(seed)
    shapes = [shape for shape, weight in _SHAPES for _ in range(weight)]
    out: list[tuple[str, Query]] = []
    while len(out) < n:
        text = rng.choice(shapes)(rng, vocab)
        out.append((text, parse_query(text)))
    return out


def _word(rng: random.Random, v: Vocabulary) -> str:
    return rng.choice(v.words)


def _phrase(rng: random.Random, v: Vocabulary) -> str:
    return f'"{rng.choice(v.phrases)}"'


def _prefix(rng: random.Random, v: Vocabulary) -> str:
    """A word cut short to catch its inflections, as people write them (``quantiz*``)."""
    word = rng.choice([w for w in v.words if len(w) >= 6])
    return word[: max(5, len(word) - rng.randint(1, 3))] + "*"


def _term(rng: random.Random, v: Vocabulary) -> str:
    return _phrase(rng, v) if rng.random() < 0.25 else _word(rng, v)


def _and(k: int) -> _Shape:
    return lambda rng, v: " ".join(_term(rng, v) for _ in range(k))


def _or(rng: random.Random, v: Vocabulary) -> str:
    return " OR ".join(_term(rng, v) for _ in range(rng.randint(2, 3)))


_SHAPES: list[tuple[_Shape, int]] = [
    (_word, 22),
    (_phrase, 10),
    (_prefix, 5),
    (_and(2), 14),
    (_and(3), 6),
    (_or, 10),
    (lambda r, v: f"{_term(r, v)} ({_or(r, v)})", 7),
    (lambda r, v: f"{_term(r, v)} -{_word(r, v)}", 6),
    (lambda r, v: f"{_word(r, v)} {_word(r, v)} -{_term(r, v)}", 3),
    (lambda r, v: f"title:{_word(r, v)}", 4),
    (lambda r, v: f"abstract:{_phrase(r, v)} {_word(r, v)}", 2),
    (lambda r, v: f"author:{r.choice(v.authors)} {_word(r, v)}", 3),
    (lambda r, v: f"cat:{r.choice(v.categories)} {_term(r, v)}", 3),
    (lambda r, v: f"cat:{r.choice(v.categories).split('.')[0]}.* {_prefix(r, v)}", 1),
    (lambda r, v: f"{_word(r, v)} upvotes:>={r.choice((1, 2, 5, 10, 20))}", 2),
    (lambda r, v: f"source:hf upvotes:>={r.choice((5, 10, 20, 40))}", 1),
]
