"""Papers as Discord embeds, and alerts and digests as messages: pure functions, no I/O.

One embed per paper: the title linked to its page, the abstract trimmed with the matched
words in bold, authors, categories, upvotes, and which subscription caught it and why.
Messages hold at most ``EMBEDS_PER_MESSAGE`` embeds and ``MESSAGE_EMBED_CHARS`` characters
of embed text (Discord's limits); more papers make more messages, never a dropped paper.
Every piece of text from a paper or a user is markdown-escaped, and user text placed in a
message's content has its mentions defused too (the notifier also sends
``allowed_mentions`` none, so a title or query saying ``@everyone`` pings nobody).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.delivery.notifier import (
    AlertItem,
    AlertMessage,
    DigestMessage,
    FollowNoteMessage,
    MatchedSubscription,
    RecipientKind,
)
from bot.models import Paper

EMBEDS_PER_MESSAGE = 10
MESSAGE_EMBED_CHARS = 6000
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_LIMIT = 1024
# Keeps a typical card near 550 characters, so ten fit in one 6,000-character message.
ABSTRACT_CHARS = 280
AUTHORS_SHOWN = 4
QUERIES_SHOWN = 3
PAPERS_PER_BUTTON_ROW = 2  # two papers x (abstract, PDF) per row; 5 rows hold 10 papers
# With ratings: PDF buttons only (the embed title links the abstract), five a row, so two
# rows hold ten papers and three are left for the 👍 / 👎 / "more like this" menus.
PDF_BUTTONS_PER_ROW = 5
COLOR = 0xB31B1B
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class LinkButton:
    label: str
    url: str
    row: int


@dataclass(frozen=True, slots=True)
class Card:
    """One paper, ready to place in a message."""

    paper_key: str
    embed: discord.Embed
    links: tuple[tuple[str, str], ...]  # (label, url) for the link buttons
    sub_id: int | None = None  # the subscription that brought it, for ratings
    title: str = ""
    number: int = 0  # as its footer and buttons show it (#3)


@dataclass(frozen=True, slots=True)
class RatingOption:
    """One paper a message offers to rate (numbered as its embed)."""

    number: int
    paper_key: str
    sub_id: int | None
    title: str


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One Discord message of a possibly longer alert or digest."""

    content: str
    embeds: tuple[discord.Embed, ...]
    buttons: tuple[LinkButton, ...]
    paper_keys: tuple[str, ...]
    ratings: tuple[RatingOption, ...] = ()  # papers the 👍 / 👎 menus offer

    @property
    def embed_chars(self) -> int:
        return sum(len(embed) for embed in self.embeds)


# --- text ------------------------------------------------------------------------------------


def trim(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + ELLIPSIS


def escaped(text: str, limit: int) -> str:
    """Markdown-escaped ``text`` within ``limit`` characters, never ending in a lone ``\\``."""
    budget = limit
    while True:
        result = escape_markdown(trim(text, budget))
        if len(result) <= limit:
            return result
        # Escapes lengthen the text: cut the source shorter by the overshoot and retry.
        budget = max(1, budget - (len(result) - limit))


def safe_user_text(text: str, limit: int = 200) -> str:
    """A user's text (a query) for message content: escaped, mentions defused."""
    return escape_mentions(escaped(text, limit))


def highlight(text: str, words: Sequence[str]) -> str:
    """Escape ``text`` and put the matched ``words`` (whole words, any case) in bold."""
    clean = [w for w in words if w.strip()]
    if not clean:
        return escape_markdown(text)
    alternatives = "|".join(re.escape(w) for w in sorted(clean, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)({alternatives})(?!\w)", re.IGNORECASE)
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        pieces += [escape_markdown(text[last : match.start()]), f"**{match.group(0)}**"]
        last = match.end()
    pieces.append(escape_markdown(text[last:]))
    return "".join(pieces)


def plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


def web_url(url: str | None) -> str | None:
    """``url`` if Discord accepts it in an embed or a link button (http or https)."""
    return url if url and url.startswith(("https://", "http://")) else None


# --- one paper -------------------------------------------------------------------------------


def authors_line(authors: Sequence[str], shown: int = AUTHORS_SHOWN) -> str:
    if not authors:
        return "unknown"
    names = ", ".join(authors[:shown])
    more = len(authors) - shown
    return trim(names + (f" +{more} more" if more > 0 else ""), FIELD_LIMIT)


def matched_line(subscriptions: Sequence[MatchedSubscription], words: Sequence[str]) -> str:
    queries = [f"**{escaped(sub.query, 120)}**" for sub in subscriptions[:QUERIES_SHOWN]]
    if len(subscriptions) > QUERIES_SHOWN:
        queries.append(f"+{len(subscriptions) - QUERIES_SHOWN} more")
    line = ", ".join(queries) or "—"
    if words:
        line += " · " + escaped(", ".join(words), 300)
    return line[:FIELD_LIMIT]


def paper_label(paper: Paper) -> str:
    return f"arXiv:{paper.key}" if paper.is_arxiv else "feed"


def paper_embed(
    paper: Paper,
    number: int,
    *,
    subscriptions: Sequence[MatchedSubscription] = (),
    words: Sequence[str] = (),
    because: str = "",
) -> discord.Embed:
    """The card of one paper; ``number`` ties it to its link buttons (``#3 PDF``)."""
    abstract = trim(paper.abstract, ABSTRACT_CHARS) if paper.abstract else ""
    embed = discord.Embed(
        title=escaped(paper.title, TITLE_LIMIT) or "(untitled)",
        url=web_url(paper.url),
        description=highlight(abstract, words)[:DESCRIPTION_LIMIT] or None,
        color=COLOR,
        timestamp=paper.published,
    )
    embed.add_field(name="Authors", value=escaped(authors_line(paper.authors), FIELD_LIMIT))
    if paper.categories:
        embed.add_field(name="Categories", value=escaped(" ".join(paper.categories), 200))
    if paper.upvotes is not None:
        embed.add_field(name="Upvotes", value=f"▲ {paper.upvotes}")
    if subscriptions:
        embed.add_field(name="Matched", value=matched_line(subscriptions, words), inline=False)
    if because:
        embed.add_field(name="Why", value=escaped(because, FIELD_LIMIT), inline=False)
    sources = f" · {', '.join(paper.sources)}" if paper.sources else ""
    embed.set_footer(text=trim(f"#{number} · {paper_label(paper)}{sources}", 200))
    return embed


def paper_links(paper: Paper, number: int) -> tuple[tuple[str, str], ...]:
    found = [
        (f"#{number} Abstract", web_url(paper.links.abs or paper.links.hf)),
        (f"#{number} PDF", web_url(paper.links.pdf)),
    ]
    return tuple((label, url) for label, url in found if url)


def item_card(item: AlertItem, number: int) -> Card:
    embed = paper_embed(
        item.paper,
        number,
        subscriptions=item.subscriptions,
        words=item.words,
        because=item.because,
    )
    sub_id = item.subscriptions[0].sub_id if item.subscriptions else None
    links = paper_links(item.paper, number)
    return Card(item.paper.key, embed, links, sub_id, item.paper.title, number)


def paper_card(paper: Paper, number: int, words: Sequence[str] = ()) -> Card:
    return Card(paper.key, paper_embed(paper, number, words=words), paper_links(paper, number))


# --- messages --------------------------------------------------------------------------------


def pack(header: str, cards: Sequence[Card], *, rate: bool = False) -> list[MessagePart]:
    """Cards into messages of at most 10 embeds and 6,000 embed characters, in order.

    The header is the first message's content; later messages say which part they are.
    ``rate``: each message offers its papers for 👍 / 👎 / "more like this".
    """
    groups: list[list[Card]] = []
    size = 0
    for card in cards:
        if (
            not groups
            or len(groups[-1]) == EMBEDS_PER_MESSAGE
            or (size + len(card.embed) > MESSAGE_EMBED_CHARS)
        ):
            groups.append([])
            size = 0
        groups[-1].append(card)
        size += len(card.embed)
    total = len(groups)
    return [
        _part(header if index == 0 else f"(part {index + 1} of {total})", group, rate)
        for index, group in enumerate(groups)
    ]


def _part(content: str, cards: Sequence[Card], rate: bool = False) -> MessagePart:
    if rate:
        pdfs = [(label, url) for card in cards for label, url in card.links if "PDF" in label]
        buttons = tuple(
            LinkButton(label, url, i // PDF_BUTTONS_PER_ROW) for i, (label, url) in enumerate(pdfs)
        )
    else:
        buttons = tuple(
            LinkButton(label, url, index // PAPERS_PER_BUTTON_ROW)
            for index, card in enumerate(cards)
            for label, url in card.links
        )
    ratings = tuple(
        RatingOption(card.number, card.paper_key, card.sub_id, card.title) for card in cards
    )
    return MessagePart(
        content=content[:CONTENT_LIMIT],
        embeds=tuple(card.embed for card in cards),
        buttons=buttons,
        paper_keys=tuple(card.paper_key for card in cards),
        ratings=ratings if rate else (),
    )


def queries_of(items: Iterable[AlertItem]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.update(dict.fromkeys(sub.query for sub in item.subscriptions))
    return list(seen)


def alert_header(message: AlertMessage) -> str:
    queries = queries_of(message.items)
    shown = ", ".join(f"**{safe_user_text(q, 120)}**" for q in queries[:QUERIES_SHOWN])
    more = f" and {len(queries) - QUERIES_SHOWN} more" if len(queries) > QUERIES_SHOWN else ""
    where = "this channel" if message.recipient.kind is RecipientKind.CHANNEL else "you"
    count = plural(len(message.items), "new paper")
    return f"🔔 {count} for {where}, matching {shown}{more}"


def alert_parts(message: AlertMessage) -> list[MessagePart]:
    """An alert message as Discord messages; empty when it holds no paper."""
    cards = [item_card(item, number) for number, item in enumerate(message.items, 1)]
    return pack(alert_header(message), cards, rate=message.rate) if cards else []


def digest_header(message: DigestMessage) -> str:
    day = message.local_date.strftime("%a %d %b %Y")
    lines = [f"📬 **Your paperbell digest for {day}** · {plural(message.paper_count, 'paper')}"]
    for section in message.sections:
        query = safe_user_text(section.subscription.query, 120)
        lines.append(f"• **{query}** — {plural(len(section.items), 'paper')}")
    if message.more:
        lines.append(f"…and {message.more} more past the digest limit (see /search).")
    lines += [f"ℹ️ {escaped(note, 200)}" for note in message.source_notes]
    if not message.sections:
        lines.append(message.quiet_line)
    return trim_lines(lines, CONTENT_LIMIT)


def trim_lines(lines: Sequence[str], limit: int) -> str:
    """Join lines, dropping whole lines from the end (with a note) to stay within limit."""
    kept = list(lines)
    text = "\n".join(kept)
    while len(text) > limit and len(kept) > 1:
        kept.pop()
        text = "\n".join([*kept, ELLIPSIS])
    return text[:limit]


def digest_parts(message: DigestMessage) -> list[MessagePart]:
    """A digest as Discord messages: each paper once, section by section."""
    items: dict[str, AlertItem] = {}
    for section in message.sections:
        for item in section.items:
            items.setdefault(item.paper.key, item)
    cards = [item_card(item, number) for number, item in enumerate(items.values(), 1)]
    header = digest_header(message)
    if not cards:
        return [MessagePart(header, (), (), ())]
    return pack(header, cards, rate=message.rate)


def link_view(buttons: Sequence[LinkButton]) -> discord.ui.View | None:
    """Link buttons as a view; they need no callback, so discord.py never tracks the view."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(
            discord.ui.Button(
                style=discord.ButtonStyle.link, label=button.label, url=button.url, row=button.row
            )
        )
    return view


def follow_note_part(message: FollowNoteMessage) -> MessagePart:
    """A note about a followed paper: one message, the headline then what changed."""
    title = safe_user_text(message.title, 200)
    lines = [f"🔔 **{safe_user_text(message.headline, 120)}** · {title}"]
    lines += [f"> {safe_user_text(line, 600)}" for line in message.lines]
    if message.url:
        lines.append(f"<{message.url}>")
    return MessagePart("\n".join(lines)[:2000], (), (), (message.paper_key,))
