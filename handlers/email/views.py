"""What a mail shows of each paper: ``PaperView`` and ``SectionView``, built once per
message from the core's alert and digest messages, so the text and HTML parts carry the
same content. A paper's own part (title, authors, abstract, links) is cached per paper:
a run shows the same papers to many readers."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from bot.delivery.notifier import (
    AlertItem,
    DigestMessage,
    MatchedSubscription,
)
from bot.models import Paper
from bot.text import display_text
from handlers.email import format as fmt


@dataclass(frozen=True, slots=True)
class PaperView:
    """One paper as both parts show it."""

    title: str
    url: str | None
    authors: str
    meta: str  # "cs.CV, cs.LG · 42 upvotes"
    abstract: str
    pdf: str | None
    code: str | None
    words: tuple[str, ...]
    caught_by: tuple[str, ...]  # queries of the subscriptions that matched it
    because: str = ""  # why the reader's model ranks it here
    like_url: str | None = None  # signed 👍 / 👎 links (a confirm page first)
    dislike_url: str | None = None
    follow_url: str | None = None  # signed: follow the paper (a confirm page first)


@dataclass(frozen=True, slots=True)
class SectionView:
    subscription: MatchedSubscription
    papers: tuple[PaperView, ...]  # shown in full
    listed_above: int = 0  # also matched here, already shown in an earlier section
    hidden: int = 0  # past the digest limit
    titles: tuple[PaperView, ...] = ()  # shown by title: not among the digest's best


def safe_url(url: str | None) -> str | None:
    """Only http(s) links are placed; a feed could carry ``javascript:`` or worse."""
    url = (url or "").strip()
    return url if url[:8].lower().startswith(("https://", "http://")) else None


def display(text: str) -> str:
    """NFC, so an accent typed as two code points highlights like the composed letter."""
    return unicodedata.normalize("NFC", display_text(text))


def _capped(text: str, limit: int, shorten: Callable[[str], str] = str) -> str:
    """Displayable and at most ``limit`` characters; only a slice of a huge field is read."""
    return fmt.cap_chars(shorten(display(text[: limit * 4])), limit)


def best_first(item: AlertItem) -> tuple[float, float, int, str]:
    return item.rank


def paper_view(item: AlertItem) -> PaperView:
    card = paper_card(item.paper)
    # Built field by field: dataclasses.replace costs more than the rest of a paper's view.
    return PaperView(
        card.title,
        card.url,
        card.authors,
        card.meta,
        card.abstract,
        card.pdf,
        card.code,
        item.words,
        caught_by(tuple(s.query for s in item.subscriptions)),
        item.because,
        safe_url(item.feedback.like) if item.feedback else None,
        safe_url(item.feedback.dislike) if item.feedback else None,
        safe_url(item.feedback.follow) if item.feedback else None,
    )


@functools.lru_cache(maxsize=1024)  # a reader's few queries, over and over
def caught_by(queries: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fmt.unique_in_order(queries))


# A run shows the same papers to many readers. Keyed by the paper's key and held with the
# paper itself: an lru_cache keyed by the Paper hashed every field of it on each of an
# alert's ~80 lookups; the paper objects come from one cache, so identity is the check.
# That cache reads the papers again every minute: an equal paper read again takes the
# place of the one held, or every later lookup would compare every field of the two.
_CARDS: dict[str, tuple[Paper, PaperView]] = {}
_CARDS_KEPT = 4096


def paper_card(paper: Paper) -> PaperView:
    """What a paper shows whoever reads it; ``paper_view`` adds the reader's matches."""
    hit = _CARDS.get(paper.key)
    if hit is not None and hit[0] is paper:
        return hit[1]
    if hit is not None and hit[0] == paper:
        _CARDS[paper.key] = (paper, hit[1])
        return hit[1]
    if len(_CARDS) >= _CARDS_KEPT:
        _CARDS.clear()  # a new day's papers; the old ones will not come back
    card = _card(paper)
    _CARDS[paper.key] = (paper, card)
    return card


def _card(paper: Paper) -> PaperView:
    categories = paper.categories[: fmt.CATEGORIES_SHOWN]
    meta = [", ".join(fmt.cap_chars(c, fmt.AUTHOR_CHARS) for c in categories)] if categories else []
    if paper.upvotes:
        meta.append(fmt.plural(paper.upvotes, "upvote"))
    return PaperView(
        title=_capped(paper.title, fmt.TITLE_CHARS) or paper.key[:200],
        url=safe_url(paper.url),
        authors=fmt.format_authors(paper.authors),
        meta=" · ".join(meta),
        abstract=_capped(paper.abstract, fmt.ABSTRACT_CHARS, fmt.trim_words),
        pdf=safe_url(paper.links.pdf),
        code=safe_url(paper.links.code),
        words=(),
        caught_by=(),
    )


def digest_sections(
    message: DigestMessage, limit: int, full: int | None = None
) -> tuple[list[SectionView], int]:
    """Sections with each paper shown once, at most ``limit`` papers, the digest's best
    ``full`` (default: all) in full and the others by title; and the "N more"."""
    best = _best_keys(message, full if full is not None else limit)
    shown: set[str] = set()
    dropped: set[str] = set()
    views: list[SectionView] = []
    for section in message.sections:
        papers: list[PaperView] = []
        titles: list[PaperView] = []
        above = hidden = 0
        for item in sorted(section.items, key=best_first):
            key = item.paper.key
            if key in shown:
                above += 1
            elif len(shown) >= limit:
                dropped.add(key)
                hidden += 1
            else:
                shown.add(key)
                if key in best:
                    papers.append(paper_view(item))
                else:
                    titles.append(paper_card(item.paper))
        sub = section.subscription
        views.append(SectionView(sub, tuple(papers), above, hidden, tuple(titles)))
    return views, message.more + len(dropped - shown)


def _best_keys(message: DigestMessage, count: int) -> set[str]:
    """The ``count`` best papers of the digest, wherever their section: the ones shown
    in full, as an alert shows its best (the rest by title; a day can bring 50)."""
    items = sorted((i for s in message.sections for i in s.items), key=best_first)
    best: set[str] = set()
    for item in items:
        if len(best) >= count:
            break
        best.add(item.paper.key)
    return best
