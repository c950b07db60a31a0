"""The cycle bench's workload: a feed of papers built from real listings, and the
subscriptions people would write, each calibrated to a hit rate of 0.5–5 %.

Papers: the 213 real listings of tests/data/papers.jsonl, then recombinations of them
(the title of one listing, the first half of one abstract and the second half of
another), so every word is real text while there are as many distinct papers as asked
for. Each gets a new arXiv id, 1–8 authors drawn from common surnames (Zipf-weighted,
as on arXiv: a few names are everywhere) and arXiv categories with realistic shares.
They are written as one Atom feed, the way a feed source delivers them.

Subscriptions: candidates of the shapes people write — broad single words, word
prefixes, quoted phrases, two words, an OR, a NOT, ``title:``, ``author:`` surnames,
``cat:`` alone (small categories) or with a word — drawn with a fixed seed from the
corpus's mid-frequency words (document frequency 0.5–5 %) and phrases; then every
candidate is matched against the bench papers and only those with a hit rate of
0.5–5 % are kept. Users draw five distinct ones each from that pool, so popular
subscriptions repeat across users as they do in a community.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from bot.matching.analysis import analyze_paper, term_key, text_tokens
from bot.matching.matcher import Matcher
from bot.matching.query import parse_query
from bot.models import Paper

SEED = 20261204
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "papers.jsonl"
HIT_BAND = (0.005, 0.05)
STOPWORD_SHARE = 0.2
SUBS_PER_USER = 5
SKEW = 2.0
PUBLISHED = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _names(text: str) -> list[str]:
    return text.split()


SURNAMES = _names(
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo "
    "Kim Lee Park Choi Jung Nguyen Tran Pham Singh Kumar Sharma Gupta Patel Das Shah "
    "Smith Johnson Brown Jones Miller Davis Garcia Rodriguez Wilson Martinez Anderson "
    "Taylor Thomas Moore Jackson Martin Thompson White Lopez Gonzalez Harris Clark Lewis "
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoffmann Schäfer Koch "
    "Rossi Russo Ferrari Esposito Bianchi Romano Dubois Bernard Moreau Laurent Lefebvre "
    "Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Sato Kato "
    "Ivanov Smirnov Kuznetsov Popov Novak Kowalski Nowak Wiśniewski Silva Santos Oliveira "
    "Souza Pereira Costa Almeida Cohen Levi Friedman Andersson Johansson Nielsen Hansen"
)
FIRST_NAMES = _names(
    "Wei Jing Yu Xin Hao Lei Min Jun Yan Tao Ji-woo Min-jun Anh Minh Rahul Priya Arjun "
    "Anna Maria Laura Sarah Emily Julia David Michael James John Daniel Thomas Lukas "
    "Felix Marco Luca Giulia Pierre Camille Hiroshi Yuki Kenji Olga Ivan Piotr Zofia "
    "Ana Pedro João Noa Yael Erik Ingrid Lars Sofia"
)
# arXiv categories a paper lists, with the share of ML-ish papers that list them.
CATEGORIES = (
    ("cs.LG", 0.42), ("cs.CL", 0.24), ("cs.CV", 0.22), ("cs.AI", 0.2), ("stat.ML", 0.1),
    ("cs.RO", 0.05), ("cs.CR", 0.03), ("cs.IR", 0.03), ("cs.NE", 0.025), ("eess.AS", 0.02),
    ("cs.SD", 0.02), ("math.OC", 0.02), ("cs.HC", 0.02), ("q-bio.NC", 0.015),
    ("eess.IV", 0.015), ("cs.DC", 0.012), ("physics.comp-ph", 0.008), ("q-fin.ST", 0.006),
)  # fmt: skip


@dataclass(frozen=True)
class Workload:
    papers: list[Paper]
    subs: list[str]  # subscription texts, SUBS_PER_USER per user, in user order
    pool: dict[str, float]  # every kept candidate and its hit rate on the papers

    def hit_rates(self, n: int) -> dict[str, float]:
        rates = sorted(self.pool[s] for s in self.subs[:n])

        def pick(q: float) -> float:
            return rates[min(len(rates) - 1, int(q * len(rates)))]

        return {
            "mean": round(sum(rates) / len(rates), 4),
            "p10": pick(0.1),
            "median": pick(0.5),
            "p90": pick(0.9),
            "min": rates[0],
            "max": rates[-1],
        }


def load_listings(path: Path = CORPUS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def bench_papers(n: int, seed: int = SEED) -> list[Paper]:
    listings, rng = load_listings(), random.Random(seed)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(SURNAMES))]
    papers = []
    for i in range(n):
        if i < len(listings):
            title, abstract = listings[i]["title"], listings[i]["abstract"]
        else:
            named, head, tail = (rng.choice(listings) for _ in range(3))
            a, b = _SENTENCE.split(head["abstract"]), _SENTENCE.split(tail["abstract"])
            title, abstract = named["title"], " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        surnames = rng.choices(SURNAMES, weights, k=rng.randint(1, 8))
        authors = tuple(f"{rng.choice(FIRST_NAMES)} {s}" for s in dict.fromkeys(surnames))
        cats = [c for c, share in CATEGORIES if rng.random() < share] or ["cs.LG"]
        rng.shuffle(cats)
        published = PUBLISHED - timedelta(minutes=i % 600)
        key = f"2603.{10000 + i:05d}"
        papers.append(
            Paper(
                key=key,
                title=title,
                abstract=abstract,
                version=1,
                authors=authors,
                categories=tuple(cats[:3]),
                published=published,
                updated=published,
            )
        )
    return papers


def atom_feed(papers: list[Paper]) -> bytes:
    """The papers as one Atom document, as a feed source fetches it."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        "<title>paperbell cycle bench</title><id>urn:paperbell:bench</id>",
        f"<updated>{PUBLISHED.isoformat()}</updated>",
    ]
    for p in papers:
        stamp = (p.published or PUBLISHED).isoformat()
        link = f"https://arxiv.org/abs/{p.key}v{p.version}"
        out.append(
            f"<entry><id>{link}</id><title>{escape(p.title)}</title>"
            f"<link href={quoteattr(link)}/>"
            f'<link rel="related" href="https://arxiv.org/pdf/{p.key}v{p.version}"/>'
            f"<published>{stamp}</published><updated>{stamp}</updated>"
            + "".join(f"<author><name>{escape(a)}</name></author>" for a in p.authors)
            + "".join(f"<category term={quoteattr(c)}/>" for c in p.categories)
            + f'<summary type="text">{escape(p.abstract)}</summary></entry>'
        )
    out.append("</feed>")
    return "\n".join(out).encode("utf-8")


# --- subscriptions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]
    phrases: list[str]
    surnames: list[str]
    categories: list[str]
    topics: list[list[str]]  # per listing, its band words: words people pair up


def vocabulary(papers: list[Paper]) -> Vocabulary:
    """Words and phrases whose document frequency in the real listings is 0.5–5 %."""
    listings = [Paper(key=str(i), title=r["title"], abstract=r["abstract"]) for i, r in
                enumerate(load_listings())]  # fmt: skip
    words: Counter[str] = Counter()
    stems: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for p in listings:
        toks = text_tokens(p.title) + text_tokens(p.abstract)
        words.update({t for t in toks if t.isalpha() and len(t) > 5})
        stems.update({term_key(t) for t in toks})
        pairs.update(set(pairwise(toks)))
    n = len(listings)

    def within(count: int) -> bool:
        return HIT_BAND[0] * n <= count <= HIT_BAND[1] * n

    content = {w for w, c in words.items() if c <= STOPWORD_SHARE * n}
    band = sorted(w for w in words if within(stems[term_key(w)]))
    kept = set(band)
    topics = [sorted({t for t in text_tokens(f"{p.title} {p.abstract}") if t in kept})
              for p in listings]  # fmt: skip
    return Vocabulary(
        words=band,
        phrases=sorted(
            f"{a} {b}" for (a, b), c in pairs.items() if a in content and b in content and c >= 2
        ),
        surnames=sorted({a.split()[-1] for p in papers for a in p.authors}),
        categories=sorted({c for p in papers for c in p.categories}),
        topics=[t for t in topics if len(t) >= 2],
    )


_Shape = Callable[[random.Random, Vocabulary], str]


def _word(r: random.Random, v: Vocabulary) -> str:
    return r.choice(v.words)


def _phrase(r: random.Random, v: Vocabulary) -> str:
    return f'"{r.choice(v.phrases)}"'


def _pair(r: random.Random, v: Vocabulary) -> str:
    """Two words that occur together in one real abstract, as a topic is written."""
    return " ".join(r.sample(r.choice(v.topics), 2))


def _prefix(r: random.Random, v: Vocabulary) -> str:
    word = r.choice([w for w in v.words if len(w) >= 7])
    return word[: max(5, len(word) - r.randint(1, 3))] + "*"


SHAPES: list[tuple[_Shape, int]] = [
    (_word, 30),  # broad single words: diffusion
    (_prefix, 4),  # quantiz*
    (_phrase, 18),  # "reinforcement learning"
    (_pair, 10),  # two words, anywhere: protein folding
    (lambda r, v: f"{_word(r, v)} OR {_word(r, v)}", 6),
    (lambda r, v: f"{_word(r, v)} -{_word(r, v)}", 4),
    (lambda r, v: f"title:{_word(r, v)}", 6),
    (lambda r, v: f"author:{r.choice(v.surnames)}", 10),  # follow a name
    (lambda r, v: f"cat:{r.choice(v.categories)}", 4),  # a small category
    (lambda r, v: f"cat:{r.choice(v.categories)} {_word(r, v)}", 6),
    (lambda r, v: f"cat:{r.choice(v.categories)} {_phrase(r, v)}", 4),
]


def calibrated_pool(papers: list[Paper], candidates: int, seed: int = SEED) -> dict[str, float]:
    """Distinct candidate texts kept only if they match 0.5–5 % of ``papers``."""
    rng, vocab = random.Random(seed), vocabulary(papers)
    shapes = [shape for shape, weight in SHAPES for _ in range(weight)]
    texts: dict[str, None] = {}
    for _ in range(candidates * 3):
        if len(texts) >= candidates:
            break
        texts[rng.choice(shapes)(rng, vocab)] = None
    ordered = list(texts)
    matcher = Matcher()
    for i, text in enumerate(ordered):
        matcher.add(i, parse_query(text))
    hits: Counter[int] = Counter()
    for p in papers:
        hits.update(matcher.match_ids(analyze_paper(p)))
    n = len(papers)
    return {
        ordered[i]: round(hits[i] / n, 4)
        for i in range(len(ordered))
        if HIT_BAND[0] <= hits[i] / n <= HIT_BAND[1]
    }


def user_subscriptions(pool: dict[str, float], n: int, seed: int = SEED) -> list[str]:
    """``n`` texts, ``SUBS_PER_USER`` distinct ones per user, drawn from the pool.

    Narrow ones are likelier (weight ``rate ** -SKEW``): people tune a subscription until it
    brings a readable number of papers (paperbell warns above 20 a day), so most sit near
    the low end of the band and a few broad ones near the top.
    """
    rng, texts = random.Random(seed + 1), sorted(pool)
    weights = [pool[t] ** -SKEW for t in texts]
    subs: list[str] = []
    while len(subs) < n:
        picked = list(dict.fromkeys(rng.choices(texts, weights, k=SUBS_PER_USER * 2)))
        if len(picked) >= SUBS_PER_USER:
            subs += picked[:SUBS_PER_USER]
    return subs[:n]


def build_workload(papers: int, max_subs: int) -> Workload:
    built = bench_papers(papers)
    pool = calibrated_pool(built, candidates=min(40_000, max(4_000, max_subs // 2)))
    return Workload(built, user_subscriptions(pool, max_subs), pool)


def history_papers() -> list[Paper]:
    """Yesterday's papers, already stored when the daemon starts: the real listings under
    other ids (the matcher weighs terms by how common they are in recent papers)."""
    return [
        Paper(key=f"2603.{i:05d}", title=r["title"], abstract=r["abstract"], version=1,
              published=PUBLISHED - timedelta(days=1), categories=("cs.LG",))
        for i, r in enumerate(load_listings())
    ]  # fmt: skip
