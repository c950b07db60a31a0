"""Manage and feed tokens (``bot.accounts.manage``), the rule for mailing a manage link
(``bot.delivery.policy.manage_link_hold``) and the exports (``bot.accounts.export``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.accounts.addresses import UNSUBSCRIBED
from bot.accounts.export import Received, export_bibtex
from bot.accounts.manage import FEED, MANAGE, feed_token, manage_token, open_token
from bot.delivery.policy import manage_link_hold
from bot.errors import InvalidTokenError, StaleLinkError
from bot.models import Owner
from bot.store.protocols import Store
from tests.support_outbox import NOW, SIGNER, paper, record, verified_user

OWNER = Owner.user(1)


async def test_tokens_open_their_person_until_expired_or_revoked(store: Store) -> None:
    user = await verified_user(store)
    token = manage_token(SIGNER, user, NOW)
    assert (await open_token(store, SIGNER, token, NOW)).user == user
    with pytest.raises(StaleLinkError, match="expired"):
        await open_token(store, SIGNER, token, NOW + timedelta(days=181))
    await store.queue_manage_link(user.id, NOW, max_per_day=3, revoke=True)
    with pytest.raises(StaleLinkError, match="replaced by a newer one"):
        await open_token(store, SIGNER, token, NOW)


async def test_purposes_do_not_mix_and_forgeries_are_not_stale(store: Store) -> None:
    user = await verified_user(store)
    feed = feed_token(SIGNER, user, 7)
    key = await open_token(store, SIGNER, feed, NOW, purpose=FEED)
    assert (key.user.id, key.sub_id) == (user.id, 7)
    with pytest.raises(InvalidTokenError) as caught:
        await open_token(store, SIGNER, feed, NOW, purpose=MANAGE)
    assert not isinstance(caught.value, StaleLinkError)
    ghost = replace(user, id=user.id + 100)
    with pytest.raises(InvalidTokenError, match="no longer exists"):
        await open_token(store, SIGNER, manage_token(SIGNER, ghost, NOW), NOW)


async def test_a_manage_link_goes_after_an_unsubscribe_but_not_after_bounces(
    store: Store,
) -> None:
    user = await verified_user(store)
    assert manage_link_hold(user, "ada@example.org") is None
    assert manage_link_hold(user, "bob@example.org") is not None
    stopped = replace(user, email_suppressed=True, email_suppressed_reason=UNSUBSCRIBED)
    assert manage_link_hold(stopped, "ada@example.org") is None
    bounced = replace(user, email_suppressed=True, email_suppressed_reason="3 deliveries failed")
    assert manage_link_hold(bounced, "ada@example.org") is not None
    assert manage_link_hold(None, "ada@example.org") is not None


@given(st.text(max_size=40))
def test_bibtex_fields_always_balance_their_braces(title: str) -> None:
    item = Received(record(OWNER, "2611.00001", 1), replace(paper("2611.00001"), title=title))
    bib = export_bibtex([], [item])
    depth = 0
    for char in bib:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
