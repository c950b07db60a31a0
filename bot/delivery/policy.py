"""Delivery policy: who gets what, on which channel, and what happens when it cannot go.

Every rule is decided here once, as plain functions over plain data (no store, no I/O):

* at match time: which alerts a new match calls for (``alert_routes``: a channel's
  subscription posts to Discord only; a user unreachable on Discord with a deliverable
  address gets an email standing in), whether it waits for a digest (``wants_digest``),
  and the whole plan of one match (``plan_match``: a match whose subscriptions are all
  gone calls for nothing);
* at send time: why a queued message must be suppressed now (``owner_hold``: paused,
  no/unconfirmed/suppressed address, unreachable Discord user; ``alert_hold``: removed
  subscription or one that no longer delivers there; ``confirm_hold``), and whether a
  held Discord alert moves to email (``moves_to_email``);
* after a permanent failure: strike the address, fall back to email, or nothing
  (``after_permanent_failure``).

Callers gather the data (the store's users and subscriptions) and act on the answer.
The reason strings are the ones recorded on suppressed rows: users and tests read them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.accounts.addresses import CONFIRM_HOURS, UNSUBSCRIBED
from bot.messages import SUBSCRIPTION_REMOVED, Channel, PlannedMatch, Route
from bot.models import DeliveryMode, MatchRecord, Owner, OwnerKind, Subscription, User
from bot.store.protocols import DeliveryKind

__all__ = [
    "EMAIL_STRIKES",
    "MATCH_GONE",
    "NO_USER",
    "SUBSCRIPTION_REMOVED",
    "Action",
    "Route",
    "after_permanent_failure",
    "alert_hold",
    "alert_routes",
    "confirm_hold",
    "email_hold",
    "live_subscriptions",
    "manage_link_hold",
    "modes_of",
    "moves_to_email",
    "owner_hold",
    "plan_match",
    "wanted_subscriptions",
    "wants",
    "wants_digest",
]

EMAIL_STRIKES = 3  # permanent failures of one address before it is suppressed
NO_USER = "the user no longer exists"
MATCH_GONE = "the match is no longer stored"


class Action(StrEnum):
    """What a permanent failure with an unreachable recipient leads to."""

    NOTHING = "nothing"
    STRIKE = "strike"  # count it against the address (enough strikes suppress it)
    FALL_BACK = "fall back"  # mark the Discord user unreachable; move alerts to email


# --- match time -----------------------------------------------------------------------------


def modes_of(subs: Collection[Subscription]) -> frozenset[DeliveryMode]:
    return frozenset(mode for sub in subs for mode in sub.deliver)


def alert_routes(
    owner: Owner, modes: Collection[DeliveryMode], user: User | None
) -> tuple[Route, ...]:
    """The alerts one new match calls for, given its live subscriptions' delivery modes."""
    if owner.kind is OwnerKind.CHANNEL:
        return (Route(Channel.DISCORD),) if DeliveryMode.DISCORD in modes else ()
    routes: list[Route] = []
    if DeliveryMode.EMAIL_INSTANT in modes:
        routes.append(Route(Channel.EMAIL))
    if DeliveryMode.DISCORD in modes:
        fallback = user is not None and user.discord_unreachable and user.email_deliverable
        routes.append(Route(Channel.EMAIL, fallback=True) if fallback else Route(Channel.DISCORD))
    return tuple(routes)


def wants_digest(owner: Owner, modes: Collection[DeliveryMode]) -> bool:
    """Whether a new match waits for the owner's digest (only users get digests)."""
    return owner.kind is OwnerKind.USER and DeliveryMode.EMAIL_DIGEST in modes


def live_subscriptions(
    record: MatchRecord, subs: Sequence[Subscription]
) -> tuple[Subscription, ...]:
    """The owner's subscriptions (in the store's order) that caught this match."""
    return tuple(s for s in subs if s.id in record.sub_ids)


def plan_match(
    record: MatchRecord,
    subs: Sequence[Subscription],
    user: User | None,
    relevance: float | None = None,
) -> PlannedMatch | None:
    """What one new match calls for, given its owner's subscriptions and user (``None``
    for a channel); ``None`` when every subscription that caught it is gone.

    ``relevance``: the owner's learned score of the paper (None: no model). A subscription
    whose ``min_relevance`` it falls below holds its instant alerts: the paper waits for
    the user's digest instead. Without a model nothing is held (nothing to judge by)."""
    live = live_subscriptions(record, subs)
    if not live:
        return None
    if len(live) != len(record.sub_ids):  # only the live ones stay on the record
        record = replace(record, sub_ids=tuple(s.id for s in live))
    held = [s for s in live if _below(s, relevance)]
    alerting = [s for s in live if s not in held]
    digest = wants_digest(record.owner, modes_of(live)) or (
        bool(held) and record.owner.kind is OwnerKind.USER
    )
    return PlannedMatch(
        record, digest=digest, alerts=alert_routes(record.owner, modes_of(alerting), user)
    )


def _below(sub: Subscription, relevance: float | None) -> bool:
    return sub.min_relevance is not None and relevance is not None and relevance < sub.min_relevance


# --- send time ------------------------------------------------------------------------------


def email_hold(user: User) -> str | None:
    """Why nothing may go to this user's address now, or ``None``."""
    if not user.email:
        return "no email address"
    if user.email_suppressed:
        return f"email suppressed: {user.email_suppressed_reason or 'by request'}"
    if not user.email_verified:
        return "email address not confirmed"
    return None


def owner_hold(owner: Owner, user: User | None, channel: Channel) -> str | None:
    """Why nothing may go to this owner on this channel now, or ``None``."""
    if owner.kind is OwnerKind.CHANNEL:
        return None if channel is Channel.DISCORD else "a Discord channel only gets Discord posts"
    if user is None:
        return NO_USER
    if user.paused:
        return "the user paused notifications"
    if channel is Channel.EMAIL:
        return email_hold(user)
    if not user.discord_id:
        return "no Discord account"
    return "Discord user unreachable" if user.discord_unreachable else None


def moves_to_email(user: User | None, channel: Channel) -> bool:
    """Whether held Discord alerts go to email instead (the store queues them only when
    the address is deliverable: it re-reads the user in the transaction that queues)."""
    return user is not None and channel is Channel.DISCORD and user.discord_unreachable


def wants(sub: Subscription, channel: Channel, fallback: bool) -> bool:
    """Whether a subscription still sends alerts on ``channel`` (or, standing in for
    Discord, by email)."""
    if channel is Channel.DISCORD:
        return DeliveryMode.DISCORD in sub.deliver
    return DeliveryMode.EMAIL_INSTANT in sub.deliver or (
        fallback and DeliveryMode.DISCORD in sub.deliver
    )


def wanted_subscriptions(
    live: Sequence[Subscription], channel: Channel, fallback: bool
) -> tuple[Subscription, ...]:
    return tuple(s for s in live if wants(s, channel, fallback))


def alert_hold(live: Sequence[Subscription], channel: Channel, fallback: bool) -> str | None:
    """Why a queued alert may not go now, given the match's subscriptions still stored."""
    if not live:
        return SUBSCRIPTION_REMOVED
    if not wanted_subscriptions(live, channel, fallback):
        return f"subscription no longer sends {channel} alerts"
    return None


def confirm_hold(user: User | None, address: str, issued: datetime, now: datetime) -> str | None:
    """Why a confirmation mail may not go now: it goes only to the address the user still
    holds, unconfirmed and unsuppressed, within the hours its link and code are valid."""
    if user is None:
        return NO_USER
    if not user.email or user.email.lower() != address.lower():
        return "the address was changed before it was confirmed"
    if user.email_suppressed:
        return email_hold(user)
    if user.email_verified:
        return "the address is confirmed already"
    if now - issued >= timedelta(hours=CONFIRM_HOURS):
        return "the confirmation expired before it could be sent"
    return None


def manage_link_hold(user: User | None, address: str) -> str | None:
    """Why a manage-link mail may not go: only to the address the user still holds. The
    person asked for it just now, so "you unsubscribed" does not stop it (their page is how
    they resubscribe); a stop for failing deliveries does."""
    if user is None:
        return NO_USER
    if not user.email or user.email.lower() != address.lower():
        return "the address was changed before the link could be sent"
    if user.email_suppressed and user.email_suppressed_reason != UNSUBSCRIBED:
        return email_hold(user)
    return None


# --- after a permanent failure --------------------------------------------------------------


def after_permanent_failure(
    channel: Channel, kind: DeliveryKind, recipient_unreachable: bool
) -> Action:
    """An unreachable address earns a strike; an unreachable Discord user's alerts fall back
    to email (their digests and confirmations are email already); else nothing."""
    if not recipient_unreachable:
        return Action.NOTHING
    if channel is Channel.EMAIL:
        return Action.STRIKE
    return Action.FALL_BACK if kind is DeliveryKind.ALERT else Action.NOTHING
