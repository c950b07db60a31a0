"""Storage: the ``Store`` protocol and its SQLite implementation."""

from bot.store.protocols import Store

__all__ = ["Store"]
