"""``paperbell migrate-store --from sqlite:PATH --to postgresql://…``: move to PostgreSQL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.errors import StoreError, UsageError
from bot.exitcodes import ExitCode
from bot.settings import Settings
from bot.store.postgres._base import describe_url
from bot.store.transfer import TableCount, copy_store

BAR = 30


def add_transfer_commands(commands: Any) -> None:
    move = commands.add_parser(
        "migrate-store",
        help="copy a SQLite database into PostgreSQL (safe to run again)",
    )
    move.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH")
    move.add_argument("--to", dest="target", required=True, metavar="postgresql://…")
    move.set_defaults(handler=cmd_migrate_store, validate=_validate, read_only=True)


def _validate(args: argparse.Namespace) -> None:
    if not str(args.source).startswith("sqlite:") or len(args.source) == len("sqlite:"):
        raise UsageError(f"--from must be sqlite:PATH (the SQLite file), not {args.source!r}")
    if not str(args.target).startswith(("postgresql://", "postgres://")):
        shown = describe_url(args.target)
        raise UsageError(f"--to must be a postgresql:// URL, not {shown}")


async def cmd_migrate_store(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(str(args.source).removeprefix("sqlite:"))
    try:
        counts = await copy_store(path, args.target, _progress)
    except StoreError as exc:
        print(f"paperbell: {exc}; nothing half-copied is lost: run it again", file=sys.stderr)
        return ExitCode.FAILURE
    for count in counts:
        mark = "ok" if count.ok else "DIFFERS"
        print(f"{count.table:<14} sqlite {count.source:>9}  postgresql {count.target:>9}  {mark}")
    return _verdict(counts, args.target)


def _verdict(counts: list[TableCount], url: str) -> int:
    wrong = [c.table for c in counts if not c.ok]
    if wrong:
        print(
            f"paperbell: counts differ in {', '.join(wrong)}: {describe_url(url)} held other rows"
            " before the copy (copy into an empty database)",
            file=sys.stderr,
        )
        return ExitCode.FAILURE
    print(f"copied into {describe_url(url)}: every table's count matches")
    return ExitCode.OK


def _progress(table: str, done: int, total: int) -> None:
    """``papers  [#########.....]  4000/9000`` on stderr, redrawn in place on a terminal."""
    filled = BAR * done // total if total else BAR
    line = f"{table:<14} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total}"
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r{line}", end=end, file=sys.stderr, flush=True)
    elif done == total:
        print(line, file=sys.stderr)
