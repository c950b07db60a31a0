"""Why (not) this paper: replay one paper's path for one person and name the first step
where it stopped, with the evidence.

The steps are the daemon's own: a source lists it (``bot.sources``), the alert-age rule
lets it through (``AlertRule``), a subscription matches it (the matcher's programs, via
``bot.matching.whynot``), and the outbox delivers it (``bot.delivery.why_delivery``). Each
is judged from what the store recorded, not guessed, so the answer says what happened.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from bot.delivery.digests import DigestPlanner
from bot.delivery.why_delivery import delivery_step
from bot.delivery.why_model import (
    HIT_DAYS,
    Reason,
    Step,
    StepName,
    SubscriptionCheck,
    Verdict,
    Why,
)
from bot.errors import SourceError
from bot.matching.analysis import PaperTerms, analyze_paper, with_likes
from bot.matching.query import Query, like_keys, parse_query, render
from bot.matching.query.parser import STORED_LIMITS
from bot.matching.trial import try_queries
from bot.matching.whynot import failed_clause, holds, suggest_edit
from bot.models import AlertRule, MatchRecord, Paper, SourceKind, Subscription, User
from bot.relevance.similar import LikeTargets
from bot.settings import Settings, SourceConfig
from bot.sources.arxiv_api import ArxivApiSource
from bot.sources.http import HttpClient
from bot.store.protocols import Store

Clock = Callable[[], datetime]
# Asks arXiv itself about a paper no source listed (its categories): None when arXiv
# knows no such paper; raises ``SourceError`` when arXiv cannot be asked.
Lookup = Callable[[str], Awaitable[Paper | None]]
_CATEGORY = re.compile(r"cat:\s*([a-z\-]+(?:\.[A-Za-z\-]+)?\*?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WhyContext:
    store: Store
    settings: Settings
    digests: DigestPlanner
    clock: Clock
    lookup: Lookup | None = None  # with an arxiv_api source configured


async def explain_paper(ctx: WhyContext, user: User, key: str) -> Why:
    """The path of paper ``key`` (canonical, no version) for ``user``."""
    paper = await ctx.store.get_paper(key)
    if paper is None:
        asked = await _ask_arxiv(ctx, key)
        evidence = (*asked, *source_evidence(ctx.settings))
        step = Step(StepName.SOURCES, False, _unseen_text(key), evidence)
        return Why(key, None, Verdict.NOT_SEEN, (step,))
    steps = [_seen_step(paper)]
    subs = await ctx.store.list_subscriptions(user.owner)
    record = (await ctx.store.get_matches(user.owner, [key])).get(key)
    if record is None:
        return await _unmatched(ctx, paper, subs, steps)
    steps += [Step(StepName.AGE, True, "new enough to alert"), _matched_step(record, subs)]
    verdict, reason, step = await delivery_step(ctx.store, ctx.digests, user, record, subs)
    return Why(key, paper.title, verdict, (*steps, step), reason)


def _unseen_text(key: str) -> str:
    return f"no configured source has listed {key}: paperbell never saw it"


def arxiv_lookup(settings: Settings) -> Lookup | None:
    """Asks the first configured arXiv API source about one paper, over a client of its
    own (why is rare: no client is kept open for it); None without such a source."""
    config = next((s for s in settings.sources if s.kind is SourceKind.ARXIV_API), None)
    if config is None:
        return None

    async def lookup(key: str) -> Paper | None:
        async with HttpClient(settings.http) as http:
            return await ArxivApiSource(config, http).lookup(key)

    return lookup


async def _ask_arxiv(ctx: WhyContext, key: str) -> tuple[str, ...]:
    """What arXiv says of the paper: its primary category against the arXiv feeds."""
    if ctx.lookup is None or key.startswith("feed:"):
        return ()
    try:
        found = await ctx.lookup(key)
    except SourceError as exc:
        return (f"arXiv could not be asked about it: {exc}",)
    if found is None:
        return (f"arXiv knows no paper {key}",)
    return (_category_line(found, feed_categories(ctx.settings)),)


def feed_categories(settings: Settings) -> list[str]:
    """The categories the configured arXiv sources list, in order, each once."""
    arxiv = (SourceKind.ARXIV_RSS, SourceKind.ARXIV_API)
    cats = [c for s in settings.sources if s.kind in arxiv for c in _arxiv_categories(s)]
    return list(dict.fromkeys(cats))


def _category_line(paper: Paper, cats: Sequence[str]) -> str:
    primary = paper.categories[0] if paper.categories else "?"
    listed = ", ".join(cats) or "none"
    if any(_covers(c, primary) for c in cats):
        when = f"{paper.published:%Y-%m-%d}" if paper.published else "?"
        return (
            f"arXiv lists it under {primary}, which your arXiv feeds ({listed}) include: it was "
            f"announced {when}, when none of your sources fetched that listing"
        )
    return f"its primary category is {primary}, not in your arXiv feeds ({listed})"


def _covers(feed: str, category: str) -> bool:
    """``cs.LG`` covers ``cs.LG``; ``cs.*`` or ``cs`` covers every ``cs.`` category."""
    feed = feed.rstrip("*").rstrip(".").lower()
    return category.lower() == feed or category.lower().startswith(feed + ".")


def source_evidence(settings: Settings) -> tuple[str, ...]:
    """Which configured sources could list a paper, in plain words."""
    lines = [_source_line(s) for s in settings.sources]
    if not any(s.kind is SourceKind.HF_DAILY for s in settings.sources):
        lines.append("Hugging Face Daily Papers is not among your sources")
    return tuple(lines) or ("no source is configured (PAPERBELL_SOURCES)",)


def _source_line(src: SourceConfig) -> str:
    if src.kind is SourceKind.HF_DAILY:
        return (
            f"Hugging Face Daily Papers (last {src.days} days) never featured it "
            "(it lists only the papers picked for its daily page)"
        )
    if src.kind in (SourceKind.ARXIV_RSS, SourceKind.ARXIV_API):
        cats = _arxiv_categories(src)
        listed = ", ".join(cats) if cats else src.query or src.url
        return (
            f"arXiv ({src.kind}) lists new papers of {listed}: a paper whose primary "
            "category is not among them is not in your arXiv feeds"
        )
    return f"feed {src.name!r} never listed it"


def _arxiv_categories(src: SourceConfig) -> list[str]:
    if src.kind is SourceKind.ARXIV_API:
        return _CATEGORY.findall(src.query)
    tail = unquote(urlsplit(src.url).path).rstrip("/").rsplit("/", 1)[-1]
    return [c for c in tail.split("+") if c]


def _seen_step(paper: Paper) -> Step:
    seen = ", ".join(paper.sources) or "a source"
    when = paper.first_seen.strftime("%Y-%m-%d %H:%M UTC") if paper.first_seen else "?"
    return Step(StepName.SOURCES, True, f"seen in {seen}, first on {when}")


def _matched_step(record: MatchRecord, subs: Sequence[Subscription]) -> Step:
    by_id = {s.id: s for s in subs}
    names = [f"#{i} `{by_id[i].normalized}`" if i in by_id else f"#{i}" for i in record.sub_ids]
    when = record.matched_at.strftime("%Y-%m-%d %H:%M UTC")
    words = ", ".join({w.lower(): w for w in reversed(record.words)}.values())
    text = f"matched {' and '.join(names)} on {when}" + (f" (words: {words})" if words else "")
    return Step(StepName.MATCH, True, text)


async def _unmatched(
    ctx: WhyContext, paper: Paper, subs: Sequence[Subscription], steps: list[Step]
) -> Why:
    late = AlertRule(max_age=timedelta(days=ctx.settings.alert_max_age_days)).late(paper)
    if late:
        steps.append(_too_old_step(paper, ctx.settings.alert_max_age_days))
        return Why(paper.key, paper.title, Verdict.TOO_OLD, tuple(steps))
    steps.append(Step(StepName.AGE, True, "new enough to alert"))
    checks = await check_subscriptions(ctx, paper, subs)
    hits = [c for c in checks if c.matched]
    if not hits:
        return _no_match(paper, checks, steps)
    verdict, reason, step = _matching_now(paper, subs, hits)
    return Why(paper.key, paper.title, verdict, (*steps, step), reason)


def _too_old_step(paper: Paper, days: int) -> Step:
    published = paper.published.date().isoformat() if paper.published else "?"
    seen = paper.first_seen.date().isoformat() if paper.first_seen else "?"
    return Step(
        StepName.AGE,
        False,
        f"too old to alert: published {published}, first seen {seen}, more than {days} "
        "day(s) later (PAPERBELL_ALERT_MAX_AGE_DAYS); stored quietly, never matched",
    )


def _no_match(paper: Paper, checks: Sequence[SubscriptionCheck], steps: list[Step]) -> Why:
    lines = tuple(_check_line(c) for c in checks) or ("you have no subscription",)
    text = "no subscription of yours matched it"
    steps.append(Step(StepName.MATCH, False, text, lines, tuple(checks)))
    suggestion = next((c.suggestion for c in checks if c.suggestion), None)
    return Why(paper.key, paper.title, Verdict.NO_MATCH, tuple(steps), suggestion=suggestion)


def _check_line(c: SubscriptionCheck) -> str:
    line = f"#{c.sub_id} `{c.query}`: {c.reason}"
    if c.suggestion:
        line += f"; `{c.suggestion}` would have matched it ({c.suggestion_hits} of "
        line += f"{c.suggestion_total} papers of the last {HIT_DAYS} days)"
    return line


def _matching_now(
    paper: Paper, subs: Sequence[Subscription], hits: Sequence[SubscriptionCheck]
) -> tuple[Verdict, Reason | None, Step]:
    """Subscriptions match the paper but no match was recorded: say which rule held it."""
    by_id = {s.id: s for s in subs}
    live = [c for c in hits if not c.paused]
    if not live:
        names = ", ".join(f"#{c.sub_id}" for c in hits)
        text = f"{names} would match it but {'is' if len(hits) == 1 else 'are'} paused"
        return Verdict.NOT_DELIVERED, Reason.PAUSED, Step(StepName.MATCH, False, text)
    created = min(by_id[c.sub_id].created_at for c in live)
    if paper.first_seen is not None and paper.first_seen < created:
        text = (
            f"seen on {paper.first_seen.date()}, before your matching subscription existed "
            f"({created.date()}): papers are matched once, when they arrive"
        )
        return Verdict.TOO_OLD, None, Step(StepName.AGE, False, text)
    text = "it matches, but the match step has not reached it yet (it is queued)"
    return Verdict.NOT_DELIVERED, Reason.NOT_MATCHED_YET, Step(StepName.MATCH, False, text)


async def check_subscriptions(
    ctx: WhyContext, paper: Paper, subs: Sequence[Subscription]
) -> list[SubscriptionCheck]:
    """Each subscription tried on the paper, with the failing clause and a suggestion."""
    terms = await _terms(ctx.store, paper, subs)
    recent = await ctx.store.list_papers(since=ctx.clock() - timedelta(days=HIT_DAYS))
    return [await _check(ctx.store, sub, paper, terms, recent) for sub in subs]


async def _terms(store: Store, paper: Paper, subs: Sequence[Subscription]) -> PaperTerms:
    wanted = set().union(*(like_keys(_parsed(s)) for s in subs)) if subs else set()
    terms = analyze_paper(paper)
    if not wanted:
        return terms
    targets = await LikeTargets.load(store, wanted)
    similar = await targets.similar(store, [paper.key])
    return with_likes(terms, similar.get(paper.key, frozenset()))


def _parsed(sub: Subscription) -> Query:
    return parse_query(sub.normalized, limits=STORED_LIMITS)


async def _check(
    store: Store, sub: Subscription, paper: Paper, terms: PaperTerms, recent: Sequence[Paper]
) -> SubscriptionCheck:
    query = _parsed(sub)
    if holds(query, terms):
        return SubscriptionCheck(sub.id, sub.normalized, True, sub.paused)
    failed = failed_clause(query, paper, terms)
    edit = suggest_edit(query, paper, terms)
    base = SubscriptionCheck(
        sub.id, sub.normalized, False, sub.paused,
        failed.clause if failed else None, failed.reason if failed else None,
    )  # fmt: skip
    if edit is None:
        return base
    found = await try_queries(store, {0: edit}, recent)
    return replace(
        base, suggestion=render(edit), suggestion_hits=len(found), suggestion_total=len(recent)
    )
