"""CLI commands about learned relevance: ``feedback`` (rate, list, reset) and
``recommend`` — what a person's 👍 / 👎 taught their model, and what it suggests."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.cli.papers import positive_int
from bot.daemon.resources import Resources, open_resources
from bot.errors import NoFeedbackError, NotFoundError, UsageError
from bot.exitcodes import ExitCode
from bot.models import User
from bot.service import Learned, Recommendation
from bot.settings import Settings


def add_relevance_commands(commands: Any) -> None:
    fb = commands.add_parser(
        "feedback", help="rate papers for someone (👍 / 👎), or see or reset what was learned"
    )
    fb.add_argument("--email", required=True, metavar="ADDR")
    fb.add_argument("--like", nargs="+", default=[], metavar="ID", help="papers they liked")
    fb.add_argument("--dislike", nargs="+", default=[], metavar="ID", help="papers they did not")
    fb.add_argument("--list", action="store_true", help="show what the model learned from")
    fb.add_argument("--reset", action="store_true", help="forget every rating")
    fb.set_defaults(handler=cmd_feedback, validate=_validate_feedback)

    rec = commands.add_parser("recommend", help="the best recent papers for someone, by model")
    rec.add_argument("--email", required=True, metavar="ADDR")
    rec.add_argument("--days", type=positive_int, default=7)
    rec.add_argument("--limit", type=positive_int, default=10)
    rec.add_argument("--json", action="store_true", help="one JSON object")
    rec.set_defaults(handler=cmd_recommend)


def _validate_feedback(args: argparse.Namespace) -> None:
    rating = bool(args.like or args.dislike)
    if sum((rating, args.list, args.reset)) != 1:
        raise UsageError(
            "say one thing: --like ID... and/or --dislike ID..., or --list, or --reset"
        )


async def _user(res: Resources, address: str) -> User:
    user = await res.store.find_user(email=address.strip())
    if user is None:
        raise NotFoundError(
            f"no account has the address {address!r}: subscribe it first "
            f"(paperbell subscribe --email {address.strip()} QUERY)"
        )
    return user


async def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        user = await _user(res, args.email)
        if args.list:
            _print_learned(user, await res.service.learned(user.id))
            return ExitCode.OK
        if args.reset:
            n = await res.service.reset_learned(user.id)
            print(f"forgot {n} rating(s) of {user.email}; recommendations start afresh")
            return ExitCode.OK
        ratings = await res.service.rate(user.id, like=args.like, dislike=args.dislike)
    for key, rating in ratings.items():
        print(f"{user.email}: {rating}d {key}")
    return ExitCode.OK


def _print_learned(user: User, learned: list[Learned]) -> None:
    if not learned:
        print(f"{user.email} has rated no paper yet")
        return
    for item in learned:
        title = item.paper.title if item.paper else "(paper no longer stored)"
        when = item.feedback.rated_at.date().isoformat()
        print(f"{item.feedback.rating:<8} {when}  {item.feedback.paper_key}  {title}")


async def cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        user = await _user(res, args.email)
        try:
            found = await res.service.recommend(user.id, days=args.days, limit=args.limit)
        except NoFeedbackError:
            # Not a failure: there is simply nothing to rank by yet. Say what to do.
            hint = f"`paperbell feedback --email {user.email} --like ID`"
            print(f"paperbell: {NoFeedbackError(hint)}", file=sys.stderr)
            if args.json:
                print(json.dumps({"papers": []}))
            return ExitCode.OK
    if args.json:
        print(json.dumps({"papers": [recommendation_json(r) for r in found]}, ensure_ascii=False))
    elif not found:
        print(f"no unrated paper of the last {args.days} days to recommend")
    for rank, rec in enumerate(found if not args.json else [], 1):
        print(f"{rank:>2}. {rec.score:.2f}  {rec.paper.key}  {rec.paper.title}")
        print(f"      because: {rec.because}")
    return ExitCode.OK


def recommendation_json(rec: Recommendation) -> dict[str, object]:
    return {
        "id": rec.paper.key,
        "title": rec.paper.title,
        "score": round(rec.score, 4),
        "because": rec.because,
    }
