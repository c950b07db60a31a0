"""Notes about followed papers: the words of one change, and the plan that sends it.

The store queues one outbox row per follower and change (``FollowStore``); at send time
this module reads the change and the paper back and says, in one short note, what
happened: a new arXiv version (a word diff of title, abstract, authors, comments and
journal reference), code released,
or an upvote count reached. The rules of who may get anything are the policy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from bot.delivery.notifier import Channel, FollowNoteMessage, Notifier, Recipient
from bot.delivery.word_diff import token_diff
from bot.errors import PermanentDeliveryError
from bot.store.protocols import ChangeKind, Delivery, PaperChange, Store

FOLLOW = "follow"  # the ``purpose`` of a note's outbox row
NOTE_GONE = "the change or the paper is no longer stored"
_FIELDS = (
    ("title", "title"),
    ("abstract", "abstract"),
    ("authors", "authors"),
    ("comment", "comments"),
    ("journal_ref", "journal reference"),
)


@runtime_checkable
class FollowNoteSender(Protocol):
    """A channel that can send a note about a followed paper (email and Discord)."""

    async def send_follow_note(self, message: FollowNoteMessage) -> None: ...


def note_text(change: PaperChange) -> tuple[str, tuple[str, ...]]:
    """The headline and the lines of the note about ``change``."""
    if change.kind is ChangeKind.VERSION:
        was, now = change.before.get("version"), change.after.get("version")
        lines = tuple(_field_lines(change.before, change.after))
        return f"new version v{now} (was v{was})", lines or ("the text is unchanged",)
    if change.kind is ChangeKind.CODE:
        return "code released", (f"repository: {change.after.get('code')}",)
    count = change.after.get("upvotes")
    return f"reached {count} upvotes on Hugging Face", ()


def _field_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, label in _FIELDS:
        old, new = before.get(name), after.get(name)
        joiner = ", " if isinstance(new, list) else " "
        diff = token_diff(_tokens(old), _tokens(new), joiner)
        if diff is not None:
            lines.append(f"{label}: {diff}")
    return lines


def _tokens(value: object) -> list[str]:
    """A list (authors) compares item by item, a text word by word."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value or "").split()


async def note_message(
    store: Store, row: Delivery, recipient: Recipient
) -> FollowNoteMessage | None:
    """The note a row carries, or None when its change or paper is gone."""
    key = str(row.payload.get("paper", ""))
    change_id = row.payload.get("change")
    changes = (await store.paper_change_log([key])).get(key, [])
    change = next((c for c in changes if c.id == change_id), None)
    paper = await store.get_paper(key)
    if change is None or paper is None:
        return None
    headline, lines = note_text(change)
    return FollowNoteMessage(row.key, recipient, key, paper.title, paper.url, headline, lines)


def sender(notifier: Notifier, channel: Channel) -> FollowNoteSender:
    if not isinstance(notifier, FollowNoteSender):
        raise PermanentDeliveryError(f"the {channel} channel cannot send notes about papers")
    return notifier
