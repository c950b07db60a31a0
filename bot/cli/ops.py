"""CLI commands for operators: ``run``, ``status``, ``check``, ``digest``, ``outbox``."""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.accounts.addresses import LinkBuilder
from bot.cli.papers import positive_int
from bot.daemon.channels import ChannelContext, open_channels
from bot.daemon.health import check_health
from bot.daemon.leader import LEADER, describe
from bot.daemon.resources import Resources, open_resources
from bot.daemon.run import run_daemon, run_once
from bot.daemon.state import DaemonRecord, RecordedSource, read_daemon_record
from bot.delivery.channel_status import META_KEY as CHANNELS_META
from bot.delivery.channel_status import waiting_reasons
from bot.delivery.digests import next_local_date, slot
from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher, DispatchReport
from bot.delivery.notifier import DigestMessage
from bot.delivery.quiet_day import day_lines
from bot.errors import NoDatabaseError, NotFoundError, SchemaOutdatedError, UserError
from bot.exitcodes import ExitCode
from bot.models import SourceState, User
from bot.settings import Settings
from bot.sources.failures import source_key
from bot.sources.ingest import utc_now
from bot.store.open import open_store, reading_store, store_name
from bot.store.paging import every_delivery, every_user
from bot.store.protocols import Delivery, DeliveryState, Store

DIGESTS_SHOWN = 10  # `status` lists the soonest digests, then says how many more
OUTBOX_SHOWN = 100  # `outbox` lists the newest rows unless --limit says otherwise


def add_ops_commands(commands: Any) -> None:
    run = commands.add_parser("run", help="run the daemon (stop with SIGTERM or Ctrl-C)")
    run.add_argument(
        "--once", action="store_true", help="one cycle over every source, send, then exit"
    )
    run.set_defaults(handler=cmd_run)
    migrate = commands.add_parser("migrate", help="create or upgrade the database, then exit")
    migrate.set_defaults(handler=cmd_migrate)
    status = commands.add_parser("status", help="sources, users, outbox, next digests")
    status.set_defaults(handler=cmd_status, read_only=True)
    check = commands.add_parser("check", help="exit 0 when healthy, 1 with every reason")
    check.set_defaults(handler=cmd_check, read_only=True)

    digest = commands.add_parser("digest", help="send digests that are due (or print them)")
    digest.add_argument("--email", metavar="ADDR", help="only this address's digest")
    digest.add_argument("--now", action="store_true", help="send now, whatever the hour")
    digest.add_argument("--preview", action="store_true", help="print, send nothing")
    digest.set_defaults(handler=cmd_digest)

    outbox = commands.add_parser("outbox", help="what is queued, sent, failed and why")
    outbox.add_argument("--status", choices=[s.value for s in DeliveryState])
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    shown = outbox.add_mutually_exclusive_group()
    shown.add_argument(
        "--limit",
        type=positive_int,
        default=OUTBOX_SHOWN,
        metavar="N",
        help=f"list the newest N rows (default {OUTBOX_SHOWN})",
    )
    shown.add_argument("--all", action="store_true", help="list every row")
    outbox.set_defaults(handler=cmd_outbox, read_only=True)


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    return await (run_once(settings) if args.once else run_daemon(settings))


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Bring the database to this paperbell's schema, saying what that took."""
    before = await _before_migrating(settings)
    store = await open_store(settings)  # opening migrates (and creates a new database)
    await store.close()
    name = store_name(settings)
    if isinstance(before, SchemaOutdatedError):
        print(f"{name}: migrated from schema version {before.current} to {before.latest}")
    elif isinstance(before, NoDatabaseError):
        print(f"{name}: created")
    else:
        print(f"{name} is up to date")
    return ExitCode.OK


async def _before_migrating(
    settings: Settings,
) -> SchemaOutdatedError | NoDatabaseError | None:
    """What a reader finds before the migration: an older schema, no database yet, or
    nothing to do (None). A schema newer than this paperbell's is raised, as it will be."""
    try:
        async with reading_store(settings):
            return None
    except (SchemaOutdatedError, NoDatabaseError) as exc:
        return exc


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with reading_store(settings) as store:
            health = await check_health(store, settings, utc_now())
    except NoDatabaseError as exc:
        print(f"unhealthy: {exc}")
        return ExitCode.FAILURE
    lines = [f"unhealthy: {why}" for why in health.reasons] or [f"ok: {health.detail}"]
    print("\n".join([*lines, *(f"note: {note}" for note in health.notes)]))
    return ExitCode.OK if health.ok else ExitCode.FAILURE


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    async with reading_store(settings) as store:
        lines = await status_lines(store, settings)
    print("\n".join(lines))
    return ExitCode.OK


async def status_lines(store: Store, settings: Settings) -> list[str]:
    record = await read_daemon_record(store, settings)
    states = {source_key(s.source_id): s for s in await store.list_source_states()}
    lines = [sources_heading(record)]
    for source in record.sources:
        lines += source_lines(source, states.get(source.key))
    if record.email_helpers:
        lines.append(f"email: sent by the daemon and {record.email_helpers} helper process(es)")
    # Counted by the store: a community has 10,000s of users and millions of outbox rows.
    users, subs = await store.count_users(), await store.count_subscriptions()
    lines.append(f"users: {users}   subscriptions: {subs}")
    states_count = await store.delivery_counts()
    outbox = ", ".join(f"{s} {states_count.get(s, 0)}" for s in DeliveryState)
    lines.append(f"outbox: {outbox}")
    lines += ["next digests:", *await next_digests(every_user(store))]
    if settings.database_url is not None:
        lines.append(await leader_line(store))
    today = await day_lines(store, utc_now(), {s.key for s in record.sources})
    lines += ["today:", *(f"  {line}" for line in today)]
    return lines


async def leader_line(store: Store) -> str:
    """Which process polls, matches and sends digests for the processes on PostgreSQL."""
    lease = await store.get_lease(LEADER)
    if lease is None:
        return "leader: none (no `paperbell run` holds the lease; one takes it within seconds)"
    return f"leader: {describe(lease)}"


def sources_heading(record: DaemonRecord) -> str:
    if record.started_at is None:
        return "sources (from this shell's settings: no daemon has recorded its sources here):"
    return f"sources (of the daemon started {record.started_at:%Y-%m-%d %H:%M} UTC):"


def source_lines(source: RecordedSource, st: SourceState | None) -> list[str]:
    ok = st.last_success.isoformat(timespec="minutes") if st and st.last_success else "never"
    err = (
        f"; last error {st.last_error_at:%Y-%m-%d %H:%M} UTC: {st.last_error}"
        if (st and st.last_error and st.last_error_at)
        else ""
    )
    return [
        f"  {source.name:<12} {source.kind:<10} last success {ok}{err}",
        f"  {'':<12} {source.url} ({source.schedule})",
    ]


async def next_digests(users: AsyncIterator[User], shown: int = DIGESTS_SHOWN) -> list[str]:
    """The ``shown`` soonest digests, soonest first, then how many more are scheduled: a
    community's full list would be a line per reader."""
    now = utc_now()
    soonest: list[tuple[float, int, str]] = []  # a heap whose root is the latest kept
    scheduled = 0
    async for user in users:
        found = _next_digest(user, now)
        if found is None:
            continue
        scheduled += 1
        entry = (-found[0].timestamp(), -user.id, found[1])
        if len(soonest) < shown:
            heapq.heappush(soonest, entry)
        else:
            heapq.heappushpop(soonest, entry)
    rows = [line for _, _, line in sorted(soonest, reverse=True)]
    if scheduled > shown:
        rows.append(f"  … and {scheduled - shown} more ({scheduled} scheduled in all)")
    return rows or ["  none"]


def _next_digest(user: User, now: datetime) -> tuple[datetime, str] | None:
    """When the user's next digest is due and its status line; None if none is."""
    day = next_local_date(user, now) if user.email_deliverable and not user.paused else None
    if day is None:
        return None
    when = slot(user, day)
    local = when.astimezone(ZoneInfo(user.timezone))
    return when, f"  {user.email:<32} {local:%a %Y-%m-%d %H:%M} {user.timezone}"


async def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    state = DeliveryState(args.status) if args.status else None
    async with reading_store(settings) as store:
        waiting = waiting_reasons(await store.get_meta(CHANNELS_META))
        rows = _outbox_rows(store, state, None if args.all else args.limit)
        shown = 0
        async for row in rows:  # printed as read: --all on a community's outbox
            why = waiting.get(row.channel) if row.state is DeliveryState.PENDING else None
            print(json.dumps(delivery_json(row, why)) if args.json else delivery_line(row, why))
            shown += 1
        # Counting scans the table: only when the listing may have been cut short.
        counts = await store.delivery_counts() if shown == args.limit and not args.all else None
    kind = f"{state} deliveries" if state else "deliveries"
    total = shown
    if counts is not None:
        total = counts.get(state, 0) if state else sum(counts.values())
    if not shown and not args.json:
        print("the outbox is empty" + (f" of {kind}" if state else ""))
    elif shown < total:  # said apart from JSON lines, which stay one object each
        note = f"the newest {shown} of {total} {kind}; --limit N or --all lists more"
        print(note, file=sys.stderr if args.json else sys.stdout)
    return ExitCode.OK


async def _outbox_rows(
    store: Store, state: DeliveryState | None, limit: int | None
) -> AsyncIterator[Delivery]:
    """The newest ``limit`` rows, or every row a page at a time (``limit`` None)."""
    if limit is None:
        async for row in every_delivery(store, state):
            yield row
        return
    for row in await store.list_deliveries(state=state, limit=limit):
        yield row


def delivery_json(row: Delivery, waiting: str | None = None) -> dict[str, object]:
    """``waiting``: why a pending row is not being sent (its channel is down)."""
    return {
        "id": row.id,
        "key": row.key,
        "owner": str(row.owner),
        "channel": row.channel.value,
        "kind": row.kind.value,
        "state": row.state.value,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "last_error": row.last_error,
        "waiting": waiting,
    }


def delivery_line(row: Delivery, waiting: str | None = None) -> str:
    reasons = [r for r in (waiting, row.last_error) if r]
    why = f"  ({'; '.join(reasons)})" if reasons else ""
    return f"#{row.id:<6} {row.state:<10} {row.channel:<8} {row.kind:<8} {row.key}{why}"


async def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    async with open_resources(settings, index=False) as res:
        users = await _digest_users(res, args.email)
        if args.preview:
            for user in users:
                message = await res.service.digests.preview(user, utc_now())
                print(format_preview(user, message))
            return ExitCode.OK
        skipped = [u for u in users if args.now and not u.email_deliverable]
        if args.email and skipped:
            raise UserError(f"{args.email} is not confirmed (or is suppressed); nothing sent")
        created = await _create_digests(res, [u for u in users if u not in skipped], force=args.now)
        report = await send_email(res)
    sent = report.count(DeliveryOutcome.SENT)
    print(f"{created} digest(s) created; {sent} email delivery(ies) sent")
    if skipped:
        print(skipped_line([u.email or "" for u in skipped]))
    return ExitCode.OK


def skipped_line(addresses: list[str], shown: int = 10) -> str:
    more = f" and {len(addresses) - shown} more" if len(addresses) > shown else ""
    return (
        f"skipped {len(addresses)} address(es) not confirmed (or suppressed): "
        + ", ".join(addresses[:shown])
        + more
    )


async def _digest_users(res: Resources, email: str | None) -> list[User]:
    if email is None:
        return [u for u in await res.store.list_users() if u.email]
    user = await res.store.find_user(email=email.strip())
    if user is None:
        raise NotFoundError(f"no account has the address {email!r}")
    return [user]


async def _create_digests(res: Resources, users: list[User], *, force: bool) -> int:
    """Digests due now, or with ``force`` one for each of ``users`` (all deliverable)."""
    if not force:
        return await res.service.digests.tick(utc_now())
    created = 0
    for user in users:
        today = utc_now().astimezone(ZoneInfo(user.timezone)).date()
        allow_empty = res.settings.email.all_quiet
        if await res.store.create_digest(user.owner, today, utc_now(), allow_empty=allow_empty):
            created += 1
    return created


async def send_email(res: Resources) -> DispatchReport:
    """Open the email channel and send everything due on it, once."""
    async with AsyncExitStack() as stack:
        ctx = ChannelContext(res.settings, res.service, utc_now)
        notifiers = await open_channels(ctx, stack, names={"email"})
        links = LinkBuilder.from_settings(res.settings, res.service.signer)
        dispatcher = Dispatcher(
            res.store, notifiers, links, utc_now, random.Random(), digests=res.service.digests
        )
        return await dispatcher.run_once()


def format_preview(user: User, message: DigestMessage | None) -> str:
    if message is None:
        return f"{user.email}: nothing waiting for the next digest"
    lines = [
        f"{user.email}: digest for {message.local_date:%a %d %b} · {message.paper_count} paper(s)"
    ]
    for section in message.sections:
        lines.append(f"  {section.subscription.query}")
        lines += [f"    - {item.paper.title} ({item.paper.key})" for item in section.items]
    if message.more:
        lines.append(f"  and {message.more} more")
    lines += [f"  note: {note}" for note in message.source_notes]
    return "\n".join(lines)
