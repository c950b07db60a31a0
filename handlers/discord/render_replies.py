"""Replies to slash commands: what the core returned, as text and embeds. Pure functions.

Every reply is a ``Reply`` (content plus embeds); the command layer sends it. A notice the
core owes the user ("I could not DM you ...") goes first, whatever the command.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, replace

import discord

from bot.accounts.addresses import AddressRequest, Confirmation
from bot.delivery.follows import Followed
from bot.delivery.notifier import AlertItem, DigestMessage
from bot.delivery.why_model import Why, why_lines
from bot.models import DeliveryMode, DigestFrequency, OwnerKind, Paper, Subscription, User
from bot.service import QueryTest, Recommendation, Subscribed, SubscriptionView
from handlers.discord.render import (
    COLOR,
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    LinkButton,
    MessagePart,
    digest_parts,
    escaped,
    item_card,
    pack,
    paper_card,
    plural,
    safe_user_text,
    trim_lines,
    web_url,
)

EXAMPLES_SHOWN = 3
SEARCH_RESULTS = 5


@dataclass(frozen=True, slots=True)
class Reply:
    content: str = ""
    embeds: tuple[discord.Embed, ...] = ()
    buttons: tuple[LinkButton, ...] = ()


def with_notice(reply: Reply, notice: str | None) -> Reply:
    if not notice:
        return reply
    content = f"⚠️ {escaped(notice, 500)}\n\n{reply.content}".strip()
    return replace(reply, content=content[:CONTENT_LIMIT])


def error_text(message: str) -> str:
    """A ``UserError``'s text as a reply: the core writes it lower-case, mid-sentence."""
    message = message.strip() or "that did not work"
    return f"❌ {message[0].upper()}{message[1:]}"[:CONTENT_LIMIT]


def code(text: str, limit: int = 200) -> str:
    """User text shown literally (a query), safe inside a reply."""
    return f"**{safe_user_text(text, limit)}**"


# --- subscriptions ---------------------------------------------------------------------------


def delivery_label(sub: Subscription) -> str:
    names = {
        DeliveryMode.DISCORD: "this channel" if sub.owner.kind is OwnerKind.CHANNEL else "DM",
        DeliveryMode.EMAIL_INSTANT: "email",
        DeliveryMode.EMAIL_DIGEST: "email digest",
    }
    return " + ".join(names[mode] for mode in DeliveryMode if mode in sub.deliver)


def query_test_lines(test: QueryTest) -> list[str]:
    days = plural(test.days, "day")
    lines = [
        f"Would have matched **{plural(test.count, 'paper')}** in the last {days} "
        f"(of {test.total} stored)."
    ]
    if test.too_many:
        lines.append(f"⚠️ That is about {test.per_day:.0f} a day: consider narrowing the query.")
    for hit in test.top[:EXAMPLES_SHOWN]:
        title = escaped(hit.paper.title, 150)
        url = web_url(hit.paper.url)
        lines.append(f"• [{title}](<{url}>)" if url else f"• {title}")
    return lines


def query_test_reply(test: QueryTest) -> Reply:
    lines = [f"Query understood as {code(test.normalized)}", *query_test_lines(test)]
    return Reply(trim_lines(lines, CONTENT_LIMIT))


def subscribed_reply(done: Subscribed, user: User | None) -> Reply:
    sub = done.subscription
    lines = [
        f"✅ Subscribed (#{sub.id}) to {code(sub.normalized)} — delivered by "
        f"{delivery_label(sub)}.",
        *query_test_lines(done.test),
    ]
    wants_email = sub.deliver & {DeliveryMode.EMAIL_INSTANT, DeliveryMode.EMAIL_DIGEST}
    if wants_email and user is not None and not user.email_deliverable:
        lines.append("📧 You have no confirmed email address yet: run `/email set` first.")
    return Reply(trim_lines(lines, CONTENT_LIMIT))


def unsubscribed_reply(sub: Subscription) -> Reply:
    return Reply(f"🗑️ Removed subscription #{sub.id}: {code(sub.normalized)}.")


def subscription_line(view: SubscriptionView) -> str:
    sub = view.subscription
    matches = plural(view.matches, "match")
    return f"`#{sub.id}` {code(sub.normalized, 150)} — {delivery_label(sub)} · {matches}"


def subscriptions_reply(
    views: Sequence[SubscriptionView], *, channel: bool, followed: Sequence[Followed] = ()
) -> Reply:
    whose = "This channel has" if channel else "You have"
    follows = followed_text(followed)
    if not views:
        hint = "/channel subscribe" if channel else "/subscribe"
        none = f"{whose} no subscriptions yet. Add one with `{hint}`."
        return Reply("\n".join((none, follows)) if follows else none)
    embed = discord.Embed(
        title=f"{whose} {plural(len(views), 'subscription')}",
        description=trim_lines([subscription_line(v) for v in views], DESCRIPTION_LIMIT),
        color=COLOR,
    )
    return Reply(follows, embeds=(embed,))


def followed_text(followed: Sequence[Followed]) -> str:
    """The papers followed, each with its last few changes, in at most 1,500 characters."""
    lines: list[str] = []
    for item in followed:
        lines.append(f"📌 {item.follow.paper_key} {escaped(item.title, 80)}")
        lines += [f"  • {line}" for line in item.change_lines[-3:]]
    return trim_lines(lines, 1500) if lines else ""


def subscription_choice_name(sub: Subscription) -> str:
    """An autocomplete entry (at most 100 characters): ``#12 llm agents (DM)``."""
    label = f" ({delivery_label(sub)})"
    return f"#{sub.id} {sub.normalized}"[: 100 - len(label)] + label


# --- papers ----------------------------------------------------------------------------------


def search_reply(text: str, papers: Sequence[Paper]) -> Reply:
    if not papers:
        return Reply(f"No stored paper matches {code(text)}.")
    [part] = pack(
        f"Best {plural(len(papers), 'stored paper')} for {code(text)}:",
        [paper_card(paper, number) for number, paper in enumerate(papers, 1)],
    )
    return from_part(part)


def recommend_reply(found: Sequence[Recommendation], days: int) -> Reply:
    if not found:
        return Reply(f"You have rated every paper of the last {plural(days, 'day')}.")
    cards = []
    for number, rec in enumerate(found, 1):
        item = AlertItem(rec.paper, (), relevance=rec.score, because=rec.because)
        cards.append(item_card(item, number))
    [part] = pack(f"Recommended for you from the last {plural(days, 'day')}:", cards)
    return from_part(part)


def why_reply(why: Why) -> Reply:
    """The replayed path in plain words, in a code block so the steps keep their shape."""
    lines = why_lines(why)
    body = "\n".join(lines[1:])
    head = f"**{lines[0]}**"
    room = CONTENT_LIMIT - len(head) - 10
    if len(body) > room:
        body = body[: room - 1] + "…"
    return Reply(f"{head}\n```\n{body}\n```")


def from_part(part: MessagePart, note: str = "") -> Reply:
    content = f"{part.content}\n{note}".strip()[:CONTENT_LIMIT]
    return Reply(content, part.embeds, part.buttons)


def digest_preview_reply(message: DigestMessage | None) -> Reply:
    if message is None:
        return Reply(
            "Nothing is waiting for your next digest. Subscriptions delivered by email "
            "digest collect papers here until it goes out."
        )
    parts = digest_parts(message)
    rest = sum(len(part.embeds) for part in parts[1:])
    note = f"(preview; {plural(rest, 'more paper')} in the digest itself)" if rest else "(preview)"
    return from_part(parts[0], note)


# --- settings and email ----------------------------------------------------------------------


def settings_reply(user: User, *, changed: bool) -> Reply:
    when = f"{user.digest_hour:02d}:00 {user.timezone}"
    frequency = user.digest_frequency
    if frequency is DigestFrequency.WEEKLY:
        frequency_text = f"weekly on {calendar.day_name[user.digest_weekday]}s"
    else:
        frequency_text = str(frequency)
    email = user.email or "none (use `/email set`)"
    if user.email and not user.email_verified:
        email += " (not confirmed yet)"
    elif user.email_suppressed:
        email += f" (stopped: {user.email_suppressed_reason or 'deliveries failed'})"
    lines = [
        "✅ Settings saved." if changed else "Your settings:",
        f"• Alerts: {'⏸️ paused' if user.paused else '▶️ on'}",
        f"• Digest: {frequency_text}, at {when}",
        f"• Email: {escaped(email, 300)}",
    ]
    if user.discord_unreachable:
        lines.append("• Discord: I could not DM you; alerts fall back to email")
    return Reply("\n".join(lines))


def email_set_reply(request: AddressRequest) -> Reply:
    """What really happened: the mail is queued in the outbox, not sent yet."""
    address = f"**{escaped(request.user.email or '', 254)}**"
    if request.confirmation is Confirmation.CONFIRMED:
        return Reply(f"✅ {address} is already confirmed: email delivery is on. Nothing was sent.")
    fresh = (
        "A new confirmation" if request.confirmation is Confirmation.RESENT else "A confirmation"
    )
    return Reply(
        f"📧 {fresh} to {address} is queued and goes out within a few minutes. Click its "
        "link, or run `/email verify` with the 6-digit code from it (valid for 24 hours). "
        "Until then that address receives nothing else."
    )


def email_verified_reply(user: User) -> Reply:
    address = f"**{escaped(user.email or '', 254)}**"
    if user.email_suppressed:  # confirmed long ago, then unsubscribed or bouncing
        why = escaped(user.email_suppressed_reason or "deliveries failed", 200)
        return Reply(
            f"✅ {address} is confirmed, but no mail goes to it ({why}). "
            "Run `/email set` again to resume."
        )
    return Reply(f"✅ {address} is confirmed: email delivery is on.")


def email_removed_reply() -> Reply:
    return Reply("🗑️ Your email address is removed; nothing more will be mailed to it.")


# --- channels --------------------------------------------------------------------------------


def channel_announcement(sub: Subscription, by: str) -> str:
    return f"📌 {escaped(by, 100)} subscribed this channel to {code(sub.normalized)} (#{sub.id})."


def channel_removal_announcement(sub: Subscription, by: str) -> str:
    return f"📌 {escaped(by, 100)} removed this channel's subscription {code(sub.normalized)}."


# --- help ------------------------------------------------------------------------------------

HELP_QUERY = """\
`word` matches the word and its forms (`transformers` ↔ `transformer`)
`"exact phrase"` · `prefix*` · `a b` both · `a OR b` either · `-a` not · `( )` group
Fields: `title:` `abstract:` `author:` `cat:cs.LG` `cat:cs.*` `source:hf` `upvotes:>=20`
Operators in capitals; OR binds tighter: `llm agents OR robots` = llm AND (agents OR robots)
"""

HELP_COMMANDS = """\
`/subscribe` a query · `/unsubscribe` · `/subscriptions` · `/test` a query first
`/search` stored papers · `/recommend` by what you liked · `/digest` preview
`/why` a paper you got or missed · `/settings` timezone, digest, pause
`/email set|verify|remove` · `/channel subscribe|unsubscribe|list` (Manage Server)
"""


def help_reply() -> Reply:
    embed = discord.Embed(
        title="paperbell",
        description=(
            "I watch new research papers (Hugging Face Daily Papers, arXiv, feeds) and tell "
            "you about the ones matching your subscriptions: by DM as they arrive, or by "
            "email, instantly or as a daily digest."
        ),
        color=COLOR,
    )
    embed.add_field(name="Query syntax", value=HELP_QUERY, inline=False)
    embed.add_field(name="Commands", value=HELP_COMMANDS, inline=False)
    embed.set_footer(text="My replies to your commands are visible only to you.")
    return Reply(embeds=(embed,))
