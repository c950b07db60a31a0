"""``paperbell why --email ADDR ID [--json]``: why a person got a paper, or why not.

Plain words by default: the verdict, then each step of the paper's path with its
evidence. ``--json``: one object with ``verdict``, ``steps`` and ``suggestion``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.daemon.resources import open_resources
from bot.delivery.why_model import Step, SubscriptionCheck, Why, why_lines
from bot.errors import NotFoundError
from bot.exitcodes import ExitCode
from bot.service import why_key
from bot.settings import Settings


def add_why_commands(commands: Any) -> None:
    why = commands.add_parser(
        "why", help="why someone got a paper, or the first step where it stopped"
    )
    why.add_argument("--email", required=True, metavar="ADDR")
    why.add_argument("paper", metavar="ID", help="arXiv id (with or without vN) or arXiv/HF URL")
    why.add_argument("--json", action="store_true", help="one JSON object")
    why.set_defaults(handler=cmd_why, validate=_validate)


def _validate(args: argparse.Namespace) -> None:
    why_key(args.paper)  # a malformed id is refused before anything is opened


async def cmd_why(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        address = args.email.strip()
        user = await res.store.find_user(email=address)
        if user is None:
            raise NotFoundError(
                f"no account has the address {address!r}: check the spelling, or see "
                "`paperbell subscriptions` for who is subscribed"
            )
        why = await res.service.why(user, args.paper)
    print(json.dumps(why_json(why), ensure_ascii=False) if args.json else why_text(why))
    return ExitCode.OK


def why_text(why: Why) -> str:
    return "\n".join(why_lines(why))


def why_json(why: Why) -> dict[str, object]:
    return {
        "paper": why.paper_key,
        "title": why.title,
        "verdict": str(why.verdict),
        "reason": str(why.reason) if why.reason else None,
        "summary": why.summary,
        "steps": [_step_json(s) for s in why.steps],
        "suggestion": why.suggestion,
    }


def _step_json(step: Step) -> dict[str, object]:
    out: dict[str, object] = {
        "step": str(step.name),
        "passed": step.passed,
        "text": step.text,
        "evidence": list(step.evidence),
    }
    if step.subscriptions:
        out["subscriptions"] = [_check_json(c) for c in step.subscriptions]
    return out


def _check_json(check: SubscriptionCheck) -> dict[str, object]:
    return {
        "id": check.sub_id,
        "query": check.query,
        "matched": check.matched,
        "paused": check.paused,
        "clause": check.clause,
        "reason": check.reason,
        "suggestion": check.suggestion,
        "suggestion_hits": check.suggestion_hits,
        "suggestion_total": check.suggestion_total,
    }
