"""``paperbell follow`` / ``unfollow``: papers a person received, followed through their
life (a new arXiv version, code released, an upvote count reached: one short note each).

``follow --email ADDR ID`` follows, ``follow --email ADDR --list [--json]`` lists the
followed papers with their changes, ``unfollow --email ADDR ID`` stops.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.daemon.resources import open_resources
from bot.delivery.follow_notes import note_text
from bot.delivery.follows import Followed
from bot.errors import NotFoundError, UsageError
from bot.exitcodes import ExitCode
from bot.messages import Channel
from bot.models import User
from bot.service import why_key
from bot.settings import Settings
from bot.store.protocols import Store

_ID_HELP = "arXiv id (with or without vN) or arXiv/HF URL"


def add_follow_commands(commands: Any) -> None:
    follow = commands.add_parser(
        "follow", help="follow a paper you received: one note when it changes"
    )
    follow.add_argument("--email", required=True, metavar="ADDR")
    follow.add_argument("paper", metavar="ID", nargs="?", help=_ID_HELP)
    follow.add_argument("--list", action="store_true", help="the papers followed, and changes")
    follow.add_argument("--json", action="store_true", help="--list as one JSON array")
    follow.set_defaults(handler=cmd_follow, validate=_validate_follow)
    unfollow = commands.add_parser("unfollow", help="stop following a paper")
    unfollow.add_argument("--email", required=True, metavar="ADDR")
    unfollow.add_argument("paper", metavar="ID", help=_ID_HELP)
    unfollow.set_defaults(handler=cmd_unfollow, validate=_validate_unfollow)


def _validate_follow(args: argparse.Namespace) -> None:
    if args.list == (args.paper is not None):
        raise UsageError("give a paper ID to follow, or --list to see the papers you follow")
    if args.json and not args.list:
        raise UsageError("--json goes with --list")
    if args.paper is not None:
        why_key(args.paper)  # a malformed id is refused before anything is opened


def _validate_unfollow(args: argparse.Namespace) -> None:
    why_key(args.paper)


async def _user(store: Store, address: str) -> User:
    user = await store.find_user(email=address.strip())
    if user is None:
        raise NotFoundError(
            f"no account has the address {address.strip()!r}: check the spelling, or see "
            "`paperbell subscriptions` for who is subscribed"
        )
    return user


async def cmd_follow(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        user = await _user(res.store, args.email)
        if args.list:
            followed = await res.service.followed(user.owner)
            print(_list_json(followed) if args.json else _list_text(followed))
            return ExitCode.OK
        paper, new = await res.service.follow(user.owner, args.paper, Channel.EMAIL)
    state = "now following" if new else "already following"
    print(f"{state} {paper.key} ({paper.title}): a note by email when it changes")
    return ExitCode.OK


async def cmd_unfollow(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        user = await _user(res.store, args.email)
        key = await res.service.unfollow(user.owner, args.paper)
    print(f"stopped following {key}")
    return ExitCode.OK


def _list_text(followed: list[Followed]) -> str:
    if not followed:
        return "you follow no paper (`paperbell follow --email ADDR ID` follows one)"
    lines: list[str] = []
    for item in followed:
        title = item.paper.title if item.paper else "(no longer stored)"
        since = f"{item.follow.created_at:%Y-%m-%d}"
        lines.append(f"{item.follow.paper_key}  {title}  (followed since {since})")
        for change in item.changes:
            headline, _ = note_text(change)
            lines.append(f"  {change.changed_at:%Y-%m-%d %H:%M} UTC  {headline}")
    return "\n".join(lines)


def _list_json(followed: list[Followed]) -> str:
    return json.dumps(
        [
            {
                "paper": item.follow.paper_key,
                "title": item.paper.title if item.paper else None,
                "channel": str(item.follow.channel),
                "since": item.follow.created_at.isoformat(),
                "changes": [
                    {
                        "kind": str(c.kind),
                        "at": c.changed_at.isoformat(),
                        "text": note_text(c)[0],
                        "lines": list(note_text(c)[1]),
                    }
                    for c in item.changes
                ],
            }
            for item in followed
        ],
        ensure_ascii=False,
    )
