"""Halving a message that is too large to send whole: fewer papers per message.

A part's key extends its message's key (``key.1``, ``key.2``), so each part has its own
Message-ID and keeps it when the delivery is retried.
"""

from __future__ import annotations

from dataclasses import replace

from bot.delivery.notifier import AlertMessage, DigestMessage


def halve_alerts(message: AlertMessage) -> tuple[AlertMessage, AlertMessage] | None:
    """Two alerts with half the papers each; None for a single paper."""
    items = message.items
    if len(items) < 2:
        return None
    half = len(items) // 2
    return (
        replace(message, key=f"{message.key}.1", items=items[:half]),
        replace(message, key=f"{message.key}.2", items=items[half:]),
    )


def halve_digest(message: DigestMessage) -> tuple[DigestMessage, DigestMessage] | None:
    """Two digests: by sections, else one section's papers; None for a single paper.

    The first part keeps the source notes and the "and N more" line, so nothing is said twice.
    """
    sections = message.sections
    if len(sections) >= 2:
        half = len(sections) // 2
        first, second = sections[:half], sections[half:]
    elif sections and len(sections[0].items) >= 2:
        only = sections[0]
        half = len(only.items) // 2
        first = (replace(only, items=only.items[:half]),)
        second = (replace(only, items=only.items[half:]),)
    else:
        return None
    return (
        replace(message, key=f"{message.key}.1", sections=first),
        replace(message, key=f"{message.key}.2", sections=second, more=0, source_notes=()),
    )
