"""Logging to stderr, plain or JSON. Configured once by the entry point, never at import."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

_STD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={...}`` fields are carried along."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STD_ATTRS})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


@dataclass(slots=True)
class _Window:
    until: float
    passed: int = 0
    unreported: int = 0  # dropped from this call site, not yet said (call-site keys only)


class RepeatFilter(logging.Filter):
    """Keeps a flood out of the log without hiding that there was one.

    Within ``window`` seconds an identical line is written once, and one call site (logger,
    level, format string) at most ``burst`` times; the rest are only counted, and the next
    line written for that key says how many were dropped. Old windows are forgotten.
    """

    def __init__(
        self, window: float = 60.0, burst: int = 20, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window, self.burst, self._clock = window, burst, clock
        self._windows: dict[tuple[object, ...], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        site = (record.name, record.levelno, str(record.msg))
        same, similar = self._current((*site, record.getMessage()), now), self._current(site, now)
        if same.passed >= 1 or similar.passed >= self.burst:
            similar.unreported += 1
            return False
        same.passed += 1
        similar.passed += 1
        dropped, similar.unreported = similar.unreported, 0
        if dropped:
            note = f" [{dropped} more like this were dropped]"
            record.msg, record.args = record.getMessage() + note, ()
        return True

    def _current(self, key: tuple[object, ...], now: float) -> _Window:
        entry = self._windows.get(key)
        if entry is not None and entry.until > now:
            return entry
        if len(self._windows) >= 10_000:  # bounded, whatever varies in the messages
            self._windows = {k: w for k, w in self._windows.items() if w.until > now}
            if len(self._windows) >= 10_000:
                self._windows.clear()
        fresh = _Window(until=now + self.window, unreported=entry.unreported if entry else 0)
        self._windows[key] = fresh
        return fresh


def configure_logging(level: str = "INFO", fmt: str = "plain") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())  # 150 slow clients once wrote 84 MB in 45 s
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Every job run would be two lines; our own summary line per cycle says what matters.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
