"""Following a paper one received: who may follow what, and the list with its changes.

A person follows a paper paperbell sent them (a match of theirs is recorded); then each
change ingest sees on it (``bot.store.changes``) brings one short note
(``bot.delivery.follow_notes``). A new version is never announced as a new paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.delivery.follow_notes import note_text
from bot.errors import NotFoundError, UsageError
from bot.messages import Channel
from bot.models import Owner, Paper
from bot.store.protocols import Follow, PaperChange, Store

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Followed:
    """One followed paper with what happened to it since."""

    follow: Follow
    paper: Paper | None
    changes: tuple[PaperChange, ...]

    @property
    def title(self) -> str:
        return self.paper.title if self.paper else "(no longer stored)"

    @property
    def change_lines(self) -> tuple[str, ...]:
        """Each change in a few words, oldest first: ``2026-11-26: new version v2 (was v1)``."""
        return tuple(f"{c.changed_at:%Y-%m-%d}: {note_text(c)[0]}" for c in self.changes)


async def follow_paper(
    store: Store,
    owner: Owner,
    key: str,
    channel: Channel,
    now: datetime,
    *,
    received_by: Owner | None = None,
) -> tuple[Paper, bool]:
    """Follow paper ``key`` for ``owner``; the paper and whether the follow is new.
    ``received_by``: who the paper went to, when not ``owner`` (a Discord channel's alert,
    followed by one of its members). Raises ``NotFoundError`` for a paper never seen,
    ``UsageError`` for one not received."""
    paper = await store.get_paper(key)
    if paper is None:
        raise NotFoundError(
            f"paperbell has never seen paper {key}: only papers it sent you can be followed"
        )
    if key not in await store.get_matches(received_by or owner, [key]):
        raise UsageError(
            f"you did not receive paper {key}: only papers paperbell sent you can be "
            "followed (ask `why` about it to see where it stopped)"
        )
    return paper, await store.follow(owner, key, channel, now)


async def unfollow_paper(store: Store, owner: Owner, key: str) -> None:
    if not await store.unfollow(owner, key):
        raise NotFoundError(f"you do not follow paper {key}: nothing to stop")


async def followed_papers(store: Store, owner: Owner) -> list[Followed]:
    """The papers ``owner`` follows, newest follow first, each with its changes."""
    follows = await store.list_follows(owner)
    keys = [f.paper_key for f in follows]
    papers = await store.get_papers(keys) if keys else {}
    log = await store.paper_change_log(keys)
    return [Followed(f, papers.get(f.paper_key), tuple(log.get(f.paper_key, ()))) for f in follows]
