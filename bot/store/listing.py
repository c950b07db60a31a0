"""The one query behind ``Store.list_deliveries``, built alike for both stores: only
their placeholders (``?`` or ``$1``) and their text cleaning differ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.models import Owner
from bot.store.records import DeliveryKind, DeliveryState


@dataclass(frozen=True, slots=True)
class DeliveryListing:
    sql: str  # ends in ``LIMIT <placeholder>``: the limit is the last parameter
    params: list[object]  # all but the limit
    forward: bool  # rows come oldest first; else newest first, to be turned round


def delivery_listing(
    select: str,
    mark: Callable[[int], str],
    *,
    owner: Owner | None,
    state: DeliveryState | None,
    kind: DeliveryKind | None,
    paper_key: str | None,
    after_id: int | None,
    text: Callable[[str], str] = str,
) -> DeliveryListing:
    """``select`` filtered on the values given. ``mark(n)``: the store's placeholder for
    the n-th parameter; ``text``: how it cleans a text value. A page (``after_id``)
    reads forward; otherwise newest first, so that LIMIT keeps the newest."""
    given = (("owner", owner), ("state", state), ("kind", kind), ("paper_key", paper_key))
    where: list[tuple[str, object]] = [
        (f"{c} = {{}}", text(str(v))) for c, v in given if v is not None
    ]
    if after_id is not None:
        where.append(("id > {}", after_id))
    clause = " AND ".join(test.format(mark(n)) for n, (test, _) in enumerate(where, 1))
    order = "id" if after_id is not None else "id DESC"
    sql = f"{select} WHERE {clause or 'TRUE'} ORDER BY {order} LIMIT {mark(len(where) + 1)}"
    return DeliveryListing(sql, [v for _, v in where], after_id is not None)
