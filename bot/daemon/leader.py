"""One leader among the ``paperbell run`` processes sharing a PostgreSQL database.

The leader polls sources, runs the match step and the digest tick; every process
dispatches (outbox claims keep a message to one sender). Leadership is the store's
``leader`` lease, renewed every third of ``PAPERBELL_LEADER_LEASE``: a leader that dies
stops renewing and another process takes the lease within one lease period.

A process counts itself leader only until its last successful renewal *started* plus the
lease: the database's expiry is later than that, so two processes never both believe they
lead. On SQLite one process owns the data directory (``bot.daemon.lock``), so it always
leads and no lease row is written.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from bot.errors import ConfigError
from bot.store.protocols import Lease, Store

log = logging.getLogger("paperbell.leader")

LEADER = "leader"


def process_name() -> str:
    """``host:pid:nonce``: which process holds the lease, unique even across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    """Whether this process leads now, and the renewal that keeps it so."""

    def __init__(
        self,
        store: Store,
        lease: timedelta,
        *,
        shared: bool,
        holder: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.lease, self.shared = store, lease, shared
        self.holder = holder or process_name()
        self._monotonic = monotonic
        self._until = 0.0
        self.on_gain: Callable[[], None] | None = None

    @property
    def every(self) -> float:
        """Seconds between renewals."""
        return self.lease.total_seconds() / 3

    @property
    def held(self) -> bool:
        return not self.shared or self._monotonic() < self._until

    async def renew(self) -> bool:
        """Take or keep the lease; True while this process leads."""
        if not self.shared:
            return True
        was, started = self.held, self._monotonic()
        if await self.store.acquire_lease(LEADER, self.holder, self.lease):
            self._until = started + self.lease.total_seconds()
        else:
            self._until = 0.0
        self._log_change(was)
        return self.held

    def _log_change(self, was: bool) -> None:
        if self.held and not was:
            log.info(
                "leading: this process (%s) polls sources, matches and sends digests", self.holder
            )
            if self.on_gain is not None:
                self.on_gain()
        elif was and not self.held:
            log.warning("no longer leading (%s): another process took the lease", self.holder)

    async def release(self) -> None:
        """Step down at once (on a clean stop), so another process need not wait out the
        lease."""
        if self.shared and self._until:
            self._until = 0.0
            await self.store.release_lease(LEADER, self.holder)

    async def require(self) -> None:
        """Lead, or raise the one line ``run --once`` prints when another process leads."""
        if not await self.renew():
            other = await self.store.get_lease(LEADER)
            who = describe(other) if other else "another process"
            raise ConfigError(
                f"{who} leads the paperbell processes on this database; "
                "run --once only while no `paperbell run` is running on it"
            )


def describe(lease: Lease) -> str:
    """``process host:pid:nonce (lease until 12:00:30 UTC)``."""
    return f"process {lease.holder} (lease until {lease.expires_at:%H:%M:%S} UTC)"
