"""The last step of "why (not) this paper": what the outbox did with a recorded match.

Read from the outbox rows (state, attempts, error, when sent) and the digest the match
went into; a sent digest is rebuilt (``DigestPlanner.build``) to tell a paper it showed
from one capped behind "and N more".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from bot.delivery.digests import DigestPlanner
from bot.delivery.policy import email_hold, owner_hold
from bot.delivery.ranking import owner_ranker
from bot.delivery.why_model import Reason, Step, StepName, Verdict
from bot.messages import Channel
from bot.models import DeliveryMode, MatchRecord, Subscription, User
from bot.store.protocols import Delivery, DeliveryKind, DeliveryState, Store

Outcome = tuple[Verdict, Reason | None, Step]
_INSTANT = frozenset({DeliveryMode.EMAIL_INSTANT, DeliveryMode.DISCORD})


def _stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when is not None else "?"


def _done(reason: Reason | None, text: str, *evidence: str) -> Outcome:
    verdict = Verdict.DELIVERED if reason is None else Verdict.NOT_DELIVERED
    return verdict, reason, Step(StepName.DELIVERY, reason is None, text, evidence)


async def delivery_step(
    store: Store,
    digests: DigestPlanner,
    user: User,
    record: MatchRecord,
    subs: Sequence[Subscription],
) -> Outcome:
    """Delivered (when, where, which message), or the reason it was not."""
    # Only the rows that can tell, read by the store: a reader's outbox grows all year.
    alerts = await store.list_deliveries(
        user.owner, kind=DeliveryKind.ALERT, paper_key=record.paper_key
    )
    sent = [d for d in alerts if d.state is DeliveryState.SENT]
    if sent:
        return _sent_alert(sent[0])
    made = await store.list_deliveries(user.owner, kind=DeliveryKind.DIGEST)
    later = [d for d in made if d.created_at >= record.matched_at]
    digest = await _digest_with(store, later, record.paper_key)
    if digest is not None and digest.state is DeliveryState.SENT:
        return await _sent_digest(digests, user, digest, record.paper_key)
    if alerts:
        first, *others = sorted(alerts, key=lambda d: _STILL_GOING.get(d.state, 3))
        verdict, reason, step = _unsent(first, user)
        also = tuple(f"also: {_row_line(d)}" for d in others)
        return verdict, reason, replace(step, evidence=step.evidence + also)
    if digest is not None:
        return _unsent(digest, user)
    return await _waiting(store, user, record, subs)


def _sent_alert(row: Delivery) -> Outcome:
    where = "a Discord message" if row.channel is Channel.DISCORD else "an instant email alert"
    return _done(None, f"delivered in {where} on {_stamp(row.sent_at)} (message {row.key})")


async def _digest_with(store: Store, rows: Sequence[Delivery], key: str) -> Delivery | None:
    """The newest digest row the paper was attached to, if any (``rows``: the digests
    made since it was matched, each read once)."""
    for row in reversed(rows):
        if row.kind is DeliveryKind.DIGEST and any(
            m.paper_key == key for m in await store.digest_matches(row.id)
        ):
            return row
    return None


async def _sent_digest(digests: DigestPlanner, user: User, row: Delivery, key: str) -> Outcome:
    message = await digests.build(row, user, row.sent_at or row.created_at)
    day = row.digest_date.isoformat() if row.digest_date else "?"
    shown = message is not None and any(
        item.paper.key == key for section in message.sections for item in section.items
    )
    if message is not None and not shown and message.more:
        return _done(
            Reason.CAPPED,
            f"your digest of {day} had more papers than it shows: this one was among the "
            f'"and {message.more} more" (PAPERBELL_EMAIL__DIGEST_MAX_PAPERS)',
            f"digest {row.key}, sent {_stamp(row.sent_at)}",
        )
    return _done(None, f"delivered in your email digest of {day}, sent {_stamp(row.sent_at)} "
                 f"(message {row.key})")  # fmt: skip


# A row still on its way says more than one that stopped; a failure more than a hold.
_STILL_GOING = {DeliveryState.PENDING: 0, DeliveryState.SENDING: 0, DeliveryState.FAILED: 1}


def _row_line(row: Delivery) -> str:
    error = f", error: {row.last_error}" if row.last_error else ""
    return f"{row.kind} on {row.channel}, outbox state {row.state}{error}"


def _unsent(row: Delivery, user: User) -> Outcome:
    what = f"{row.kind} on {row.channel}, outbox state {row.state}, attempts {row.attempts}"
    error = row.last_error or ""
    evidence = (what, f"error: {error}") if error else (what,)
    if row.state is DeliveryState.FAILED:
        return _done(Reason.FAILED, f"sending it failed on {row.channel}: {error}", *evidence)
    if row.state is DeliveryState.SUPPRESSED:
        return _done(_hold_reason(error), f"not sent: {error}", *evidence)
    hold = owner_hold(user.owner, user, row.channel)
    if hold is not None:
        return _done(_hold_reason(hold), f"queued, but held: {hold}", *evidence)
    due = _stamp(row.next_attempt_at)
    text = f"queued on {row.channel}, not sent yet (next try {due})"
    return _done(Reason.PENDING, text, *evidence)


def _hold_reason(text: str) -> Reason:
    if "paused" in text:
        return Reason.PAUSED
    if "not confirmed" in text:
        return Reason.UNCONFIRMED
    return Reason.SUPPRESSED


async def _waiting(
    store: Store, user: User, record: MatchRecord, subs: Sequence[Subscription]
) -> Outcome:
    """No outbox row: the match waits for a digest (held below ``min_relevance`` or a
    digest-only subscription), or its alerts were never queued."""
    mine = [s for s in subs if s.id in record.sub_ids]
    held = [s for s in mine if s.min_relevance is not None and s.deliver & _INSTANT]
    if user.paused:
        return _done(Reason.PAUSED, "you paused all notifications")
    if held:
        return await _below(store, user, held, record.paper_key, subs)
    hold = email_hold(user)
    if hold is not None:
        return _done(_hold_reason(hold), f"waiting for your digest, which cannot go: {hold}")
    return _done(
        Reason.HELD_FOR_DIGEST,
        f"held for your next email digest ({user.digest_frequency}, at {user.digest_hour}:00 "
        f"{user.timezone})",
    )


async def _below(
    store: Store, user: User, held: Sequence[Subscription], key: str, subs: Sequence[Subscription]
) -> Outcome:
    ranker = await owner_ranker(store, user.owner, subs)
    floor = min(s.min_relevance or 0.0 for s in held)
    score = None
    if ranker is not None:
        ranked = await ranker.rank([key])
        score = ranked[0].score if ranked else None
    shown = f"{score:.2f}" if score is not None else "below it"
    names = ", ".join(f"#{s.id}" for s in held)
    return _done(
        Reason.BELOW_MIN_RELEVANCE,
        f"your learned relevance ({shown}) was below min_relevance {floor:.2f} of {names}: "
        "the instant alert was held for your digest",
    )
