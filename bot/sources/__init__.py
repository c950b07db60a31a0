"""Paper sources: one class per kind, built from a ``SourceConfig`` by ``build_source``; the
HTTP client, item checks, failure streaks and the ingest cycle.

Imports the store and the foundation only; never matching, accounts, delivery or above.
"""

from __future__ import annotations

from bot.models import SourceKind
from bot.settings import SourceConfig
from bot.sources.arxiv_api import ArxivApiSource
from bot.sources.arxiv_rss import ArxivRssSource
from bot.sources.base import Source
from bot.sources.feed import FeedSource
from bot.sources.hf import HfDailySource
from bot.sources.http import HttpClient

__all__ = [
    "ArxivApiSource",
    "ArxivRssSource",
    "FeedSource",
    "HfDailySource",
    "Source",
    "build_source",
]


def build_source(config: SourceConfig, http: HttpClient) -> Source:
    """The source for ``config.kind``, sharing ``http`` (and so its throttles)."""
    match config.kind:
        case SourceKind.HF_DAILY:
            return HfDailySource(config, http)
        case SourceKind.ARXIV_RSS:
            return ArxivRssSource(config, http)
        case SourceKind.ARXIV_API:
            return ArxivApiSource(config, http)
        case SourceKind.FEED:
            return FeedSource(config, http)
