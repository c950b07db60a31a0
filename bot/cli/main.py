"""The ``paperbell`` command line (also ``python -m bot``).

This is a boundary: it turns ``UserError`` into one line on stderr and an exit code
(``bot.exitcodes``), and logs anything unexpected once. Read-only commands (``status``,
``papers``, ``search``, ``outbox``, ``check``) never create the data directory, migrate the
database or compile subscriptions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.errors import ConfigError, NoDatabaseError, QueryError, UsageError, UserError
from bot.exitcodes import ExitCode

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("paperbell")

Handler = Callable[[argparse.Namespace, "Settings"], Awaitable[int]]


class Parser(argparse.ArgumentParser):
    """argparse that reads a word starting with '-' which is no option of the command as a
    positional: queries like ``-survey`` or ``---a`` need no ``--`` in front."""

    def _parse_optional(self, arg_string: str) -> Any:
        if arg_string.startswith("-") and arg_string != "--" and not self._names_option(arg_string):
            return None  # argparse: None means "a positional"
        return super()._parse_optional(arg_string)

    def _names_option(self, arg_string: str) -> bool:
        name = arg_string.split("=", 1)[0]
        # An exact option, or an abbreviation of a long one (argparse allows those).
        return any(
            option == name or (name.startswith("--") and option.startswith(name))
            for option in self._option_string_actions
        )


def build_parser() -> argparse.ArgumentParser:
    # Imported here: the commands pull in aiohttp, pydantic and the scheduler, which
    # `--version` does not need.
    from bot.cli.accounts import add_account_commands
    from bot.cli.follow import add_follow_commands
    from bot.cli.ops import add_ops_commands
    from bot.cli.papers import add_paper_commands
    from bot.cli.relevance import add_relevance_commands
    from bot.cli.subscriptions import add_subscription_commands
    from bot.cli.transfer import add_transfer_commands
    from bot.cli.why import add_why_commands

    parser = Parser(
        prog="paperbell",
        description="Watch new research papers; tell each person about the ones they want.",
    )
    parser.add_argument("--version", action="version", version=f"paperbell {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    add_paper_commands(commands)
    add_subscription_commands(commands)
    add_account_commands(commands)
    add_relevance_commands(commands)
    add_why_commands(commands)
    add_follow_commands(commands)
    add_ops_commands(commands)
    add_transfer_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:
        return _broken_pipe()


def _main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print(f"paperbell {__version__}")
        return ExitCode.OK
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    args = parser.parse_args(argv)
    validate: Callable[[argparse.Namespace], None] | None = getattr(args, "validate", None)
    try:
        if validate is not None:
            validate(args)  # a bad argument is refused before anything is created
    except UserError as exc:
        for line in str(exc).splitlines() or [""]:
            print(f"paperbell: {line}", file=sys.stderr)
        return user_error_code(exc)
    try:
        settings = _settings(read_only=getattr(args, "read_only", False))
    except ConfigError as exc:
        print(f"paperbell: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    handler: Handler = args.handler
    return _run(handler(args, settings))


def _settings(*, read_only: bool) -> Settings:
    """Settings checked, misspelled names warned about, the data directory usable (made,
    unless the command only reads), logging set up."""
    from bot.cli.datadir import check_data_dir
    from bot.logs import configure_logging
    from bot.settings import load_settings
    from bot.settings_check import unknown_setting_warnings

    for line in unknown_setting_warnings(os.environ, Path(".env")):
        print(line, file=sys.stderr)
    settings = load_settings()
    check_data_dir(settings.data_dir, create=not read_only)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _run(work: Awaitable[int]) -> int:
    async def guarded() -> int:
        return await work

    try:
        return asyncio.run(guarded())
    except BrokenPipeError:
        raise  # main() handles it: not a crash, the reader went away
    except UserError as exc:
        code = user_error_code(exc)
        label = "configuration error: " if code is ExitCode.CONFIG else ""
        for line in str(exc).splitlines() or [""]:  # one line per problem, each prefixed
            print(f"paperbell: {label}{line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception:
        log.exception("paperbell crashed")
        return ExitCode.FAILURE


def user_error_code(exc: UserError) -> ExitCode:
    if isinstance(exc, NoDatabaseError):
        return ExitCode.OK  # nothing stored yet is an empty answer (`check` says unhealthy)
    if isinstance(exc, UsageError | QueryError):
        return ExitCode.USAGE  # a bad query is a bad argument
    if isinstance(exc, ConfigError):
        return ExitCode.CONFIG
    return ExitCode.FAILURE


def _broken_pipe() -> int:
    """``paperbell papers | head -1``: stop quietly. stdout goes to /dev/null so the
    interpreter's final flush does not raise again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (under a test harness): nothing to flush
    return ExitCode.BROKEN_PIPE
