"""👍 / 👎 / "more like this" on Discord: buttons or menus under an alert or digest, and clicks.

A message of up to three papers carries a row of buttons per paper (👍, 👎, 🔔, 📌 follow),
their custom ids ``paperbell:like=KEY|SUB`` (the paper and the subscription that brought
it). A longer one (Discord allows five rows) carries select menus instead, custom ids
``paperbell:like``, ``paperbell:dislike``, ``paperbell:more`` and, when a row is left
(five papers or fewer), ``paperbell:follow``, whose options are its papers as
``KEY|SUB``. Either way the ids say everything, so a click is understood
however long ago the message was sent and across restarts: ``handle_rating`` runs from
``DiscordClient.on_interaction``, not from a view discord.py keeps in memory. A click
rates for whoever clicked (in a channel too), and the answer is private. Thin like the
commands: parse, one call on the core, render.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.errors import UserError
from bot.messages import Channel
from bot.models import DeliveryMode, Owner
from bot.service import Paperbell
from handlers.discord.commands_common import Interaction, answer, begin, send_error
from handlers.discord.render import (
    PDF_BUTTONS_PER_ROW,
    LinkButton,
    MessagePart,
    RatingOption,
    trim,
)
from handlers.discord.render_replies import Reply, error_text

log = logging.getLogger(__name__)

PREFIX = "paperbell:"
LIKE, DISLIKE, MORE = f"{PREFIX}like", f"{PREFIX}dislike", f"{PREFIX}more"
FOLLOW = f"{PREFIX}follow"
FOLLOW_MENU_ROW = 1  # free when the PDF buttons fit in row 0 (five papers or fewer)
OPTION_CHARS = 100  # Discord's limit for an option's label and value
FIRST_MENU_ROW = 2  # rows 0-1 hold the PDF buttons of up to ten papers
BUTTON_PAPERS = 3  # rows 2-4: one row of buttons per paper; more papers get the menus
CUSTOM_ID_CHARS = 100  # Discord's limit
_BUTTON_WORDS = {LIKE: "Like", DISLIKE: "Not for me", MORE: "More like this", FOLLOW: "Follow"}
_MENUS = (
    (LIKE, "👍 More papers like…", "👍"),
    (DISLIKE, "👎 Fewer papers like…", "👎"),
    (MORE, "🔔 Alert me to papers like…", "🔔"),
)
_FOLLOW = (FOLLOW, "📌 Follow (a note when it changes)…", "📌")


def message_view(part: MessagePart) -> discord.ui.View | None:
    """Link buttons and, for a message that offers ratings, the three menus."""
    if not part.buttons and not part.ratings:
        return None
    view = discord.ui.View(timeout=None)
    for button in part.buttons:
        view.add_item(_link(button))
    for item in _rating_items(part.ratings) if part.ratings else ():
        view.add_item(item)
    view.stop()  # nothing to call back in this process: clicks come through on_interaction
    return view


def _rating_items(options: Sequence[RatingOption]) -> list[discord.ui.Item[discord.ui.View]]:
    """A row of buttons per paper when they fit (rows 2-4), else the three menus."""
    kinds = (*_MENUS, _FOLLOW)
    ids = [button_id(custom_id, o) for o in options for custom_id, _, _ in kinds]
    if len(options) <= BUTTON_PAPERS and all(len(i) <= CUSTOM_ID_CHARS for i in ids):
        return [
            _button(custom_id, mark, o, row, alone=len(options) == 1)
            for row, o in enumerate(options, FIRST_MENU_ROW)
            for custom_id, _, mark in kinds
        ]
    menus: list[discord.ui.Item[discord.ui.View]] = [
        _menu(custom_id, placeholder, mark, options, row)
        for row, (custom_id, placeholder, mark) in enumerate(_MENUS, FIRST_MENU_ROW)
    ]
    if len(options) <= PDF_BUTTONS_PER_ROW:  # else no row is left: /follow or the CLI
        menus.append(_menu(*_FOLLOW, options, FOLLOW_MENU_ROW))
    return menus


def button_id(custom_id: str, option: RatingOption) -> str:
    return f"{custom_id}={option_value(option.paper_key, option.sub_id)}"


def _button(
    custom_id: str, mark: str, option: RatingOption, row: int, *, alone: bool
) -> discord.ui.Button[discord.ui.View]:
    words = _BUTTON_WORDS[custom_id]
    label = words if alone else f"#{option.number} {words}"
    return discord.ui.Button(
        style=discord.ButtonStyle.secondary,
        label=label,
        emoji=mark,
        custom_id=button_id(custom_id, option),
        row=row,
    )


def _link(button: LinkButton) -> discord.ui.Button[discord.ui.View]:
    return discord.ui.Button(
        style=discord.ButtonStyle.link, label=button.label, url=button.url, row=button.row
    )


def _menu(
    custom_id: str, placeholder: str, mark: str, options: Sequence[RatingOption], row: int
) -> discord.ui.Select[discord.ui.View]:
    many = custom_id != MORE  # one "more like this" subscription at a time
    return discord.ui.Select(
        custom_id=custom_id,
        placeholder=placeholder,
        min_values=1,
        max_values=len(options) if many else 1,
        options=[
            discord.SelectOption(
                label=trim(f"{mark} #{o.number} {o.title}", OPTION_CHARS),
                value=option_value(o.paper_key, o.sub_id),
            )
            for o in options
        ],
        row=row,
    )


def option_value(paper_key: str, sub_id: int | None) -> str:
    return f"{paper_key}|{sub_id if sub_id is not None else ''}"


def parse_values(values: Sequence[str]) -> dict[str, int | None]:
    """Paper key → the subscription that brought it (None when unknown)."""
    out: dict[str, int | None] = {}
    for value in values:
        key, _, sub = value.partition("|")
        if key:
            out[key] = int(sub) if sub.isdigit() else None
    return out


def parse_click(custom_id: str, values: Sequence[Any]) -> tuple[str, list[str]]:
    """(menu or button kind, the ``KEY|SUB`` values chosen): a button carries its one
    value in its id, a menu sends what was picked."""
    kind, sep, value = custom_id.partition("=")
    if sep:
        return kind, [value]
    return custom_id, [str(v) for v in values]


async def handle_rating(interaction: Interaction, service: Paperbell) -> bool:
    """Answer a click on one of our menus; False when it was not ours."""
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id, chosen = parse_click(str(data.get("custom_id", "")), data.get("values") or [])
    if custom_id not in (LIKE, DISLIKE, MORE, FOLLOW):
        return False
    values = parse_values(chosen)
    try:
        if custom_id == FOLLOW:
            await _follow(interaction, service, list(values))
        else:
            await _rate(interaction, service, custom_id, values)
    except UserError as exc:
        await send_error(interaction, error_text(str(exc)))
    except Exception:  # the boundary: logged once, the user gets a short apology
        log.exception("rating by user %s failed", interaction.user.id)
        await send_error(interaction, "Sorry, something went wrong; nothing was recorded.")
    return True


async def _follow(interaction: Interaction, service: Paperbell, keys: list[str]) -> None:
    """Follow for whoever clicked; in a server channel the channel is who received it."""
    caller = await begin(interaction, service)
    if not keys:
        raise UserError("pick a paper in the menu")
    where = interaction.channel_id if interaction.guild_id else None
    received_by = Owner.channel(str(where)) if where else None
    for key in keys:
        await service.follow(caller.owner, key, Channel.DISCORD, received_by)
    text = (
        f"📌 Following {', '.join(keys)}: one DM when a new version, code or "
        "upvotes come; /subscriptions lists what you follow."
    )
    await answer(interaction, Reply(text))


async def _rate(
    interaction: Interaction, service: Paperbell, custom_id: str, values: dict[str, int | None]
) -> None:
    caller = await begin(interaction, service)
    if not values:
        raise UserError("pick a paper in the menu")
    if custom_id == MORE:
        [key] = list(values)[:1]
        done = await service.subscribe(
            caller.owner, f"like:{key}", frozenset({DeliveryMode.DISCORD})
        )
        sub = done.subscription
        text = (
            f"🔔 Subscribed (#{sub.id}) to papers like {key}: they come here by DM. "
            f"It would have matched {done.test.count} paper(s) in the last {done.test.days} "
            "days; /unsubscribe stops it."
        )
        await answer(interaction, Reply(text))
        return
    like = custom_id == LIKE
    subs = {k: s for k, s in values.items() if s is not None}
    await service.rate(
        caller.user.id,
        like=list(values) if like else [],
        dislike=[] if like else list(values),
        sub_ids=subs,
    )
    mark = "👍" if like else "👎"
    await answer(
        interaction,
        Reply(f"{mark} Noted for {', '.join(values)}: your next alerts and digests learn from it."),
    )
