"""👍 / 👎 / "more like this" on Discord: the menus under an alert or digest, and their clicks.

Each message of an alert or digest carries its link buttons and three select menus
(custom ids ``paperbell:like``, ``paperbell:dislike``, ``paperbell:more``) whose options are
its papers: ``KEY|SUB`` (the paper and the subscription that brought it). The ids are
fixed, so a click is understood however long ago the message was sent and across
restarts: ``handle_rating`` runs from ``DiscordClient.on_interaction``, not from a view
discord.py keeps in memory. A click rates for whoever clicked (in a channel too), and the
answer is private. Thin like the commands: parse, one call on the core, render.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.errors import UserError
from bot.models import DeliveryMode
from bot.service import Paperbell
from handlers.discord.commands_common import Interaction, answer, begin, send_error
from handlers.discord.render import LinkButton, MessagePart, RatingOption, trim
from handlers.discord.render_replies import Reply, error_text

log = logging.getLogger(__name__)

PREFIX = "paperbell:"
LIKE, DISLIKE, MORE = f"{PREFIX}like", f"{PREFIX}dislike", f"{PREFIX}more"
OPTION_CHARS = 100  # Discord's limit for an option's label and value
FIRST_MENU_ROW = 2  # rows 0-1 hold the PDF buttons of up to ten papers
_MENUS = (
    (LIKE, "👍 More papers like…", "👍"),
    (DISLIKE, "👎 Fewer papers like…", "👎"),
    (MORE, "🔔 Alert me to papers like…", "🔔"),
)


def message_view(part: MessagePart) -> discord.ui.View | None:
    """Link buttons and, for a message that offers ratings, the three menus."""
    if not part.buttons and not part.ratings:
        return None
    view = discord.ui.View(timeout=None)
    for button in part.buttons:
        view.add_item(_link(button))
    for row, (custom_id, placeholder, mark) in enumerate(_MENUS, FIRST_MENU_ROW):
        if part.ratings:
            view.add_item(_menu(custom_id, placeholder, mark, part.ratings, row))
    view.stop()  # nothing to call back in this process: clicks come through on_interaction
    return view


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


async def handle_rating(interaction: Interaction, service: Paperbell) -> bool:
    """Answer a click on one of our menus; False when it was not ours."""
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = str(data.get("custom_id", ""))
    if custom_id not in (LIKE, DISLIKE, MORE):
        return False
    values = parse_values([str(v) for v in data.get("values") or []])
    try:
        await _rate(interaction, service, custom_id, values)
    except UserError as exc:
        await send_error(interaction, error_text(str(exc)))
    except Exception:  # the boundary: logged once, the user gets a short apology
        log.exception("rating by user %s failed", interaction.user.id)
        await send_error(interaction, "Sorry, something went wrong; nothing was recorded.")
    return True


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
