"""The sample papers the benches and the tests share, built from tests/data/papers.jsonl.

It lives in bench/ because bench/ must stand alone (it imports nothing from tests/), while
tests may import from here: one copy of the papers, used by both. The data file is read
by path and stays with the tests' data. Only ``bot`` is imported, so the tests need none
of the bench extras.

The file holds 213 real Hugging Face listings (title, abstract, sometimes upvotes and an
author count) and nothing else, so two deterministic flavours fill in the rest:

* ``load_corpus`` — for matching: keys ``corpus-N``, author names with accents and TeX
  accents (so folding is exercised), categories and sources cycled by position;
* ``corpus`` — for messages: arXiv-style ids with abs/pdf/hf/code links, plain names.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from bot.models import Links, Paper

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "papers.jsonl"

# --- for matching -----------------------------------------------------------------------------

# Synthetic: the corpus has author counts but no names.
AUTHOR_NAMES = (
    "Yann LeCun",
    "Geoffrey Hinton",
    'J\\"urgen Schmidhuber',
    "Przemys{\\l}aw Biecek",
    "Fei-Fei Li",
    "Götz Müller",
    "Zoë Kravitz-Chen",
    "Andrej Karpathy",
    "Chelsea Finn",
    "Sébastien Bubeck",
    "Oriol Vinyals",
    "Ilya Sutskever",
    "Daphne Koller",
    "Percy Liang",
)
# Synthetic: categories and sources, cycled by position.
CATEGORY_SETS = (
    ("cs.LG", "stat.ML"),
    ("cs.CL",),
    ("cs.CV", "cs.LG"),
    ("cs.AI", "cs.CL"),
    ("cs.RO",),
    ("eess.AS", "cs.SD"),
    ("q-bio.NC", "cs.LG"),
    ("math.OC",),
)
FEED_NAME = "Lab Blog"


@cache
def load_corpus() -> tuple[Paper, ...]:
    papers = []
    for i, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        upvotes = row.get("upvotes")
        count = min(int(row.get("authors") or 0), 5) or 1 + i % 3
        authors = tuple(AUTHOR_NAMES[(i * 3 + k * 5) % len(AUTHOR_NAMES)] for k in range(count))
        sources: tuple[str, ...] = ("hf",) if upvotes is not None else ("arxiv",)
        if i % 5 == 0:
            sources += (FEED_NAME,)
        papers.append(
            Paper(
                key=f"corpus-{i}",
                title=row["title"],
                abstract=row["abstract"],
                authors=authors,
                categories=CATEGORY_SETS[i % len(CATEGORY_SETS)],
                sources=sources,
                upvotes=upvotes,
            )
        )
    return tuple(papers)


# --- for messages -----------------------------------------------------------------------------

_NAMES = (
    "Ana García", "Jürgen Weiß", "Mei Chen", "Olusegun Adeyemi", "Priya Raman",
    "Tomás Novák", "Sara Lindqvist", "Kenji Watanabe", "Léa Dubois", "Omar Haddad",
)  # fmt: skip
_CATEGORIES = (("cs.CV", "cs.LG"), ("cs.CL",), ("cs.LG", "stat.ML"), ("quant-ph",))


@cache
def corpus() -> tuple[Paper, ...]:
    papers = []
    for number, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines()):
        papers.append(_paper(number, json.loads(line)))
    return tuple(papers)


def _paper(number: int, row: dict[str, Any]) -> Paper:
    key = f"2411.{10000 + number:05d}"
    # The corpus records only how many authors a paper has; names are made up from a pool.
    count = int(row.get("authors") or number % 8 + 1)
    authors = [_NAMES[(number + i) % len(_NAMES)] for i in range(count)]
    return Paper(
        key=key,
        title=str(row["title"]),
        abstract=str(row.get("abstract", "")),
        authors=tuple(str(a) for a in authors),
        categories=_CATEGORIES[number % len(_CATEGORIES)],
        links=Links(
            abs=f"https://arxiv.org/abs/{key}",
            pdf=f"https://arxiv.org/pdf/{key}",
            hf=f"https://huggingface.co/papers/{key}",
            code=f"https://github.com/example/repo{number}" if number % 3 == 0 else None,
        ),
        upvotes=int(row.get("upvotes") or number % 50),
        sources=("hf",),
    )
