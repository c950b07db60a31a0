"""What changed on a paper between two stored records, as followers care about it. Pure.

Three changes are worth a note: a new arXiv version (the text fields before and after, for
a word diff), code released (Hugging Face's repository link appears), and the upvote count
crossing a threshold. Counters moving, a source added, a category merged: not news.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.models import Paper
from bot.store.records import ChangeKind

Change = tuple[ChangeKind, Mapping[str, Any], Mapping[str, Any]]


def paper_changes(old: Paper, new: Paper, upvote_threshold: int) -> list[Change]:
    """The changes from ``old`` to ``new`` (the same paper); ``upvote_threshold`` 0: none."""
    found: list[Change] = []
    if new.version is not None and old.version is not None and new.version > old.version:
        found.append((ChangeKind.VERSION, _text(old), _text(new)))
    if new.links.code and not old.links.code:
        found.append((ChangeKind.CODE, {}, {"code": new.links.code}))
    before, after = old.upvotes or 0, new.upvotes or 0
    if upvote_threshold > 0 and before < upvote_threshold <= after:
        found.append((ChangeKind.UPVOTES, {"upvotes": before}, {"upvotes": after}))
    return found


def _text(paper: Paper) -> dict[str, Any]:
    return {
        "version": paper.version,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": list(paper.authors),
        "comment": paper.arxiv_comment,
        "journal_ref": paper.journal_ref,
    }
