"""The caller's own account: /settings, /email set|verify|remove, and /digest (a preview)."""

from __future__ import annotations

import calendar
from collections.abc import Callable

from discord import app_commands

from bot.models import DigestFrequency
from bot.service import Paperbell, timezone_names
from handlers.discord.commands_common import CHOICES_MAX, Command, Interaction, answer, begin
from handlers.discord.render_replies import (
    digest_preview_reply,
    email_removed_reply,
    email_set_reply,
    email_verified_reply,
    settings_reply,
)

PAUSE = {"pause": True, "resume": False}


def timezone_choices(current: str) -> list[app_commands.Choice[str]]:
    """IANA names holding what was typed, those starting with it first (25 at most)."""
    typed = current.strip().lower().replace(" ", "_")
    names = timezone_names()
    starts = [n for n in names if n.lower().startswith(typed)]
    started = set(starts)
    inside = [n for n in names if typed in n.lower() and n not in started]
    return [app_commands.Choice(name=n, value=n) for n in (starts + inside)[:CHOICES_MAX]]


def settings_command(service: Paperbell) -> Command:
    @app_commands.command(
        name="settings", description="Show or change your timezone, digest time and pause"
    )
    @app_commands.describe(
        timezone="Your time zone, e.g. Europe/Berlin (start typing a city)",
        digest_hour="Local hour the digest goes out, 0-23",
        frequency="How often the digest goes out",
        weekday="The day of a weekly digest",
        alerts="Pause or resume all alerts and digests",
    )
    @app_commands.choices(
        frequency=[app_commands.Choice(name=str(f), value=str(f)) for f in DigestFrequency],
        alerts=[app_commands.Choice(name=k, value=k) for k in PAUSE],
    )
    @app_commands.choices(
        weekday=[app_commands.Choice(name=n, value=i) for i, n in enumerate(calendar.day_name)]
    )
    async def settings(
        interaction: Interaction,
        *,  # discord.py passes options by name
        timezone: str | None = None,
        digest_hour: app_commands.Range[int, 0, 23] | None = None,
        frequency: str | None = None,
        weekday: int | None = None,
        alerts: str | None = None,
    ) -> None:
        caller = await begin(interaction, service)
        changes = (timezone, digest_hour, frequency, weekday, alerts)
        user = caller.user
        if any(value is not None for value in changes):
            user = await service.update_settings(
                user.id,
                timezone=timezone,
                digest_hour=digest_hour,
                frequency=DigestFrequency(frequency) if frequency else None,
                weekday=weekday,
                paused=PAUSE[alerts] if alerts else None,
            )
        await answer(interaction, settings_reply(user, changed=user is not caller.user))

    @settings.autocomplete("timezone")
    async def zones(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return timezone_choices(current)

    return settings


def email_group(service: Paperbell) -> app_commands.Group:
    email = app_commands.Group(
        name="email", description="Your email address for email alerts and digests"
    )

    @email.command(name="set", description="Set your address; a confirmation is mailed to it")
    @app_commands.describe(address="The email address, e.g. ada@example.org")
    async def set_(interaction: Interaction, address: app_commands.Range[str, 3, 254]) -> None:
        caller = await begin(interaction, service)
        await answer(interaction, email_set_reply(await service.set_email(caller.user.id, address)))

    @email.command(
        name="verify", description="Confirm your address with the 6-digit code mailed to it"
    )
    @app_commands.describe(code="The 6-digit code from the confirmation mail")
    async def verify(interaction: Interaction, code: app_commands.Range[str, 1, 20]) -> None:
        caller = await begin(interaction, service)
        await answer(
            interaction,
            email_verified_reply(await service.verify_email(caller.user.id, code.strip())),
        )

    @email.command(name="remove", description="Forget your address; nothing more is mailed to it")
    async def remove(interaction: Interaction) -> None:
        caller = await begin(interaction, service)
        await service.remove_email(caller.user.id)
        await answer(interaction, email_removed_reply())

    return email


def digest_command(service: Paperbell) -> Command:
    @app_commands.command(name="digest", description="Preview your next email digest now")
    async def digest(interaction: Interaction) -> None:
        caller = await begin(interaction, service)
        await answer(
            interaction, digest_preview_reply(await service.digest_preview(caller.user.id))
        )

    return digest


ACCOUNT_COMMANDS: tuple[Callable[[Paperbell], Command | app_commands.Group], ...] = (
    settings_command,
    email_group,
    digest_command,
)
