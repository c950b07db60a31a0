"""Storage: the ``Store`` protocol and its SQLite implementation."""

from bot.store.base import Store

__all__ = ["Store"]
