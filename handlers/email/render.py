"""Turn alert, digest and confirmation messages into mail: the bytes sent, or parsed.

Both parts are rendered from the same view objects (``handlers.email.views``) so the
text and HTML carry the same content, in the two environments of
``handlers.email.templating``: the HTML one autoescapes; the text one does not (it is
never parsed as markup). Templates ship inside the package (``templates/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from bot.delivery.notifier import (
    AlertMessage,
    Channel,
    ConfirmationMessage,
    DigestMessage,
    FollowNoteMessage,
    ManageLinkMessage,
)
from bot.errors import ConfigError, PermanentDeliveryError
from bot.settings import EmailSettings, Settings, SmtpSettings
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
from handlers.email.templating import environments
from handlers.email.views import (
    best_first,
    caught_by,
    digest_sections,
    display,
    paper_card,
    paper_view,
    safe_url,
)

_AUTO_SUBMITTED = "Auto-Submitted: auto-generated\r\n"  # RFC 3834: no auto-replies


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        html_env, text_env = environments()
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
        items = sorted(message.items, key=best_first)
        # The best in full; the rest by title. A day of arXiv can bring one reader 80
        # papers, and each full block (abstract highlighted for this reader) is most of
        # the cost of sending: a list of titles reads better and costs little.
        full = self._email.alert_full_papers
        papers = [paper_view(item) for item in items[:full]]
        rest = [paper_card(item.paper) for item in items[full:]]
        count = len({item.paper.key for item in items})
        queries = caught_by(tuple(s.query for item in items for s in item.subscriptions))
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
            "manage_url": safe_url(message.manage_url),
        }
        return self._message(message.address, message.key, "confirmation", context, ())

    def manage_link(self, message: ManageLinkMessage) -> EmailMessage:
        return _parsed(self.manage_link_bytes(message))

    def manage_link_bytes(self, message: ManageLinkMessage) -> bytes:
        url = safe_url(message.manage_url)
        if url is None:
            raise PermanentDeliveryError(f"manage link is not http(s): {message.manage_url!r}")
        context = {
            "subject": "paperbell · your link to manage your subscriptions",
            "url": url,
            "days": message.expires_days,
        }
        return self._message(message.address, message.key, "manage", context, ())

    def follow_note_bytes(self, message: FollowNoteMessage) -> bytes:
        title = display(message.title)
        context = {
            "subject": f"paperbell · {message.headline}: {title}"[:200],
            "title": title,
            "headline": message.headline,
            "lines": [display(line) for line in message.lines],
            "url": safe_url(message.url),
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
    url = safe_url(message.confirm_url)
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
