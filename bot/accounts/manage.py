"""Manage links: the long-lived, signed, revocable key to a person's own page.

A manage token signs ``{"user": id, "gen": generation}`` with an expiry of ``MANAGE_DAYS``.
Nothing secret is stored: revoking ("send me a new link") bumps ``users.manage_generation``
so every token signed for an older generation stops working. A token names one person, so
whatever it opens is theirs alone; per-subscription feeds sign ``sub`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.accounts.tokens import Signer
from bot.errors import InvalidTokenError, StaleLinkError
from bot.models import User
from bot.store.protocols import Store

MANAGE = "manage"
FEED = "feed"
MANAGE_DAYS = 180  # every mail carries a fresh one, so a reader never meets an old link
MANAGE_MAILS_PER_DAY = 3


@dataclass(frozen=True, slots=True)
class ManageKey:
    """What a valid manage (or feed) token opens: one user, maybe one subscription."""

    user: User
    sub_id: int | None = None


def manage_token(signer: Signer, user: User, now: datetime) -> str:
    payload = {"user": user.id, "gen": user.manage_generation}
    return signer.sign(MANAGE, payload, now + timedelta(days=MANAGE_DAYS))


def feed_token(signer: Signer, user: User, sub_id: int | None = None) -> str:
    """Feed readers poll one URL for years: no expiry, revoked with the manage links."""
    payload: dict[str, int] = {"user": user.id, "gen": user.manage_generation}
    if sub_id is not None:
        payload["sub"] = sub_id
    return signer.sign(FEED, payload)


async def open_token(
    store: Store, signer: Signer, token: str, now: datetime, *, purpose: str = MANAGE
) -> ManageKey:
    """The person a token opens. ``StaleLinkError`` for an expired or revoked one,
    ``InvalidTokenError`` for a forged or garbled one."""
    try:
        data = signer.verify(purpose, token, now)
    except InvalidTokenError as exc:
        if "expired" in str(exc):
            raise StaleLinkError("this link has expired; ask for a new one below") from None
        raise
    user_id, gen, sub = data.get("user"), data.get("gen"), data.get("sub")
    if not isinstance(user_id, int) or not isinstance(gen, int):
        raise InvalidTokenError("this link is not valid")
    if sub is not None and not isinstance(sub, int):
        raise InvalidTokenError("this link is not valid")
    user = await store.get_user(user_id)
    if user is None:
        raise InvalidTokenError("this link is for an account that no longer exists")
    if gen != user.manage_generation:
        raise StaleLinkError("this link was replaced by a newer one; use the newest mail")
    return ManageKey(user, sub)
