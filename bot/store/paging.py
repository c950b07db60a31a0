"""Reading a whole table a page at a time, for callers that only pass over it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.models import Subscription, User
from bot.store.protocols import Store

# Subscriptions read at a time: reading 50,000 at once held them all twice over (rows,
# then models), some 47 MB, and left the heap 40 MB bigger for the daemon's life.
SUBSCRIPTION_PAGE = 2_000
USER_PAGE = 2_000


async def every_subscription(store: Store) -> AsyncIterator[Subscription]:
    """Every stored subscription, in id order, ``SUBSCRIPTION_PAGE`` at a time."""
    after = 0
    while page := await store.list_subscriptions(after_id=after, limit=SUBSCRIPTION_PAGE):
        for sub in page:
            yield sub
        after = page[-1].id


async def every_user(store: Store) -> AsyncIterator[User]:
    """Every user, in id order, ``USER_PAGE`` at a time."""
    after = 0
    while page := await store.list_users(after_id=after, limit=USER_PAGE):
        for user in page:
            yield user
        after = page[-1].id
