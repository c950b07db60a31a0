"""Sample papers and messages for the email tests, and reading a sent mail back.

The papers and the alert and digest builders live in bench/ (``_corpus``, ``_messages``)
so the benches can use them without importing tests/; they are re-exported here so the
tests keep importing them from this module.
"""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage

from bench._corpus import corpus
from bench._messages import (
    ADDRESS,
    LINKS,
    alert_message,
    digest_message,
    item,
    recipient,
    subscription,
)
from bot.delivery.notifier import ConfirmationMessage
from bot.models import Paper

__all__ = [
    "ADDRESS",
    "LINKS",
    "alert_message",
    "bodies",
    "confirmation_message",
    "corpus",
    "digest_message",
    "item",
    "parse",
    "recipient",
    "subscription",
    "with_title",
]


def confirmation_message(key: str = "confirm:1") -> ConfirmationMessage:
    return ConfirmationMessage(
        key=key,
        address=ADDRESS,
        code="048213",
        confirm_url="https://bell.example.org/confirm?t=eyJjIjoxfQ.c2ln",
    )


def with_title(paper: Paper, title: str) -> Paper:
    return replace(paper, title=title)


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(msg: EmailMessage) -> tuple[str, str]:
    """The decoded text and HTML parts."""
    text_part = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    assert text_part is not None
    assert html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    assert isinstance(text, str)
    assert isinstance(html, str)
    return text, html
