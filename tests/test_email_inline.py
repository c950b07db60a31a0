"""CSS inlined once per template and mail written as bytes: the same mail as before.

The reference is the old path: the plain templates rendered, css-inline run over each
message, and the stdlib ``EmailMessage`` generator writing it.
"""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from jinja2 import Environment, PackageLoader, StrictUndefined

from bot.settings import EmailSettings, SmtpSettings
from handlers.email import format as fmt
from handlers.email import render, templating
from handlers.email.headers import (
    MULTIPART_HEADERS,
    POLICY,
    body_encoding,
    header_line,
    list_headers,
    mail_bytes,
    seven_bit,
    subject_header,
)
from handlers.email.inline import inline_template, inliner, mark_tag
from tests.support_email import (
    LINKS,
    alert_message,
    bodies,
    confirmation_message,
    corpus,
    digest_message,
    parse,
    with_title,
)

NOW = datetime(2024, 11, 22, 7, 30, tzinfo=UTC)
Event = tuple[str, ...]


class _Events(HTMLParser):
    """Elements, attributes and text as a parser sees them (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[Event] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, *sorted(f"{k}={v}" for k, v in attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if self.events and self.events[-1][0] == "data":
            data = self.events.pop()[1] + data
        self.events.append(("data", data))

    def handle_decl(self, decl: str) -> None:
        self.events.append(("decl", decl.lower()))


def events(html: str) -> list[Event]:
    parser = _Events()
    parser.feed(html)
    parser.close()
    return parser.events


_TEXT_ENVIRONMENT = templating.environments()[1]  # the text part has no CSS: shared


def _plain_environments() -> tuple[Environment, Environment]:
    """The templates as written: no CSS in them, ``<mark>`` bare."""
    html = Environment(
        loader=PackageLoader("handlers.email", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html.filters["highlight"] = fmt.highlight_html
    templating.add_html_filters(html, "macros.html.j2")
    return html, _TEXT_ENVIRONMENT


@pytest.fixture
def renderers(monkeypatch: pytest.MonkeyPatch) -> tuple[render.Renderer, render.Renderer]:
    smtp, email = SmtpSettings(from_address="bell@example.org"), EmailSettings()
    ours = render.Renderer(smtp, email, clock=lambda: NOW)
    monkeypatch.setattr(render, "environments", _plain_environments)
    return ours, render.Renderer(smtp, email, clock=lambda: NOW)


def _samples() -> list[tuple[str, object]]:
    nasty = with_title(corpus()[0], "Beyond <script> & \"Quoted\" 'Models' for $\\alpha$")
    return [
        ("digest", digest_message(corpus()[:12], sections=3, more=4, notes=["no arXiv today"])),
        ("digest", digest_message([nasty, *corpus()[20:23]], sections=1)),
        ("alerts", alert_message([nasty, *corpus()[5:9]])),
        ("confirmation", confirmation_message()),
    ]


@pytest.mark.parametrize("index", range(len(_samples())))
def test_inlined_templates_equal_css_inline_per_message(
    renderers: tuple[render.Renderer, render.Renderer], index: int
) -> None:
    ours, reference = renderers
    kind, message = _samples()[index]
    _, html = bodies(parse(getattr(ours, f"{kind}_bytes")(message)))
    _, plain = bodies(parse(getattr(reference, f"{kind}_bytes")(message)))
    assert 'style="' not in plain  # the reference really is the uninlined template
    # Decoded parts carry the wire's CRLF; css-inline used to see the template's LF.
    html, plain = html.replace("\r\n", "\n"), plain.replace("\r\n", "\n")
    assert events(html) == events(inliner().inline(plain))


def test_jinja_syntax_survives_inlining() -> None:
    source = '<p class="meta">{{ a | join(", ") }}{% if b %}<a href="{{ b }}">x</a>{% endif %}</p>'
    inlined = inline_template(source, "p { margin: 0; } a { color: red; }")
    assert inlined == (
        '<p class="meta" style="margin:0">{{ a | join(", ") }}{% if b %}'
        '<a href="{{ b }}" style="color:red">x</a>{% endif %}</p>'
    )


def test_marks_made_at_render_time_carry_their_style() -> None:
    assert mark_tag("mark { color: red; }") == '<mark style="color:red">'
    assert mark_tag("p { color: red; }") == "<mark>"


def _stdlib_part(body: str, subtype: str, cte: str) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = cte
    raw = body.encode("utf-8")
    if cte == "quoted-printable":
        part.set_payload(binascii.b2a_qp(raw).decode("ascii"))
    else:  # the generator writes surrogate-escaped bytes back as they were
        part.set_payload(raw.decode("ascii", "surrogateescape"))
    return part


def _stdlib_mail(headers: list[tuple[str, str]], parts: list[EmailMessage]) -> bytes:
    """What the stdlib generator writes for the same headers and parts."""
    msg = EmailMessage(policy=POLICY)
    for name, value in headers:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = 'multipart/alternative; boundary="=_paperbell_alternative"'
    msg["List-Id"] = "paperbell <bell.example.org>"
    msg["List-Unsubscribe"] = f"<{LINKS.unsubscribe_all}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_payload(parts)
    return msg.as_bytes()


@pytest.mark.parametrize(
    ("subject", "sender", "text", "cte"),
    [
        (
            "paperbell digest · Fri 22 Nov · 3 papers · q",
            "bell <bell@example.org>",
            "a\nb\n",
            "7bit",
        ),
        ("plain ascii subject", "=?utf-8?q?R=C3=A9dacteur?= <bell@example.org>", "x = y\n", "7bit"),
        (
            "long · " + "word " * 40,
            "bell@example.org",
            "stray\rreturn and trailing  \n",
            "quoted-printable",
        ),
        ("s", "bell@example.org", "Gödel\n" + "é" * 499 + "\n", "8bit"),
        ("s", "bell@example.org", "Gödel\n" + "é" * 500 + "\n", "quoted-printable"),
    ],
)
def test_mail_bytes_equal_the_stdlib_generator(
    subject: str, sender: str, text: str, cte: str
) -> None:
    html = '<p style="a:b">caf\u00e9 ' + "long line " * 30 + "</p>\n"
    headers = [("From", sender), ("To", "reader@example.org"), ("Subject", subject)]
    head = [header_line("From", sender), header_line("To", "reader@example.org")]
    lists = list_headers(LINKS, "bell.example.org")
    ours = mail_bytes([*head, subject_header(subject), *MULTIPART_HEADERS, *lists], text, html)
    parts = [_stdlib_part(text, "plain", cte), _stdlib_part(html, "html", "8bit")]
    assert ours == _stdlib_mail(headers, parts)
    assert max(len(line) for line in ours.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    ("body", "cte"),
    [
        ("x" * 998 + "\nshort\n", "7bit"),
        ("x" * 999 + "\n", "quoted-printable"),  # longer than SMTP allows a line
        ("a\0b\n", "quoted-printable"),  # NUL is not allowed in 8bit MIME
        ("cut\n--=_paperbell_alternative--\nforged\n", "quoted-printable"),  # the boundary
        ("€" * 332 + "\n", "8bit"),  # 996 octets
        ("€" * 333 + "\n", "quoted-printable"),  # 999 octets
    ],
)
def test_a_body_goes_as_it_is_only_where_mime_and_smtp_allow(body: str, cte: str) -> None:
    assert body_encoding(body, body.encode("utf-8")) == cte
    message = mail_bytes(["MIME-Version: 1.0\r\n", *MULTIPART_HEADERS[1:]], body, "<p>x</p>\n")
    parsed = message_from_bytes(message, policy=POLICY)
    assert isinstance(parsed, EmailMessage)
    text, html = (part.get_content().replace("\r\n", "\n") for part in parsed.iter_parts())
    assert (text, html) == (body, "<p>x</p>\n")  # the boundary in a body forges no part
    assert max(len(line) for line in message.split(b"\r\n")) <= 998


def test_seven_bit_re_encodes_only_the_8bit_parts_and_keeps_the_text() -> None:
    text, html = "plain ascii\n", "<p>Gödel, Escher, Bach — " + "ünïcode " * 40 + "</p>\n"
    message = mail_bytes([*MULTIPART_HEADERS], text, html)
    assert not message.isascii()
    seven = seven_bit(message)
    assert seven.isascii()
    assert max(len(line) for line in seven.split(b"\r\n")) <= 78
    parsed = message_from_bytes(seven, policy=POLICY)
    assert isinstance(parsed, EmailMessage)
    plain, rich = parsed.iter_parts()
    encodings = [part["Content-Transfer-Encoding"] for part in (plain, rich)]
    assert encodings == ["7bit", "quoted-printable"]
    contents = [part.get_content().replace("\r\n", "\n") for part in (plain, rich)]
    assert contents == [text, html]
    assert seven_bit(seven) == seven  # nothing left to re-encode
    # A container that says 8bit (as some senders write) has no payload of its own.
    labelled = mail_bytes([*MULTIPART_HEADERS, "Content-Transfer-Encoding: 8bit\r\n"], text, html)
    assert seven_bit(labelled).isascii()


def test_a_line_break_never_reaches_a_header() -> None:
    with pytest.raises(ValueError, match="line break"):
        header_line("List-Id", "paperbell <x>\r\nBcc: victim@example.org")
