"""CLI commands about papers: ``ingest``, ``papers``, ``search``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bot.daemon.report import item_notes
from bot.daemon.resources import open_resources
from bot.delivery.planning import plan_matches
from bot.errors import UsageError
from bot.exitcodes import ExitCode
from bot.matching.query import parse_query
from bot.matching.search import search_papers
from bot.matching.step import match_cycle
from bot.models import INT_MAX, IngestReport, Paper, SourceKind
from bot.settings import DEFAULT_URLS, Settings, SourceConfig
from bot.sources.ingest import run_cycle, utc_now
from bot.store.open import reading_store


def add_paper_commands(commands: Any) -> None:
    ingest = commands.add_parser("ingest", help="fetch every source once and store new papers")
    ingest.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="KIND:URL",
        help="fetch this source instead of the configured ones (repeatable), "
        "e.g. feed:file:examples/papers.xml, arxiv_rss:https://rss.arxiv.org/rss/cs.LG, "
        "hf_daily, or arxiv_api:QUERY ('arxiv_api:cat:cs.LG AND abs:diffusion')",
    )
    ingest.set_defaults(handler=cmd_ingest)

    papers = commands.add_parser("papers", help="list stored papers, newest first")
    papers.add_argument("--since", type=parse_since, metavar="ISO-DATE")
    papers.add_argument("--limit", type=positive_int, default=None)
    papers.add_argument("--json", action="store_true", help="one JSON object per line")
    papers.set_defaults(handler=cmd_papers, read_only=True)

    search = commands.add_parser(
        "search",
        help="stored papers a query matches, best first (the subscription query language)",
        description="Search stored papers with the subscription query language: stems, "
        'word*, "phrases", AND/OR/NOT, title:/abstract:/author:, cat:, source:, upvotes:. '
        "A bare word looks in titles and abstracts; use author:NAME for authors.",
    )
    search.add_argument("text", nargs="+", metavar="QUERY")
    search.add_argument("--limit", type=positive_int, default=10)
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.set_defaults(handler=cmd_search, read_only=True)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    if value > INT_MAX:  # no store could take it
        raise argparse.ArgumentTypeError(f"{value} is too large (at most {INT_MAX})")
    return value


def parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date (use 2026-11-20 or 2026-11-20T08:00Z)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_source_option(text: str) -> SourceConfig:
    """``KIND:URL`` where KIND is everything before the first colon; for ``arxiv_api`` what
    follows is the arXiv search query (the URL is the default). A kind with a default URL
    (``hf_daily``) may stand alone."""
    name, sep, rest = text.partition(":")
    kinds = ", ".join(k.value for k in SourceKind)
    if name not in set(SourceKind):
        raise UsageError(f"--source {text!r}: start with a kind ({kinds}) and a colon")
    kind = SourceKind(name)
    what = "an arXiv query" if kind is SourceKind.ARXIV_API else "a URL"
    if not rest and (sep or kind not in DEFAULT_URLS or kind is SourceKind.ARXIV_API):
        raise UsageError(f"--source {text!r}: give {what} after {kind}:")
    field = "query" if kind is SourceKind.ARXIV_API else "url"
    try:
        return SourceConfig.model_validate({"kind": kind, **({field: rest} if rest else {})})
    except ValidationError as exc:
        raise UsageError(f"--source {text!r}: {validation_reason(exc)}") from None


def validation_reason(exc: ValidationError) -> str:
    """The first problem pydantic found, as one line without its documentation link."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    reason = first["msg"].removeprefix("Value error, ")
    return f"{where}: {reason}" if where else reason


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    configs = [parse_source_option(text) for text in args.source] or None
    async with open_resources(settings) as res:
        report = await run_cycle(
            res.sources(configs),
            res.store,
            alert_max_age_days=settings.alert_max_age_days,
            follow_upvotes=settings.follow_upvotes,
        )
        matched = await match_cycle(res.service.index, res.store, utc_now(), plan_matches)
        await res.store.queue_follow_notes(utc_now())
    print(format_report(report))
    if len(res.service.index):
        print(f"{matched.matched} new match(es) for {matched.owners} subscriber(s)")
    return ExitCode.OK if report.ok else ExitCode.FAILURE


def format_report(report: IngestReport) -> str:
    head = ("source", "fetched", "new", "updated", "unchanged", "skipped", "status")
    rows: list[tuple[str, ...]] = [head]
    for s in report.summaries:
        status = f"error: {s.error}" if s.error else "; ".join([s.note or "ok", *item_notes(s)])
        counts = (s.fetched, s.new, s.updated, s.unchanged, s.skipped)
        rows.append((s.name, *map(str, counts), status))
    width = max(len(r[0]) for r in rows)
    lines = [
        f"{r[0]:<{width}}  " + "  ".join(f"{c:>9}" for c in r[1:6]) + f"  {r[6]}" for r in rows
    ]
    lines.append(f"{len(report.new_papers)} new paper(s), {len(report.updated_papers)} updated")
    return "\n".join(lines)


async def cmd_papers(args: argparse.Namespace, settings: Settings) -> int:
    async with reading_store(settings) as store:
        papers = await store.list_papers(since=args.since, limit=args.limit)
    _print_papers(papers, as_json=args.json)
    return ExitCode.OK


async def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    sources = frozenset(s.name for s in settings.sources)
    query = parse_query(" ".join(args.text), sources=sources)  # a bad query is usage (2)
    async with reading_store(settings) as store:
        papers = await search_papers(store, query, args.limit)
    if not papers and not args.json:
        print("no stored paper matches")
    _print_papers(papers, as_json=args.json, numbered=True)
    return ExitCode.OK


def _print_papers(papers: list[Paper], *, as_json: bool, numbered: bool = False) -> None:
    for rank, paper in enumerate(papers, 1):
        if as_json:
            print(json.dumps(paper_json(paper), ensure_ascii=False))
        else:
            print(format_paper_line(paper, rank if numbered else None))


def paper_json(paper: Paper) -> dict[str, object]:
    def iso(when: datetime | None) -> str | None:
        return when.isoformat() if when else None

    return {
        "id": paper.key,
        "version": paper.version,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": list(paper.authors),
        "categories": list(paper.categories),
        "published": iso(paper.published),
        "updated": iso(paper.updated),
        "url": paper.url,
        "pdf_url": paper.links.pdf,
        "hf_url": paper.links.hf,
        "code_url": paper.links.code,
        "sources": list(paper.sources),
        "upvotes": paper.upvotes,
        "comments": paper.comments,
        "github_stars": paper.github_stars,
        "first_seen": iso(paper.first_seen),
    }


def format_paper_line(paper: Paper, rank: int | None = None) -> str:
    ident = paper.key + (f"v{paper.version}" if paper.version else "")
    when = paper.published or paper.first_seen
    date = when.date().isoformat() if when else "----------"
    votes = f"  ▲{paper.upvotes}" if paper.upvotes else ""
    prefix = f"{rank:>2}. " if rank is not None else ""
    authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    line = f"{prefix}{date}  {ident}  {paper.title}{votes}  [{', '.join(paper.sources)}]"
    return line + (f"\n      {authors}" if authors else "")
