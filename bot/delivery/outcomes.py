"""What a wave of messages came to, noted as the sends finish and written at once.

The dispatcher notes each finished message here (``bot.delivery.dispatcher``) and writes
a whole wave in one go: 'sent' and 'suppressed' rows in one transaction
(``Store.settle``), the rarer failures, retries and give-backs after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.store.protocols import Delivery, DeliveryBatch

Retry = tuple[dict[int, datetime], str, int]  # next attempt per row, the error, attempts


@dataclass
class Outcomes:
    """Row ids by what became of them; ``messages`` counts the sends that finished."""

    sent: list[int] = field(default_factory=list)
    suppressed: dict[str, list[int]] = field(default_factory=dict)  # reason -> rows
    failed: dict[str, list[int]] = field(default_factory=dict)  # error -> rows
    retries: list[Retry] = field(default_factory=list)  # one per message
    released: list[int] = field(default_factory=list)  # back to 'pending', untouched
    # Recipients found unreachable: the policy's follow-up (strike, fall back) comes after.
    unreachable: list[tuple[DeliveryBatch, list[Delivery], str]] = field(default_factory=list)
    messages: int = 0

    @property
    def empty(self) -> bool:
        return not (self.sent or self.suppressed or self.failed or self.retries or self.released)

    def suppress(self, reason: str, ids: list[int]) -> None:
        self.suppressed.setdefault(reason, []).extend(ids)

    def fail(self, error: str, ids: list[int]) -> None:
        self.failed.setdefault(error, []).extend(ids)
