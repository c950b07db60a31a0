"""Delivery policy rules, one table per rule, over plain data (no store, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.delivery.policy import (
    MATCH_GONE,
    NO_USER,
    SUBSCRIPTION_REMOVED,
    Action,
    after_permanent_failure,
    alert_hold,
    alert_routes,
    confirm_hold,
    email_hold,
    moves_to_email,
    owner_hold,
    plan_match,
    wanted_subscriptions,
    wants_digest,
)
from bot.messages import Channel, PlannedMatch, Route
from bot.models import DeliveryMode, MatchRecord, Owner, Subscription, User
from bot.store.protocols import DeliveryKind

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
D, N, G = DeliveryMode.DISCORD, DeliveryMode.EMAIL_INSTANT, DeliveryMode.EMAIL_DIGEST  # N: now
EMAIL, DISC = Channel.EMAIL, Channel.DISCORD
USER = Owner.user(1)
CHANNEL = Owner.channel("99")


def user(**changes: object) -> User:
    """A user reachable everywhere unless ``changes`` say otherwise."""
    fields: dict[str, object] = {
        "id": 1,
        "created_at": NOW,
        "discord_id": "500",
        "email": "ada@example.org",
        "email_verified": True,
    }
    return User(**(fields | changes))  # type: ignore[arg-type]


def sub(sub_id: int, *modes: DeliveryMode, owner: Owner = USER) -> Subscription:
    return Subscription(sub_id, owner, "q", "q", frozenset(modes), NOW)


UNREACHABLE = user(discord_unreachable=True)
UNREACHABLE_NO_MAIL = user(discord_unreachable=True, email_verified=False)


# --- match time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "modes", "who", "routes"),
    [
        (USER, {N}, user(), (Route(EMAIL),)),
        (USER, {D}, user(), (Route(DISC),)),
        (USER, {G}, user(), ()),
        (USER, {N, D, G}, user(), (Route(EMAIL), Route(DISC))),
        (USER, {D}, UNREACHABLE, (Route(EMAIL, fallback=True),)),
        (USER, {N, D}, UNREACHABLE, (Route(EMAIL), Route(EMAIL, fallback=True))),
        (USER, {D}, UNREACHABLE_NO_MAIL, (Route(DISC),)),  # nowhere better: Discord holds it
        (USER, {D}, None, (Route(DISC),)),
        (CHANNEL, {D}, None, (Route(DISC),)),
        (CHANNEL, {N, G}, None, ()),  # a channel only gets Discord posts
    ],
)
def test_alert_routes(
    owner: Owner, modes: set[DeliveryMode], who: User | None, routes: tuple[Route, ...]
) -> None:
    assert alert_routes(owner, modes, who) == routes


@pytest.mark.parametrize(
    ("owner", "modes", "wanted"),
    [
        (USER, {G}, True),
        (USER, {N, G}, True),
        (USER, {N, D}, False),
        (CHANNEL, {G}, False),  # only users get digests
    ],
)
def test_wants_digest(owner: Owner, modes: set[DeliveryMode], wanted: bool) -> None:
    assert wants_digest(owner, modes) is wanted


def _record(*sub_ids: int) -> MatchRecord:
    return MatchRecord(USER, "p1", sub_ids, ("graph",), 1.0, NOW)


@pytest.mark.parametrize(
    ("caught", "stored", "planned"),
    [
        ((1,), [], None),  # every subscription that caught it is gone
        ((1, 2), [sub(2, G)], PlannedMatch(_record(2), digest=True)),
        ((1, 2), [sub(1, N), sub(2, D), sub(3, G)], PlannedMatch(
            _record(1, 2), alerts=(Route(EMAIL), Route(DISC))
        )),
    ],
)  # fmt: skip
def test_plan_match(
    caught: tuple[int, ...], stored: list[Subscription], planned: PlannedMatch | None
) -> None:
    assert plan_match(_record(*caught), stored, user()) == planned


# --- send time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (user(), None),
        (user(email=None), "no email address"),
        (user(email_verified=False), "email address not confirmed"),
        (user(email_suppressed=True), "email suppressed: by request"),
        (
            user(email_suppressed=True, email_suppressed_reason="bounced"),
            "email suppressed: bounced",
        ),
    ],
)
def test_email_hold(who: User, reason: str | None) -> None:
    assert email_hold(who) == reason


@pytest.mark.parametrize(
    ("owner", "who", "channel", "reason"),
    [
        (USER, user(), EMAIL, None),
        (USER, user(), DISC, None),
        (USER, None, EMAIL, NO_USER),
        (USER, user(paused=True), EMAIL, "the user paused notifications"),
        (USER, user(paused=True), DISC, "the user paused notifications"),
        (USER, user(email_verified=False), EMAIL, "email address not confirmed"),
        (USER, user(email_verified=False), DISC, None),
        (USER, user(discord_id=None), DISC, "no Discord account"),
        (USER, UNREACHABLE, DISC, "Discord user unreachable"),
        (USER, UNREACHABLE, EMAIL, None),
        (CHANNEL, None, DISC, None),
        (CHANNEL, None, EMAIL, "a Discord channel only gets Discord posts"),
    ],
)
def test_owner_hold(owner: Owner, who: User | None, channel: Channel, reason: str | None) -> None:
    assert owner_hold(owner, who, channel) == reason


@pytest.mark.parametrize(
    ("who", "channel", "moves"),
    [
        (UNREACHABLE, DISC, True),
        (UNREACHABLE, EMAIL, False),
        (user(), DISC, False),
        (None, DISC, False),
    ],
)
def test_moves_to_email(who: User | None, channel: Channel, moves: bool) -> None:
    assert moves_to_email(who, channel) is moves


@pytest.mark.parametrize(
    ("live", "channel", "fallback", "reason", "wanted"),
    [
        ([], EMAIL, False, SUBSCRIPTION_REMOVED, ()),
        ([sub(1, N)], EMAIL, False, None, (1,)),
        ([sub(1, D)], EMAIL, False, "subscription no longer sends email alerts", ()),
        ([sub(1, D)], EMAIL, True, None, (1,)),  # an email standing in for Discord
        ([sub(1, N)], DISC, False, "subscription no longer sends discord alerts", ()),
        ([sub(1, N), sub(2, D)], DISC, False, None, (2,)),
        ([sub(1, G)], EMAIL, True, "subscription no longer sends email alerts", ()),
    ],
)
def test_alert_hold(
    live: list[Subscription],
    channel: Channel,
    fallback: bool,
    reason: str | None,
    wanted: tuple[int, ...],
) -> None:
    assert alert_hold(live, channel, fallback) == reason
    assert tuple(s.id for s in wanted_subscriptions(live, channel, fallback)) == wanted


PENDING = user(email_verified=False)
ADA = "ada@example.org"
CHANGED = "the address was changed before it was confirmed"
EXPIRED = "the confirmation expired before it could be sent"
SUPPRESSED_PENDING = user(email_verified=False, email_suppressed=True)


@pytest.mark.parametrize(
    ("who", "address", "issued", "reason"),
    [
        (PENDING, ADA, NOW, None),
        (PENDING, ADA.upper(), NOW, None),  # addresses compare without case
        (None, ADA, NOW, NO_USER),
        (PENDING, "bob@example.org", NOW, CHANGED),
        (user(email=None), ADA, NOW, CHANGED),
        (SUPPRESSED_PENDING, ADA, NOW, "email suppressed: by request"),
        (user(), ADA, NOW, "the address is confirmed already"),
        (PENDING, ADA, NOW - timedelta(hours=24), EXPIRED),
        (PENDING, ADA, NOW - timedelta(hours=23), None),
    ],
)
def test_confirm_hold(who: User | None, address: str, issued: datetime, reason: str | None) -> None:
    assert confirm_hold(who, address, issued, NOW) == reason


def test_reason_strings_stay() -> None:
    assert (SUBSCRIPTION_REMOVED, NO_USER, MATCH_GONE) == (
        "subscription removed",
        "the user no longer exists",
        "the match is no longer stored",
    )


# --- after a permanent failure --------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "kind", "unreachable", "action"),
    [
        (EMAIL, DeliveryKind.ALERT, True, Action.STRIKE),
        (EMAIL, DeliveryKind.DIGEST, True, Action.STRIKE),
        (EMAIL, DeliveryKind.CONFIRM, True, Action.STRIKE),
        (DISC, DeliveryKind.ALERT, True, Action.FALL_BACK),
        (EMAIL, DeliveryKind.ALERT, False, Action.NOTHING),
        (DISC, DeliveryKind.ALERT, False, Action.NOTHING),
    ],
)
def test_after_permanent_failure(
    channel: Channel, kind: DeliveryKind, unreachable: bool, action: Action
) -> None:
    assert after_permanent_failure(channel, kind, unreachable) is action
