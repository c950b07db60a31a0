"""A person's data to take away: subscriptions, received papers and their 👍 / 👎 as JSON;
the papers as BibTeX."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.models import MatchRecord, Paper, Subscription, User
from bot.store.protocols import Feedback

EXPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Received:
    record: MatchRecord
    paper: Paper


def export_json(
    user: User,
    subs: Sequence[Subscription],
    received: Sequence[Received],
    now: datetime,
    ratings: Sequence[Feedback] = (),
) -> str:
    body = {
        "version": EXPORT_VERSION,
        "exported_at": now.isoformat(),
        "email": user.email,
        "settings": {
            "timezone": user.timezone,
            "digest_hour": user.digest_hour,
            "frequency": str(user.digest_frequency),
            "weekday": user.digest_weekday,
            "paused": user.paused,
        },
        "subscriptions": [_sub_json(s) for s in subs],
        "papers": [_received_json(r) for r in received],
        "ratings": [
            {"key": f.paper_key, "rating": str(f.rating), "rated_at": f.rated_at.isoformat()}
            for f in ratings
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def _sub_json(sub: Subscription) -> dict[str, object]:
    return {
        "id": sub.id,
        "query": sub.query,
        "normalized": sub.normalized,
        "deliver": sorted(str(m) for m in sub.deliver),
        "paused": sub.paused,
        "min_relevance": sub.min_relevance,
        "created_at": sub.created_at.isoformat(),
    }


def _received_json(item: Received) -> dict[str, object]:
    paper = item.paper
    return {
        "key": paper.key,
        "title": paper.title,
        "authors": list(paper.authors),
        "url": paper.url,
        "published": paper.published.isoformat() if paper.published else None,
        "matched_at": item.record.matched_at.isoformat(),
        "words": list(item.record.words),
        "subscriptions": list(item.record.sub_ids),
    }


def export_bibtex(subs: Sequence[Subscription], received: Sequence[Received]) -> str:
    """One ``@misc`` entry per paper; the subscriptions as a comment heading the file."""
    lines = ["@comment{paperbell subscriptions:"]
    lines += [f"  #{s.id}: {_bib_text(s.normalized)}" for s in subs]
    lines.append("}")
    used: set[str] = set()
    for item in received:
        lines += ["", _bib_entry(item.paper, _unique(_cite_key(item.paper), used))]
    return "\n".join(lines) + "\n"


def _bib_entry(paper: Paper, key: str) -> str:
    fields = [("title", paper.title), ("author", " and ".join(paper.authors))]
    if paper.published:
        fields.append(("year", str(paper.published.year)))
    if paper.is_arxiv:
        fields += [("eprint", paper.key), ("archivePrefix", "arXiv")]
        if paper.categories:
            fields.append(("primaryClass", paper.categories[0]))
    if paper.url:
        fields.append(("url", paper.url))
    body = ",\n".join(f"  {name} = {{{_bib_text(value)}}}" for name, value in fields if value)
    return f"@misc{{{key},\n{body}\n}}"


def _bib_text(text: str) -> str:
    """Balanced braces only: an unbalanced one would swallow the rest of the file."""
    depth, out = 0, []
    for char in " ".join(text.split()):
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                continue
            depth -= 1
        out.append(char)
    return "".join(out) + "}" * depth


def _cite_key(paper: Paper) -> str:
    surname = paper.authors[0].split()[-1] if paper.authors else "paper"
    ascii_name = unicodedata.normalize("NFKD", surname).encode("ascii", "ignore").decode()
    year = str(paper.published.year) if paper.published else ""
    ident = re.sub(r"[^A-Za-z0-9]", "", paper.key.split(":")[-1])[:12]
    return f"{re.sub(r'[^A-Za-z]', '', ascii_name).lower() or 'paper'}{year}{ident}"


def _unique(key: str, used: set[str]) -> str:
    candidate, n = key, 1
    while candidate in used:
        n += 1
        candidate = f"{key}{n}"
    used.add(candidate)
    return candidate
