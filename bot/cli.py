"""The ``paperbell`` command line (also ``python -m bot``).

This is a boundary: it turns ``UserError`` into one line on stderr and an exit code, and
logs anything unexpected once. Exit codes: 0 ok, 1 failure, 2 usage, 78 configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence

from bot import __version__
from bot.cli_accounts import add_account_commands
from bot.cli_ops import add_ops_commands
from bot.cli_papers import add_paper_commands
from bot.cli_subs import add_subscription_commands
from bot.errors import ConfigError, UsageError, UserError
from bot.logs import configure_logging
from bot.settings import Settings, load_settings

EX_OK, EX_FAIL, EX_USAGE, EX_CONFIG = 0, 1, 2, 78

log = logging.getLogger("paperbell")

Handler = Callable[[argparse.Namespace, Settings], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paperbell",
        description="Watch new research papers; tell each person about the ones they want.",
    )
    parser.add_argument("--version", action="version", version=f"paperbell {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_paper_commands(commands)
    add_subscription_commands(commands)
    add_account_commands(commands)
    add_ops_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"paperbell: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    handler: Handler = args.handler
    return _run(handler(args, settings))


def _run(work: Awaitable[int]) -> int:
    async def guarded() -> int:
        return await work

    try:
        return asyncio.run(guarded())
    except UsageError as exc:
        print(f"paperbell: {exc}", file=sys.stderr)
        return EX_USAGE
    except ConfigError as exc:
        print(f"paperbell: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except UserError as exc:
        print(f"paperbell: {exc}", file=sys.stderr)
        return EX_FAIL
    except KeyboardInterrupt:
        return 130
    except Exception:
        log.exception("paperbell crashed")
        return EX_FAIL
