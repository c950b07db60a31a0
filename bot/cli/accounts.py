"""CLI commands about people: ``confirm`` and ``settings`` — for operators.

Also what the CLI says about a confirmation mail after ``subscribe``: only what happened
(sent, written to a file, queued behind an unreachable server, refused, or not needed).
"""

from __future__ import annotations

import argparse
import calendar
from datetime import datetime
from typing import Any

from bot.accounts.addresses import (
    AddressRequest,
    Confirmation,
    check_email_address,
    confirmation_expires,
)
from bot.cli.ops import send_email
from bot.daemon.resources import Resources, open_resources
from bot.errors import InvalidValueError, NotFoundError, UsageError, UserError
from bot.models import DigestFrequency, User
from bot.service import check_timezone
from bot.settings import Settings, is_loopback_url
from bot.store.protocols import Delivery, DeliveryState

UNTIL_CONFIRMED = "nothing else is sent until it is confirmed"
_WHAT = {
    Confirmation.RESENT: "a new confirmation",
    Confirmation.PENDING: "the confirmation already pending",
}


async def send_confirmation(res: Resources, request: AddressRequest) -> str:
    """Send the confirmation the request left in the outbox; one line on what happened."""
    if request.confirmation is Confirmation.CONFIRMED:
        return ""
    if request.confirmation is Confirmation.NOT_SENT:
        return f"no confirmation was sent to {request.user.email}: {request.reason}"
    if request.delivery is not None and request.delivery.state is DeliveryState.PENDING:
        await send_email(res)
        request_row = await res.store.get_delivery(request.delivery.key)
        return confirmation_line(request, request_row or request.delivery, res.settings)
    return confirmation_line(request, request.delivery, res.settings)


def confirmation_line(request: AddressRequest, row: Delivery | None, settings: Settings) -> str:
    address = request.user.email
    if row is None:  # nothing to look at: say only what the core did
        return f"a confirmation to {address} is {request.confirmation}"
    if request.confirmation is Confirmation.PENDING and row.state is DeliveryState.SENT:
        return (
            f"no new confirmation was sent: the one sent to {address} at {_when(row.sent_at)} "
            f"is valid until {_when(confirmation_expires(row))}; {UNTIL_CONFIRMED}"
        )
    what = _WHAT.get(request.confirmation, "a confirmation")
    why = f" ({request.reason})" if request.reason else ""
    return _outcome(what, why, address or "", row, settings)


def _outcome(what: str, why: str, address: str, row: Delivery, settings: Settings) -> str:
    if row.state is DeliveryState.SENT and not settings.smtp.host:
        folder = settings.data_dir / "outbox"
        return f"{what}{why} for {address} was written to {folder} (no SMTP server is set)"
    if row.state is DeliveryState.SENT:
        note = _link_note(settings)
        return f"{what}{why} was sent to {address}; {UNTIL_CONFIRMED}{note}"
    if row.state in (DeliveryState.PENDING, DeliveryState.SENDING):
        error = row.last_error or "not due yet"
        return (
            f"{what}{why} for {address} is queued but not sent yet ({error}); "
            "the daemon (paperbell run) keeps trying"
        )
    return f"{what}{why} to {address} was not sent: {row.last_error or row.state}"


def _link_note(settings: Settings) -> str:
    if not is_loopback_url(settings.public_url):
        return ""
    return (
        f"; note: its link points at {settings.public_url} (PAPERBELL_PUBLIC_URL), "
        "which opens only on this machine"
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "an unknown time"


# --- confirm and settings ----------------------------------------------------------------------


def add_account_commands(commands: Any) -> None:
    confirm = commands.add_parser(
        "confirm", help="confirm an address yourself, without the confirmation mail"
    )
    confirm.add_argument("--email", required=True, metavar="ADDR")
    confirm.set_defaults(handler=cmd_confirm, validate=_validate)

    settings = commands.add_parser(
        "settings", help="show or change a user's time zone, digest hour and frequency"
    )
    settings.add_argument("--email", required=True, metavar="ADDR")
    settings.add_argument("--timezone", metavar="IANA", help="e.g. Europe/Berlin")
    settings.add_argument("--hour", metavar="0-23", help="local hour the digest goes out")
    settings.add_argument("--frequency", metavar="|".join(DigestFrequency))
    settings.add_argument("--weekday", metavar="DAY", help="day of a weekly digest, e.g. monday")
    settings.set_defaults(handler=cmd_settings, validate=_validate)


async def cmd_confirm(args: argparse.Namespace, settings: Settings) -> int:
    address = _address(args.email)
    async with open_resources(settings, index=False) as res:
        before = await res.store.find_user(email=address)
        user = await res.service.confirm_by_operator(address)
    if user.email_suppressed:
        print(
            f"{user.email} is confirmed, but paperbell sends it nothing "
            f"({user.email_suppressed_reason or 'deliveries failed'}); "
            f"paperbell subscribe --email {user.email} QUERY mails its owner a new confirmation"
        )
    elif before is not None and before.email_verified:
        print(f"{user.email} was confirmed already; nothing changed")
    else:
        print(f"{user.email} is confirmed; paperbell now sends it its mail")
    return 0


async def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    address = _address(args.email)
    changes = _setting_changes(args)
    async with open_resources(settings, index=False) as res:
        user = await res.store.find_user(email=address)
        if user is None:
            raise NotFoundError(f"no account has the address {address}")
        if changes:
            user = await res.service.update_settings(user.id, **changes)
    print(("settings saved: " if changes else "") + format_settings(user))
    return 0


def _validate(args: argparse.Namespace) -> None:
    """Arguments checked before the data directory is touched: a typo creates nothing."""
    _address(args.email)
    if args.command == "settings":
        _setting_changes(args)


def _address(text: str) -> str:
    try:
        return check_email_address(text)
    except InvalidValueError as exc:
        raise UsageError(f"--email: {exc}") from None


def _setting_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The options given, checked: a bad one is a usage error naming the fix."""
    changes: dict[str, Any] = {}
    if args.timezone is not None:
        try:
            changes["timezone"] = check_timezone(args.timezone.strip())
        except UserError as exc:
            raise UsageError(f"--timezone: {exc}") from None
    if args.hour is not None:
        changes["digest_hour"] = _hour(args.hour)
    if args.frequency is not None:
        changes["frequency"] = _frequency(args.frequency)
    if args.weekday is not None:
        changes["weekday"] = _weekday(args.weekday)
    return changes


def _hour(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or not 0 <= int(value) <= 23:
        raise UsageError(f"--hour: {text!r} is not an hour; give a whole number 0-23, like 8")
    return int(value)


def _frequency(text: str) -> DigestFrequency:
    try:
        return DigestFrequency(text.strip().lower())
    except ValueError:
        names = ", ".join(DigestFrequency)
        raise UsageError(f"--frequency: {text!r} is not a frequency; use one of {names}") from None


def _weekday(text: str) -> int:
    days = [name.lower() for name in calendar.day_name]
    typed = text.strip().lower()
    found = [i for i, name in enumerate(days) if len(typed) >= 3 and name.startswith(typed)]
    if not found:
        raise UsageError(f"--weekday: {text!r} is not a day; use a name like monday or mon")
    return found[0]


def format_settings(user: User) -> str:
    frequency = str(user.digest_frequency)
    if user.digest_frequency is DigestFrequency.WEEKLY:
        frequency = f"weekly on {calendar.day_name[user.digest_weekday]}s"
    state = "confirmed" if user.email_verified else "not confirmed yet"
    if user.email_suppressed:
        state = f"stopped: {user.email_suppressed_reason or 'deliveries failed'}"
    return (
        f"{user.email} ({state}): timezone {user.timezone}, digest {frequency} at "
        f"{user.digest_hour:02d}:00 local time, alerts {'paused' if user.paused else 'on'}"
    )
