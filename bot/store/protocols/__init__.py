"""The storage interface the rest of paperbell sees, split by role.

Seven role protocols — ``PaperStore``, ``AccountStore``, ``MatchStore``, ``OutboxStore``,
``MetaStore``, ``RelevanceStore`` and ``FollowStore`` — and ``Store``, all of them at
once. Each role lives in a module of its own (``papers``, ``accounts``, ``matches``,
``outbox``); ``Store`` joins them here. One SQLite class implements every role
(``bot.store.sqlite.store``); a caller that needs one role may ask for just that one.
The contract suites (``tests/test_contract_*.py``), one per role, are what a second
implementation (PostgreSQL) must pass unchanged.

The records the roles hand out live in ``bot.store.records`` and are re-exported here, so
``from bot.store.protocols import Delivery`` keeps working.
"""

from __future__ import annotations

from typing import Protocol

from bot.store.protocols.accounts import AccountStore, FollowStore
from bot.store.protocols.matches import MatchStore, RelevanceStore
from bot.store.protocols.outbox import OutboxStore
from bot.store.protocols.papers import MetaStore, PaperStore
from bot.store.records import (
    DEFAULT_LEASE,
    ChangeKind,
    Delivery,
    DeliveryBatch,
    DeliveryKind,
    DeliveryState,
    DueDigest,
    Feedback,
    Follow,
    FollowNote,
    Lease,
    PaperChange,
    QueuedPapers,
    Rating,
    VectorizerInfo,
    VectorizerState,
)

__all__ = [
    "DEFAULT_LEASE",
    "AccountStore",
    "ChangeKind",
    "Delivery",
    "DeliveryBatch",
    "DeliveryKind",
    "DeliveryState",
    "DueDigest",
    "Feedback",
    "Follow",
    "FollowNote",
    "FollowStore",
    "Lease",
    "MatchStore",
    "MetaStore",
    "OutboxStore",
    "PaperChange",
    "PaperStore",
    "QueuedPapers",
    "Rating",
    "RelevanceStore",
    "Store",
    "VectorizerInfo",
    "VectorizerState",
]


class Store(
    PaperStore,
    AccountStore,
    MatchStore,
    OutboxStore,
    MetaStore,
    RelevanceStore,
    FollowStore,
    Protocol,
):
    """Every role at once: what one process opens and passes around."""
