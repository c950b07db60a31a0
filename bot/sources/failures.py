"""How many times in a row a source has failed, and since when, with a hint at the cause.

Kept in the ``meta`` table (one key per source) rather than in ``sources_state``, so no
migration is needed; the key holds a hash of the source id, not the id itself, because a
feed URL may carry a password. ``run_cycle`` updates it, so the daemon, ``paperbell
ingest`` and the health check all see the same count.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from bot.errors import FetchError, RateLimitedError, SourceError, SourceParseError
from bot.models import FailureStreak
from bot.store.protocols import MetaStore

_PREFIX = "source.failures:"
_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_SERVER = "the server is failing; it usually recovers by itself"
_HTTP_HINTS = {
    404: "check the URL",
    410: "check the URL",
    401: "access refused; check the URL and any credentials in it",
    403: "access refused; check the URL and any credentials in it",
}


def source_key(source_id: str) -> str:
    """A short stable name for a source that reveals nothing of its URL."""
    return hashlib.sha256(source_id.encode()).hexdigest()[:16]


def failure_hint(exc: BaseException) -> str:
    """What an operator should look at first, from the kind of error."""
    status = _STATUS.search(str(exc))
    code = int(status.group(1)) if status else None
    if isinstance(exc, RateLimitedError) or code == 429:
        return "rate limited; backing off until the next attempt"
    if code is not None:
        return _HTTP_HINTS.get(code, _SERVER if code >= 500 else "")
    if "no such file" in str(exc):
        return "check the URL"
    if isinstance(exc, FetchError):
        return "network or host down?"
    if isinstance(exc, SourceParseError):
        return "not a feed?"
    return "" if isinstance(exc, SourceError) else "a fault in paperbell; see the log"


async def get_streak(store: MetaStore, key: str) -> FailureStreak | None:
    """The streak of the source with this ``source_key``; ``None`` when it is not failing."""
    raw = await store.get_meta(_PREFIX + key)
    if not raw:
        return None
    data = json.loads(raw)
    since = datetime.fromisoformat(data["since"])
    return FailureStreak(int(data["count"]), since, str(data.get("hint", "")))


async def note_failure(store: MetaStore, source_id: str, hint: str, now: datetime) -> FailureStreak:
    """Count one more failure; returns the streak including it."""
    key = source_key(source_id)
    before = await get_streak(store, key)
    count, since = (before.count, before.since) if before else (0, now)
    streak = FailureStreak(count + 1, since, hint)
    value = {"count": streak.count, "since": streak.since.isoformat(), "hint": hint}
    await store.set_meta(_PREFIX + key, json.dumps(value))
    return streak


async def end_streak(store: MetaStore, source_id: str) -> FailureStreak | None:
    """The source succeeded: forget its streak; returns the streak that ended, if any."""
    key = source_key(source_id)
    ended = await get_streak(store, key)
    if ended is not None:
        await store.set_meta(_PREFIX + key, "")
    return ended
