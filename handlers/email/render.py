"""Turn alert, digest and confirmation messages into mail: the bytes sent, or parsed.

Both parts are rendered from the same view objects (``PaperView``/``SectionView``) so the
text and HTML carry the same content. The HTML environment autoescapes; the text one does
not (it is never parsed as markup). Templates ship inside the package (``templates/``).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from bot.delivery.notifier import (
    AlertItem,
    AlertMessage,
    Channel,
    ConfirmationMessage,
    DigestMessage,
    FollowNoteMessage,
    ManageLinkMessage,
    MatchedSubscription,
)
from bot.errors import ConfigError, PermanentDeliveryError
from bot.models import Paper
from bot.settings import EmailSettings, Settings, SmtpSettings
from bot.text import display_text
from handlers.email import format as fmt
from handlers.email.headers import (
    MULTIPART_HEADERS,
    POLICY,
    check_address,
    domain_of,
    header_line,
    list_headers,
    mail_bytes,
    message_id,
    subject_header,
)
from handlers.email.inline import CSS_NAME, InliningLoader, mark_tag


@dataclass(frozen=True, slots=True)
class PaperView:
    """One paper as both parts show it."""

    title: str
    url: str | None
    authors: str
    meta: str  # "cs.CV, cs.LG · 42 upvotes"
    abstract: str
    pdf: str | None
    code: str | None
    words: tuple[str, ...]
    caught_by: tuple[str, ...]  # queries of the subscriptions that matched it
    because: str = ""  # why the reader's model ranks it here
    like_url: str | None = None  # signed 👍 / 👎 links (a confirm page first)
    dislike_url: str | None = None
    follow_url: str | None = None  # signed: follow the paper (a confirm page first)


@dataclass(frozen=True, slots=True)
class SectionView:
    subscription: MatchedSubscription
    papers: tuple[PaperView, ...]  # shown in full
    listed_above: int = 0  # also matched here, already shown in an earlier section
    hidden: int = 0  # past the digest limit
    titles: tuple[PaperView, ...] = ()  # shown by title: not among the digest's best


_AUTO_SUBMITTED = "Auto-Submitted: auto-generated\r\n"  # RFC 3834: no auto-replies


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links are placed; a feed could carry ``javascript:`` or worse."""
    url = (url or "").strip()
    return url if url[:8].lower().startswith(("https://", "http://")) else None


def _display(text: str) -> str:
    """NFC, so an accent typed as two code points highlights like the composed letter."""
    return unicodedata.normalize("NFC", display_text(text))


def _capped(text: str, limit: int, shorten: Callable[[str], str] = str) -> str:
    """Displayable and at most ``limit`` characters; only a slice of a huge field is read."""
    return fmt.cap_chars(shorten(_display(text[: limit * 4])), limit)


def _best_first(item: AlertItem) -> tuple[float, float, int, str]:
    return item.rank


def paper_view(item: AlertItem) -> PaperView:
    card = _paper_card(item.paper)
    # Built field by field: dataclasses.replace costs more than the rest of a paper's view.
    return PaperView(
        card.title,
        card.url,
        card.authors,
        card.meta,
        card.abstract,
        card.pdf,
        card.code,
        item.words,
        _caught_by(tuple(s.query for s in item.subscriptions)),
        item.because,
        _safe_url(item.feedback.like) if item.feedback else None,
        _safe_url(item.feedback.dislike) if item.feedback else None,
        _safe_url(item.feedback.follow) if item.feedback else None,
    )


@functools.lru_cache(maxsize=1024)  # a reader's few queries, over and over
def _caught_by(queries: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fmt.unique_in_order(queries))


# A run shows the same papers to many readers. Keyed by the paper's key and held with the
# paper itself: an lru_cache keyed by the Paper hashed every field of it on each of an
# alert's ~80 lookups; the paper objects come from one cache, so identity is the check.
_CARDS: dict[str, tuple[Paper, PaperView]] = {}
_CARDS_KEPT = 4096


def _paper_card(paper: Paper) -> PaperView:
    """What a paper shows whoever reads it; ``paper_view`` adds the reader's matches."""
    hit = _CARDS.get(paper.key)
    if hit is not None and (hit[0] is paper or hit[0] == paper):
        return hit[1]
    if len(_CARDS) >= _CARDS_KEPT:
        _CARDS.clear()  # a new day's papers; the old ones will not come back
    card = _card(paper)
    _CARDS[paper.key] = (paper, card)
    return card


def _card(paper: Paper) -> PaperView:
    categories = paper.categories[: fmt.CATEGORIES_SHOWN]
    meta = [", ".join(fmt.cap_chars(c, fmt.AUTHOR_CHARS) for c in categories)] if categories else []
    if paper.upvotes:
        meta.append(fmt.plural(paper.upvotes, "upvote"))
    return PaperView(
        title=_capped(paper.title, fmt.TITLE_CHARS) or paper.key[:200],
        url=_safe_url(paper.url),
        authors=fmt.format_authors(paper.authors),
        meta=" · ".join(meta),
        abstract=_capped(paper.abstract, fmt.ABSTRACT_CHARS, fmt.trim_words),
        pdf=_safe_url(paper.links.pdf),
        code=_safe_url(paper.links.code),
        words=(),
        caught_by=(),
    )


def digest_sections(
    message: DigestMessage, limit: int, full: int | None = None
) -> tuple[list[SectionView], int]:
    """Sections with each paper shown once, at most ``limit`` papers, the digest's best
    ``full`` (default: all) in full and the others by title; and the "N more"."""
    best = _best_keys(message, full if full is not None else limit)
    shown: set[str] = set()
    dropped: set[str] = set()
    views: list[SectionView] = []
    for section in message.sections:
        papers: list[PaperView] = []
        titles: list[PaperView] = []
        above = hidden = 0
        for item in sorted(section.items, key=_best_first):
            key = item.paper.key
            if key in shown:
                above += 1
            elif len(shown) >= limit:
                dropped.add(key)
                hidden += 1
            else:
                shown.add(key)
                if key in best:
                    papers.append(paper_view(item))
                else:
                    titles.append(_paper_card(item.paper))
        sub = section.subscription
        views.append(SectionView(sub, tuple(papers), above, hidden, tuple(titles)))
    return views, message.more + len(dropped - shown)


def _best_keys(message: DigestMessage, count: int) -> set[str]:
    """The ``count`` best papers of the digest, wherever their section: the ones shown
    in full, as an alert shows its best (the rest by title; a day can bring 50)."""
    items = sorted((i for s in message.sections for i in s.items), key=_best_first)
    best: set[str] = set()
    for item in items:
        if len(best) >= count:
            break
        best.add(item.paper.key)
    return best


@functools.cache
def _environments() -> tuple[Environment, Environment]:
    """Built once per process, on first use, and shared by every renderer.

    The HTML templates load with the CSS already inlined (``handlers.email.inline``), so a
    message is rendered by Jinja alone.
    """
    loader = PackageLoader("handlers.email", "templates")
    css, _, _ = loader.get_source(Environment(), CSS_NAME)
    common: dict[str, Any] = {
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "auto_reload": False,  # templates ship with the package; never re-stat them
    }
    html = Environment(loader=InliningLoader(loader, css), autoescape=True, **common)
    html.filters["highlight"] = functools.partial(fmt.highlight_html, mark=mark_tag(css))
    text = Environment(loader=loader, autoescape=False, keep_trailing_newline=True, **common)
    text.filters["highlight"] = fmt.highlight_text
    add_html_filters(html, "macros.html.j2")
    add_paper_block(text, "macros.txt.j2")
    text.filters["title_lines"] = title_lines
    return html, text


def title_lines(papers: Sequence[PaperView], first: int) -> str:
    """The text part's list by title, numbered from ``first``, each link on the next line.

    The plain-text twin of ``title_list``: looped over in the template, the 70 or so
    titles of an alert cost Jinja a call per piece of every line.
    """
    return "".join(
        f"{n}. {p.title}\n   {p.url}\n" if p.url else f"{n}. {p.title}\n"
        for n, p in enumerate(papers, first)
    )


def add_html_filters(env: Environment, macros: str) -> None:
    """The HTML environment's filters made of its macros: ``paper_block``, ``title_list``."""
    add_paper_block(env, macros)
    add_title_list(env, macros)


def add_paper_block(env: Environment, macros: str) -> None:
    """The ``paper_block`` filter: a paper's block, its shared head rendered once.

    The head (title, authors, abstract highlighted by the matched words, links) reads the
    same in every reader's message: it is cached per environment, so per template
    version, keyed by what it shows. Only the tail (the reader's queries, why, 👍 / 👎
    links) is rendered per message. A filter, not a function in the context: Jinja binds
    filters when it compiles a template and calls them directly, where a context
    function goes through ``Context.call`` on every paper.
    """
    module = env.get_template(macros).module
    # 1,024 heads, not 4,096: a head carries the reader's matched words, so even 4,096
    # caught only 17-20 % of lookups (about half that now), and held 16 MB more.
    head = functools.lru_cache(maxsize=1024)(module.paper_head)  # type: ignore[attr-defined]
    tail = module.paper_tail  # type: ignore[attr-defined]

    def paper_block(p: PaperView) -> str:
        return head(_shared(p)) + tail(p)  # type: ignore[no-any-return]

    env.filters["paper_block"] = paper_block


def add_title_list(env: Environment, macros: str) -> None:
    """The ``title_list`` filter: the papers listed by title, each item rendered once.

    An alert lists some 70 papers by title; looped over in the template, escaping each
    title and link was a tenth of the time of rendering it. An item reads the same in every
    message, so it is cached by title and link, and the list is joined once.
    """
    module = env.get_template(macros).module
    item = functools.lru_cache(maxsize=4096)(module.title_item)  # type: ignore[attr-defined]

    def title_list(papers: Sequence[PaperView]) -> Markup:
        return Markup("".join([item(p.title, p.url) for p in papers]))

    env.filters["title_list"] = title_list


def _shared(p: PaperView) -> PaperView:
    """What the head shows: the paper and the words that matched, nobody's own links."""
    return PaperView(p.title, p.url, p.authors, p.meta, p.abstract, p.pdf, p.code, p.words, ())


class Renderer:
    """Renders the three kinds of mail; one per notifier, sharing the Jinja environments."""

    def __init__(
        self,
        smtp: SmtpSettings,
        email: EmailSettings,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._smtp = smtp
        self._email = email
        self._clock = clock
        html_env, text_env = _environments()
        self._templates = {
            name: (
                text_env.get_template(f"{name}.txt.j2"),
                html_env.get_template(f"{name}.html.j2"),
            )
            for name in ("alerts", "digest", "confirmation", "manage", "follow")
        }
        # formataddr encodes a non-ASCII name itself; whitespace runs (a newline in an
        # environment variable) would break the header line.
        self._from = header_line(
            "From", formataddr((" ".join(smtp.from_name.split()), _sender(smtp)))
        )
        self._domain = domain_of(smtp.from_address)

    @classmethod
    def from_settings(cls, settings: Settings) -> Renderer:
        return cls(settings.smtp, settings.email)

    # The notifiers send bytes; the EmailMessage forms are those bytes parsed, for callers
    # that read headers or parts.
    def alerts(self, message: AlertMessage) -> EmailMessage:
        return _parsed(self.alerts_bytes(message))

    def digest(self, message: DigestMessage) -> EmailMessage:
        return _parsed(self.digest_bytes(message))

    def confirmation(self, message: ConfirmationMessage) -> EmailMessage:
        return _parsed(self.confirmation_bytes(message))

    def alerts_bytes(self, message: AlertMessage) -> bytes:
        _check_channel(message.recipient.channel)
        items = sorted(message.items, key=_best_first)
        # The best in full; the rest by title. A day of arXiv can bring one reader 80
        # papers, and each full block (abstract highlighted for this reader) is most of
        # the cost of sending: a list of titles reads better and costs little.
        full = self._email.alert_full_papers
        papers = [paper_view(item) for item in items[:full]]
        rest = [_paper_card(item.paper) for item in items[full:]]
        count = len({item.paper.key for item in items})
        queries = _caught_by(tuple(s.query for item in items for s in item.subscriptions))
        subject = fmt.subject_line(["paperbell", fmt.plural(count, "new paper")], queries)
        context = {
            "subject": subject,
            "papers": papers,
            "rest": rest,
            "count": count,
            "links": message.links,
        }
        lists = list_headers(message.links, self._email.list_id)
        return self._message(message.recipient.address, message.key, "alerts", context, lists)

    def digest_bytes(self, message: DigestMessage) -> bytes:
        _check_channel(message.recipient.channel)
        email = self._email
        sections, more = digest_sections(message, email.digest_max_papers, email.digest_full_papers)
        day = fmt.short_date(message.local_date)
        count = message.paper_count
        tally = fmt.plural(count, "paper") if count else "all quiet"
        queries = [s.subscription.query for s in sections]
        context = {
            "subject": fmt.subject_line(["paperbell digest", day, tally], queries),
            "day": day,
            "count": count,
            "sections": sections,
            "more": more,
            "notes": message.source_notes,
            "quiet": message.quiet_line,
            "links": message.links,
        }
        lists = list_headers(message.links, self._email.list_id)
        return self._message(message.recipient.address, message.key, "digest", context, lists)

    def confirmation_bytes(self, message: ConfirmationMessage) -> bytes:
        # No List-Unsubscribe here: the address is not subscribed to anything yet, and
        # ignoring this one message is the opt-out. Sent once per request, not bulk.
        context = {
            "subject": f"paperbell · your confirmation code is {message.code}",
            "code": message.code,
            "url": _confirm_url(message),
            "hours": message.expires_hours,
            "manage_url": _safe_url(message.manage_url),
        }
        return self._message(message.address, message.key, "confirmation", context, ())

    def manage_link(self, message: ManageLinkMessage) -> EmailMessage:
        return _parsed(self.manage_link_bytes(message))

    def manage_link_bytes(self, message: ManageLinkMessage) -> bytes:
        url = _safe_url(message.manage_url)
        if url is None:
            raise PermanentDeliveryError(f"manage link is not http(s): {message.manage_url!r}")
        context = {
            "subject": "paperbell · your link to manage your subscriptions",
            "url": url,
            "days": message.expires_days,
        }
        return self._message(message.address, message.key, "manage", context, ())

    def follow_note_bytes(self, message: FollowNoteMessage) -> bytes:
        title = _display(message.title)
        context = {
            "subject": f"paperbell · {message.headline}: {title}"[:200],
            "title": title,
            "headline": message.headline,
            "lines": [_display(line) for line in message.lines],
            "url": _safe_url(message.url),
        }
        return self._message(message.recipient.address, message.key, "follow", context, ())

    def _message(
        self, to: str, key: str, template: str, context: dict[str, Any], lists: Sequence[str]
    ) -> bytes:
        headers = (
            self._from,
            header_line("To", check_address(to)),
            subject_header(context["subject"]),
            header_line("Date", format_datetime(self._clock())),
            header_line("Message-ID", message_id(key, self._domain)),
            _AUTO_SUBMITTED,
            *MULTIPART_HEADERS,
            *lists,
        )
        text_template, html_template = self._templates[template]
        html = html_template.render(context)
        text = text_template.render(context)
        return mail_bytes(headers, text, html)


def _parsed(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=POLICY)
    assert isinstance(parsed, EmailMessage)  # what POLICY's message factory makes
    return parsed


def _sender(smtp: SmtpSettings) -> str:
    try:
        return check_address(smtp.from_address.strip())
    except PermanentDeliveryError as exc:
        raise ConfigError(f"PAPERBELL_SMTP__FROM_ADDRESS: {exc.reason}") from None


def _confirm_url(message: ConfirmationMessage) -> str:
    url = _safe_url(message.confirm_url)
    if url is None:
        raise PermanentDeliveryError(f"confirmation link is not http(s): {message.confirm_url!r}")
    return url


def _check_channel(channel: Channel) -> None:
    if channel is not Channel.EMAIL:
        raise PermanentDeliveryError(f"an email notifier cannot deliver to a {channel} recipient")


def render_alerts(message: AlertMessage, settings: Settings) -> EmailMessage:
    return Renderer.from_settings(settings).alerts(message)


def render_digest(message: DigestMessage, settings: Settings) -> EmailMessage:
    return Renderer.from_settings(settings).digest(message)


def render_confirmation(message: ConfirmationMessage, settings: Settings) -> EmailMessage:
    return Renderer.from_settings(settings).confirmation(message)
