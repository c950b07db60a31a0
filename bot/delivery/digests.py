"""When a user's email digest is due, and what it holds.

Each user has a local *slot*: ``digest_hour`` o'clock in their timezone on every day their
frequency counts (daily; Monday to Friday; one weekday; never). The digest for a local date
is due once that date's slot has passed, and only the latest passed slot is ever
considered, so after days of downtime one catch-up digest goes out, never one per missed
day. Slots are instants (zoneinfo, ``fold=0``): an hour skipped in spring means the first
instant after the gap, a repeated hour in autumn its first occurrence; either way one slot
per date, and the deliveries table allows one digest per (owner, date).

A digest is created at a slot only for matches that were already waiting at that slot:
a paper matched at 02:00 waits for the next 08:00 digest instead of setting off a late
"yesterday" digest in the night.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.accounts.addresses import LinkBuilder
from bot.delivery.notifier import (
    AlertItem,
    Channel,
    DigestMessage,
    DigestSection,
    MatchedSubscription,
    MessageLinks,
    Recipient,
    RecipientKind,
)
from bot.delivery.paper_cache import PaperCache
from bot.delivery.ranking import relevance_of
from bot.messages import no_announcement_words, source_failed_words
from bot.models import (
    DeliveryMode,
    DigestFrequency,
    MatchRecord,
    Owner,
    Paper,
    SourceState,
    Subscription,
    User,
)
from bot.store.paging import every_subscription, every_user
from bot.store.protocols import Delivery, DueDigest, Store

Clock = Callable[[], datetime]
WEEK = 7
NOTE_MAX_AGE = timedelta(hours=24)
# Digests created per call of the store: a few transactions each, the objects let go.
CREATE_CHUNK = 500
QUIET_DAY = timedelta(hours=24)  # an empty digest counts the papers of this last stretch
# Notes that say nothing a reader cares about.
QUIET_NOTES = frozenset({"not modified"})
ARXIV_EMPTY = "no announcement (weekend or holiday)"
SOURCE_LABELS = {"hf_daily": "Hugging Face", "arxiv_rss": "arXiv", "arxiv_api": "arXiv"}


def slot(user: User, day: date) -> datetime:
    """The UTC instant of the user's digest hour on a local date."""
    local = datetime.combine(day, time(user.digest_hour), tzinfo=ZoneInfo(user.timezone))
    return local.astimezone(UTC)


def counts(user: User, day: date) -> bool:
    """Whether the user's frequency gives ``day`` a digest."""
    match user.digest_frequency:
        case DigestFrequency.DAILY:
            return True
        case DigestFrequency.WEEKDAYS:
            return day.weekday() < 5
        case DigestFrequency.WEEKLY:
            return day.weekday() == user.digest_weekday
    return False


def due_local_date(user: User, now_utc: datetime) -> date | None:
    """The local date of the latest slot at or before ``now_utc``, or ``None``.

    ``None`` for frequency off, and when that slot came before the account existed.
    Whether that date's digest exists already is the caller's question.
    """
    if user.digest_frequency is DigestFrequency.OFF:
        return None
    today = now_utc.astimezone(ZoneInfo(user.timezone)).date()
    for back in range(WEEK + 1):
        day = today - timedelta(days=back)
        if counts(user, day) and slot(user, day) <= now_utc:
            return day if slot(user, day) >= user.created_at else None
    return None


def next_local_date(user: User, now_utc: datetime) -> date | None:
    """The local date of the first slot after ``now_utc``."""
    if user.digest_frequency is DigestFrequency.OFF:
        return None
    today = now_utc.astimezone(ZoneInfo(user.timezone)).date()
    for ahead in range(WEEK + 1):
        day = today + timedelta(days=ahead)
        if counts(user, day) and slot(user, day) > now_utc:
            return day
    return None


# --- what a digest says ----------------------------------------------------------------------


def source_label(source_id: str) -> str:
    """``hf_daily:https://...`` -> ``Hugging Face``; a feed by its host name."""
    kind, _, url = source_id.partition(":")
    if kind in SOURCE_LABELS:
        return SOURCE_LABELS[kind]
    host = urlsplit(url).hostname or url or kind
    return host.removeprefix("www.")


def _clock_time(when: datetime, zone: ZoneInfo, now: datetime) -> str:
    local = when.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def failing(state: SourceState) -> bool:
    """The source's last attempt failed: an error since its last success, or no success."""
    if state.last_error_at is None:
        return False
    return state.last_success is None or state.last_error_at > state.last_success


def source_notes(states: Iterable[SourceState], timezone: str, now: datetime) -> tuple[str, ...]:
    """One line per source worth mentioning, in the reader's timezone; duplicates once."""
    zone = ZoneInfo(timezone)
    notes: dict[str, None] = {}
    for state in sorted(states, key=lambda s: s.source_id):
        label = source_label(state.source_id)
        if failing(state):
            since = state.last_success or state.last_error_at
            assert since is not None
            notes[source_failed_words(label, _clock_time(since, zone, now))] = None
        elif _fresh_note(state, now):
            note = state.last_note or ""
            empty = note == ARXIV_EMPTY
            notes[no_announcement_words(label) if empty else f"{label}: {note}"] = None
    return tuple(notes)


def _fresh_note(state: SourceState, now: datetime) -> bool:
    if not state.last_note or state.last_note in QUIET_NOTES or state.last_success is None:
        return False
    return now - state.last_success <= NOTE_MAX_AGE


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One paper of a digest and the user's subscriptions that want it there."""

    record: MatchRecord
    paper: Paper
    subs: tuple[Subscription, ...]

    relevance: float | None = None  # the reader's learned model, when they have one
    because: str = ""

    @property
    def rank(self) -> tuple[float, float, int, str]:
        learned = -self.relevance if self.relevance is not None else 0.0
        return (learned, -self.record.score, -(self.paper.upvotes or 0), self.paper.key)


def compose_digest(
    key: str,
    recipient: Recipient,
    local_date: date,
    entries: Sequence[DigestEntry],
    *,
    max_papers: int,
    notes: tuple[str, ...],
    links: LinkBuilder | None,
    reader: int | None = None,
    manage: str | None = None,
    arrived: int | None = None,
) -> DigestMessage:
    """Sections per subscription, best first; at most ``max_papers`` papers, the rest in
    ``more``. ``reader``: the user's id, for the signed 👍 / 👎 links (with ``links``) on
    the best ``links.digest_feedback_papers``, which mail shows in full."""
    ranked = sorted(entries, key=lambda e: e.rank)
    shown = ranked[:max_papers]
    address = recipient.address
    by_sub: dict[int, list[AlertItem]] = {}
    heads: dict[int, MatchedSubscription] = {}
    for rank, entry in enumerate(shown):
        matched = tuple(_matched(sub, entry.record, address, links) for sub in entry.subs)
        feedback = None
        if links is not None and reader is not None and rank < links.digest_feedback_papers:
            feedback = links.feedback_links(reader, entry.paper.key, entry.subs[0].id)
        item = AlertItem(
            entry.paper, matched, entry.record.score, entry.relevance, entry.because, feedback
        )
        for head in matched:
            heads.setdefault(head.sub_id, head)
            by_sub.setdefault(head.sub_id, []).append(item)
    # Sections in order of their best paper; items within are already best first.
    sections = tuple(DigestSection(heads[sub_id], tuple(items)) for sub_id, items in by_sub.items())
    return DigestMessage(
        key=key,
        recipient=recipient,
        local_date=local_date,
        sections=sections,
        more=len(ranked) - len(shown),
        source_notes=notes,
        links=links.message_links(address, manage) if links and address else MessageLinks(),
        rate=reader is not None,
        arrived=arrived,
    )


def _matched(
    sub: Subscription, record: MatchRecord, address: str, links: LinkBuilder | None
) -> MatchedSubscription:
    url = links.stop_subscription_url(address, sub.id) if links and address else None
    return MatchedSubscription(sub.id, sub.normalized, record.words, url)


def digest_recipient(user: User) -> Recipient:
    return Recipient(RecipientKind.USER, user.id, Channel.EMAIL, user.email or "", user.timezone)


class DigestPlanner:
    """Creates digests when due (``tick``) and builds their messages (``build``)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        max_papers: int = 50,
        *,
        all_quiet: bool = False,
        sources: Collection[str] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_papers = max_papers
        self._all_quiet = all_quiet
        # The ids of the sources configured now: a source removed from the settings keeps
        # its stored state, but a digest must not speak of it. None: every stored source.
        self._sources = None if sources is None else frozenset(sources)
        self.papers = PaperCache(store)  # the dispatcher's alerts read through it too

    async def tick(self, now: datetime | None = None) -> int:
        """Create every digest that is due now, each at most once per (user, local date);
        return how many were created.

        The due digests are created together (``create_digests``: a few transactions for
        thousands of users), not one transaction per user, ``CREATE_CHUNK`` at a time:
        the callers only count them, and 10,000 ``Delivery`` objects held at once were
        the daemon's peak memory (8 MB over the alerts before them, at 10,000 users).
        """
        now = now or self._clock()
        due = await self._due(now)
        created = 0
        for start in range(0, len(due), CREATE_CHUNK):
            chunk = due[start : start + CREATE_CHUNK]
            made = await self._store.create_digests(chunk, now, allow_empty=self._all_quiet)
            created += len(made)
        return created

    async def _due(self, now: datetime) -> list[DueDigest]:
        waiting = await self._store.digest_waiting()
        latest = await self._store.latest_digest_dates()
        due: list[DueDigest] = []
        async for user in self._candidates(set(waiting)):
            if user.digest_frequency is DigestFrequency.OFF:
                # Digests turned off: what waited is dropped, not saved up for years.
                if user.owner in waiting:
                    await self._store.drop_waiting_digest_matches(user.owner)
                continue
            day = due_local_date(user, now)
            last = latest.get(user.owner)
            if day is None or (last is not None and last >= day):
                continue
            if await self._may_send(user):
                due.append(DueDigest(user.owner, day, matched_by=slot(user, day)))
        return due

    async def _candidates(self, waiting: set[Owner]) -> AsyncIterator[User]:
        """The users with matches waiting (with ``all_quiet``, also those who have a digest
        subscription), read a page at a time: 10,000 users held at once were most of what
        a tick added to the daemon's memory."""
        wanting: set[Owner] = set()
        if self._all_quiet:
            wanting = {
                s.owner
                async for s in every_subscription(self._store)
                if DeliveryMode.EMAIL_DIGEST in s.deliver
            }
        async for user in every_user(self._store):
            if user.owner in waiting or user.owner in wanting:
                yield user

    async def _may_send(self, user: User) -> bool:
        if user.paused or (user.email and user.email_suppressed):
            # What they would have heard of now is skipped, as their alerts are.
            await self._store.drop_waiting_digest_matches(user.owner)
            return False
        return user.email_deliverable  # not confirmed yet: keep the matches for the first

    async def build(
        self, delivery: Delivery, user: User, now: datetime, links: LinkBuilder | None = None
    ) -> DigestMessage | None:
        """The message for a digest delivery; ``None`` when none of its papers is still
        wanted (their subscriptions were removed or stopped sending digests)."""
        assert delivery.digest_date is not None
        records = await self._store.digest_matches(delivery.id)
        return await self._message(
            delivery.key, user, delivery.digest_date, records, now=now, links=links
        )

    async def preview(self, user: User, now: datetime | None = None) -> DigestMessage | None:
        """What the next digest would hold, creating nothing; ``None`` if there is none."""
        now = now or self._clock()
        records = await self._store.waiting_digest_matches(user.owner)
        day = await self._preview_date(user, now)
        if day is None or (not records and not self._all_quiet):
            return None
        key = f"preview:{user.owner}:{day}"
        return await self._message(key, user, day, records, now=now, links=None)

    async def _preview_date(self, user: User, now: datetime) -> date | None:
        due = due_local_date(user, now)
        last = (await self._store.latest_digest_dates()).get(user.owner)
        if due is not None and (last is None or last < due):
            return due
        return next_local_date(user, now)

    async def _message(
        self,
        key: str,
        user: User,
        day: date,
        records: Sequence[MatchRecord],
        *,
        now: datetime,
        links: LinkBuilder | None,
    ) -> DigestMessage | None:
        entries = await self._entries(user, records)
        if records and not entries:
            return None
        states = await self._store.list_source_states()
        if self._sources is not None:
            states = [s for s in states if s.source_id in self._sources]
        notes = source_notes(states, user.timezone, now)
        recipient = digest_recipient(user)
        manage = links.manage_url(user, now) if links else None
        # Empty: say whether papers came and none matched, or none came at all.
        arrived = None if entries else await self._store.count_papers_since(now - QUIET_DAY)
        return compose_digest(
            key,
            recipient,
            day,
            entries,
            max_papers=self._max_papers,
            notes=notes,
            links=links,
            reader=user.id,
            manage=manage,
            arrived=arrived,
        )

    async def _entries(self, user: User, records: Sequence[MatchRecord]) -> list[DigestEntry]:
        owned = await self._store.list_subscriptions(user.owner)
        subs = {s.id: s for s in owned if s.digest_for_held}
        papers = await self.papers.get_papers([r.paper_key for r in records])
        entries = []
        for record in records:
            wanted = tuple(subs[i] for i in record.sub_ids if i in subs)
            paper = papers.get(record.paper_key)
            if wanted and paper is not None:
                entries.append(DigestEntry(record, paper, wanted))
        return await self._ranked(user, entries, owned)

    async def _ranked(
        self, user: User, entries: list[DigestEntry], subs: Sequence[Subscription]
    ) -> list[DigestEntry]:
        """Entries with the reader's learned relevance and why, when they have a model."""
        found = await relevance_of(self._store, user.owner, [e.paper for e in entries], subs)
        if found is None:
            return entries
        return [
            replace(entry, relevance=score, because=why)
            for entry in entries
            for score, why in [found.get(entry.paper.key, (0.0, ""))]
        ]
