"""A dispatcher in its own process, for the crash test in tests/test_outbox.py.

    python tests/outbox_worker.py DB_PATH RECEIVED_FILE SECONDS_PER_MESSAGE

Requeues what a previous run left in 'sending', then dispatches until nothing is due. Its
Discord "channel" appends each message key to RECEIVED_FILE (fsync'd, so what a SIGKILL
interrupts is on disk) and then sleeps, which is where the kill usually lands: after the
delivery, before the 'sent' commit, the one window for a duplicate.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.accounts.addresses import LinkBuilder
from bot.accounts.tokens import Signer
from bot.delivery.dispatcher import DeliveryOutcome, Dispatcher
from bot.delivery.notifier import AlertMessage, Channel, DigestMessage
from bot.store.sqlite.store import open_sqlite_store


class FileChannel:
    channel = Channel.DISCORD

    def __init__(self, path: Path, pause: float) -> None:
        self._path = path
        self._pause = pause

    def _append(self, key: str) -> None:
        with self._path.open("a", encoding="utf-8") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def send_alerts(self, message: AlertMessage) -> None:
        await asyncio.to_thread(self._append, message.key)
        await asyncio.sleep(self._pause)

    async def send_digest(self, message: DigestMessage) -> None:
        await self.send_alerts(AlertMessage(message.key, message.recipient, ()))

    async def close(self) -> None:
        return None


# Short, so the test's second worker may take what the killed one held without waiting long.
LEASE = timedelta(seconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def main(db_path: Path, received: Path, pause: float) -> int:
    store = await open_sqlite_store(db_path)
    try:
        links = LinkBuilder(Signer(b"worker"), "http://localhost")
        dispatcher = Dispatcher(
            store,
            {Channel.DISCORD: FileChannel(received, pause)},
            links,
            utc_now,
            random.Random(1),
            lease=LEASE,
        )
        report = await dispatcher.run_once()
        print(f"sent {report.count(DeliveryOutcome.SENT)}")
    finally:
        await store.close()
    return 0


if __name__ == "__main__":
    db, out, seconds = sys.argv[1:4]
    sys.exit(asyncio.run(main(Path(db), Path(out), float(seconds))))
