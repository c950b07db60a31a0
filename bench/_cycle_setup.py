"""Setting up the cycle bench's database (not measured): yesterday's papers, then users with
confirmed addresses, each with five subscriptions delivering instant alerts and digests.

Two ways that must write the same rows: through the store API as the CLI does
(``get_or_create_user``, ``set_email``, ``verify_email``, ``add_subscription``), and, for
large sizes where thousands of single-row transactions would take minutes, plain sqlite3
``executemany`` into the same schema. ``check_bulk_setup`` builds a small database both
ways and compares every row.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from _cycle_workload import SUBS_PER_USER, history_papers
from bot.accounts.addresses import check_email_address, set_email
from bot.matching.query import parse_query, render
from bot.models import DeliveryMode, Owner, Sighting, SourceState
from bot.store.sqlite._accounts_codec import deliver_json, to_json
from bot.store.sqlite._codec import iso
from bot.store.sqlite.store import open_sqlite_store

SETUP_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # accounts made two days before the cycle
DELIVER = frozenset({DeliveryMode.EMAIL_INSTANT, DeliveryMode.EMAIL_DIGEST})
API_LIMIT = 2_000  # subscriptions set up through the store API; more go in bulk


def address(user: int) -> str:
    return f"reader{user}@Example.ORG"


async def _history(path: Path) -> None:
    """Migrate and store yesterday's papers through the store; they were matched then."""
    store = await open_sqlite_store(path)
    try:
        sightings = [Sighting(p) for p in history_papers()]
        await store.ingest(sightings, SourceState("feed:yesterday"), SETUP_AT)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM match_queue")


async def setup_api(path: Path, subs: list[str]) -> None:
    await _history(path)
    store = await open_sqlite_store(path)
    try:
        for first in range(0, len(subs), SUBS_PER_USER):
            user = await store.get_or_create_user(email=address(first), now=SETUP_AT)
            user = (await set_email(store, user.id, address(first), SETUP_AT)).user
            assert user.email is not None
            await store.verify_email(user.id, user.email, SETUP_AT)
            for text in subs[first : first + SUBS_PER_USER]:
                normalized = render(parse_query(text))
                await store.add_subscription(
                    user.owner, text, normalized, DELIVER, SETUP_AT, limit=50
                )
    finally:
        await store.close()
    _confirmations_sent(path)


def setup_bulk(path: Path, subs: list[str]) -> None:
    asyncio.run(_history(path))
    stamp = iso(SETUP_AT)
    users, confirms, deliveries, rows = [], [], [], []
    for user_id, first in enumerate(range(0, len(subs), SUBS_PER_USER), start=1):
        email = check_email_address(address(first))
        users.append((email, stamp, stamp))
        confirms.append((user_id, email, stamp))
        payload = to_json({"address": email, "issued": stamp})
        owner = str(Owner.user(user_id))
        deliveries.append((f"confirm:email:{email}:{stamp}", owner, payload, stamp, stamp, stamp))
        for text in subs[first : first + SUBS_PER_USER]:
            normalized = render(parse_query(text))
            rows.append((owner, text.strip(), normalized, deliver_json(DELIVER), stamp))
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO users (email, email_verified, created_at, updated_at) VALUES (?, 1, ?, ?)",
            users,
        )
        db.executemany(
            "INSERT INTO confirmations (user_id, address, issued_at) VALUES (?, ?, ?)", confirms
        )
        db.executemany(
            "INSERT INTO deliveries (key, owner, channel, kind, payload, next_attempt_at, "
            "created_at, updated_at) VALUES (?, ?, 'email', 'confirm', ?, ?, ?, ?)",
            deliveries,
        )
        db.executemany(
            "INSERT INTO subscriptions (owner, query, normalized, deliver, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")
    _confirmations_sent(path)


def _confirmations_sent(path: Path) -> None:
    """The confirmation mails went out long ago: they are not this cycle's work."""
    stamp = iso(SETUP_AT)
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?, updated_at = ? "
            "WHERE kind = 'confirm'",
            (stamp, stamp),
        )


def setup(path: Path, subs: list[str]) -> str:
    if len(subs) <= API_LIMIT:
        asyncio.run(setup_api(path, subs))
        return "store API"
    setup_bulk(path, subs)
    return "sqlite3 bulk"


_TABLES = {
    "users": "SELECT * FROM users ORDER BY id",
    "subscriptions": "SELECT * FROM subscriptions ORDER BY id",
    "confirmations": "SELECT * FROM confirmations ORDER BY id",
    "deliveries": "SELECT * FROM deliveries ORDER BY id",
    "sequences": "SELECT * FROM sqlite_sequence ORDER BY name",
}


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {name: db.execute(sql).fetchall() for name, sql in _TABLES.items()}


def check_bulk_setup(subs: list[str]) -> bool:
    """True when the bulk setup writes exactly the rows the store API writes."""
    with tempfile.TemporaryDirectory(prefix="paperbell-cycle-check-") as tmp:
        api, bulk = Path(tmp) / "api.db", Path(tmp) / "bulk.db"
        asyncio.run(setup_api(api, subs))
        setup_bulk(bulk, subs)
        return _dump(api) == _dump(bulk)
