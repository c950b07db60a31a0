"""Storage: the role protocols (``Store`` is all of them) and their SQLite implementation.

Imports the foundation only (``bot.models``, ``bot.messages``, ``bot.errors``,
``bot.address``, ``bot.text``, ``bot.settings``), never a layer above it.
"""

from bot.store.protocols import (
    AccountStore,
    MatchStore,
    MetaStore,
    OutboxStore,
    PaperStore,
    Store,
)

__all__ = ["AccountStore", "MatchStore", "MetaStore", "OutboxStore", "PaperStore", "Store"]
