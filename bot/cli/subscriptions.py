"""CLI commands about subscriptions: ``test-query``, ``subscribe``, ``subscriptions``,
``unsubscribe`` — for people who do not use Discord, and for admins."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from bot.cli.accounts import send_confirmation
from bot.cli.papers import positive_int
from bot.daemon.resources import open_resources
from bot.errors import NotFoundError
from bot.exitcodes import ExitCode
from bot.models import DeliveryMode, Owner, OwnerKind
from bot.service import Paperbell, QueryTest, SubscriptionView, check_min_relevance
from bot.settings import Settings
from bot.store.protocols import Store

DELIVERIES = {
    "digest": frozenset({DeliveryMode.EMAIL_DIGEST}),
    "instant": frozenset({DeliveryMode.EMAIL_INSTANT}),
    "both": frozenset({DeliveryMode.EMAIL_DIGEST, DeliveryMode.EMAIL_INSTANT}),
}


def add_subscription_commands(commands: Any) -> None:
    test = commands.add_parser("test-query", help="what a query would have matched lately")
    add_query(test)
    test.add_argument("--days", type=positive_int, default=7)
    test.add_argument("--json", action="store_true", help="one JSON object")
    test.set_defaults(handler=cmd_test_query)

    sub = commands.add_parser("subscribe", help="subscribe an email address to a query")
    sub.add_argument("--email", required=True, metavar="ADDR")
    sub.add_argument("--deliver", choices=sorted(DELIVERIES), default="digest")
    sub.add_argument(
        "--min-relevance",
        type=float,
        metavar="0-1",
        help="instant alerts your learned model scores below this wait for the digest",
    )
    add_query(sub)
    sub.set_defaults(handler=cmd_subscribe, validate=_validate_subscribe)

    subs = commands.add_parser("subscriptions", help="list subscriptions")
    subs.add_argument("--email", metavar="ADDR", help="only this address's")
    subs.add_argument("--json", action="store_true", help="one JSON object per line")
    subs.set_defaults(handler=cmd_subscriptions)

    unsub = commands.add_parser("unsubscribe", help="remove a subscription by its number")
    unsub.add_argument("id", type=positive_int)
    unsub.set_defaults(handler=cmd_unsubscribe)


def _validate_subscribe(args: argparse.Namespace) -> None:
    check_min_relevance(args.min_relevance)


def add_query(parser: argparse.ArgumentParser) -> None:
    """The QUERY positional; one starting with '-' works as it is (``bot.cli.main.Parser``)."""
    parser.add_argument("query", metavar="QUERY", help="the query (see the README's syntax)")


async def cmd_test_query(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        result = await res.service.test_query(args.query, days=args.days, examples=10)
    if args.json:
        print(json.dumps(test_json(result), ensure_ascii=False))
    else:
        print(format_test(result))
    return ExitCode.OK


def test_json(result: QueryTest) -> dict[str, object]:
    return {
        "query": result.query,
        "normalized": result.normalized,
        "matches": list(result.keys),
        "count": result.count,
        "days": result.days,
        "total": result.total,
        "share": round(result.share, 4),
        "per_day": round(result.per_day, 2),
    }


def format_test(result: QueryTest) -> str:
    lines = [
        f"query:   {result.normalized}",
        f"matches: {result.count} of {result.total} stored papers of the last {result.days} "
        f"days ({result.share:.1%}), {result.per_day:.1f} a day",
    ]
    if result.too_many:
        lines.append(
            f"warning: about {result.per_day:.0f} papers a day is a lot; "
            "narrow it with more words, a phrase, or cat:"
        )
    for rank, hit in enumerate(result.top, 1):
        lines.append(f"{rank:>3}. {hit.paper.key}  {mark_words(hit.paper.title, hit.words)}")
    return "\n".join(lines)


def mark_words(text: str, words: tuple[str, ...]) -> str:
    """``**word**`` around each whole-word occurrence, ignoring case."""
    if not words:
        return text
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)({alternatives})(?!\w)", re.IGNORECASE)
    return pattern.sub(r"**\1**", text)


async def cmd_subscribe(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        request = await res.service.account_for_email(args.email)
        user = request.user
        done = await res.service.subscribe(
            user.owner, args.query, DELIVERIES[args.deliver], min_relevance=args.min_relevance
        )
        confirmation = await send_confirmation(res, request)  # it goes out now, if it can
    sub = done.subscription
    print(f"subscription #{sub.id} for {user.email}: {sub.normalized}")
    if sub.min_relevance is not None:
        print(f"instant alerts scored below {sub.min_relevance:g} wait for the digest")
    print(f"it would have matched {done.test.count} paper(s) in the last {done.test.days} days")
    if confirmation:
        print(confirmation)
    return ExitCode.OK


async def cmd_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        owners: list[Owner] | None = None
        if args.email:
            user = await res.store.find_user(email=args.email.strip())
            if user is None:
                raise NotFoundError(f"no account has the address {args.email!r}")
            owners = [user.owner]
        views = await _views(res.service, owners)
        names = await _owner_names(res.store, views)
    for view in views:
        owner = names.get(view.subscription.owner, str(view.subscription.owner))
        print(json.dumps(sub_json(view, owner)) if args.json else format_sub(view, owner))
    if not views and not args.json:
        print("no subscriptions")
    return ExitCode.OK


async def _views(service: Paperbell, owners: list[Owner] | None) -> list[SubscriptionView]:
    if owners is None:
        return await service.subscriptions()  # everyone's, in a few reads
    return [view for owner in owners for view in await service.subscriptions(owner)]


async def _owner_names(store: Store, views: list[SubscriptionView]) -> dict[Owner, str]:
    owners = {v.subscription.owner for v in views}
    names = {o: f"channel:{o.id}" for o in owners if o.kind is not OwnerKind.USER}
    users = await store.get_users([int(o.id) for o in owners if o.kind is OwnerKind.USER])
    for user in users.values():
        names[user.owner] = user.email or f"discord:{user.discord_id}"
    return names


def sub_json(view: SubscriptionView, owner: str) -> dict[str, object]:
    sub = view.subscription
    return {
        "id": sub.id,
        "owner": owner,
        "query": sub.query,
        "normalized": sub.normalized,
        "deliver": sorted(sub.deliver),
        "matches": view.matches,
        "paused": sub.paused,
        "created": sub.created_at.isoformat(),
        "min_relevance": sub.min_relevance,
    }


def format_sub(view: SubscriptionView, owner: str) -> str:
    sub = view.subscription
    deliver = ", ".join(sorted(sub.deliver))
    paused = " (paused)" if sub.paused else ""
    return (
        f"#{sub.id:<5} {owner:<28} {deliver:<28} {view.matches:>5} match(es)  "
        f"{sub.normalized}{paused}"
    )


async def cmd_unsubscribe(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        sub = await res.service.unsubscribe(None, args.id)
    print(f"removed subscription #{sub.id}: {sub.normalized}")
    return ExitCode.OK
