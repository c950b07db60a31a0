"""Reading a whole table a page at a time, for callers that only pass over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from bot.models import Subscription, User
from bot.store.protocols import Delivery, DeliveryState, Store

# Rows read at a time: reading 50,000 subscriptions at once held them all twice over
# (rows, then models), some 47 MB, and left the heap 40 MB bigger for the daemon's life.
SUBSCRIPTION_PAGE = 2_000
USER_PAGE = 2_000
DELIVERY_PAGE = 2_000


class _Stored(Protocol):
    @property
    def id(self) -> int: ...


Item = TypeVar("Item", bound=_Stored)


def every_subscription(store: Store) -> AsyncIterator[Subscription]:
    """Every stored subscription, in id order, ``SUBSCRIPTION_PAGE`` at a time."""
    return _paged(
        lambda after, n: store.list_subscriptions(after_id=after, limit=n), SUBSCRIPTION_PAGE
    )


def every_user(store: Store) -> AsyncIterator[User]:
    """Every user, in id order, ``USER_PAGE`` at a time."""
    return _paged(lambda after, n: store.list_users(after_id=after, limit=n), USER_PAGE)


def every_delivery(store: Store, state: DeliveryState | None = None) -> AsyncIterator[Delivery]:
    """Every outbox row (or those in ``state``), in id order, ``DELIVERY_PAGE`` at a time:
    a community's outbox holds hundreds of thousands."""
    return _paged(
        lambda after, n: store.list_deliveries(state=state, after_id=after, limit=n),
        DELIVERY_PAGE,
    )


async def _paged(
    read: Callable[[int, int], Awaitable[list[Item]]], size: int
) -> AsyncIterator[Item]:
    after = 0
    while page := await read(after, size):
        for item in page:
            yield item
        after = page[-1].id
