"""What every store must do for users, addresses and subscriptions.

The ``AccountStore`` role, written against the protocol only; runs over every
implementation (the ``store`` fixture in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.delivery.planning import record_matches
from bot.errors import InvalidValueError, LimitError, NotFoundError, UserError
from bot.models import DeliveryMode, DigestFrequency, Owner
from bot.store.protocols import DeliveryKind, DeliveryState, Store
from tests.support_outbox import DIGEST, DISCORD, INSTANT, NOW, add_papers, record, verified_user

LATER = NOW + timedelta(hours=1)


async def assert_pages(read: Callable[..., Awaitable[Sequence[Any]]], rows: Sequence[Any]) -> None:
    """``read(after_id=, limit=)`` pages through five ``rows`` (in id order) two at a time,
    and without a limit returns everything after the id."""
    first = await read(limit=2)
    assert first == rows[:2]
    assert await read(after_id=first[-1].id, limit=2) == rows[2:4]
    assert await read(after_id=rows[3].id, limit=2) == rows[4:]
    assert await read(after_id=rows[4].id, limit=2) == []
    assert await read(after_id=rows[1].id) == rows[2:]


class TestAccountsContract:
    """``AccountStore``: users, their addresses, their subscriptions."""

    # --- users ------------------------------------------------------------------------------

    async def test_user_by_discord_id_is_created_once(self, store: Store) -> None:
        first = await store.get_or_create_user(discord_id="111", now=NOW)
        again = await store.get_or_create_user(discord_id="111", now=LATER)
        assert again == first
        assert (first.discord_id, first.email, first.created_at) == ("111", None, NOW)
        assert (first.timezone, first.digest_hour, first.digest_frequency) == ("UTC", 8, "daily")
        assert await store.get_user(first.id) == first
        assert await store.find_user(discord_id="111") == first
        assert await store.find_user(discord_id="222") is None
        assert await store.get_user(first.id + 100) is None

    async def test_user_by_address_is_unverified_and_found_in_any_case(self, store: Store) -> None:
        user = await store.get_or_create_user(email=" Ada@Example.ORG ", now=NOW)
        assert (user.email, user.email_verified, user.email_deliverable) == (
            "Ada@example.org",
            False,
            False,
        )
        assert await store.find_user(email="ada@EXAMPLE.org") == user
        assert await store.get_or_create_user(email="ADA@example.org", now=LATER) == user

    async def test_identity_must_be_exactly_one_and_valid(self, store: Store) -> None:
        with pytest.raises(TypeError, match="exactly one"):
            await store.get_or_create_user(now=NOW)
        with pytest.raises(TypeError, match="exactly one"):
            await store.get_or_create_user(discord_id="1", email="a@example.org", now=NOW)
        with pytest.raises(InvalidValueError, match="line breaks"):
            await store.get_or_create_user(email="a@example.org\r\nBcc: x@y.org", now=NOW)
        assert await store.list_users() == []

    async def test_concurrent_creation_makes_one_user(self, store: Store) -> None:
        made = await asyncio.gather(
            *(store.get_or_create_user(discord_id="42", now=NOW) for _ in range(10))
        )
        assert len({u.id for u in made}) == 1
        assert len(await store.list_users()) == 1

    async def test_update_user_settings_round_trip(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        changed = await store.update_user(
            user.id,
            LATER,
            timezone="Europe/Berlin",
            digest_hour=6,
            digest_frequency=DigestFrequency.WEEKLY,
            digest_weekday=4,
            paused=True,
            discord_dm_channel="900",
            discord_unreachable=True,
            discord_notice_pending=True,
        )
        assert (changed.timezone, changed.digest_hour, changed.digest_weekday) == (
            "Europe/Berlin",
            6,
            4,
        )
        assert changed.digest_frequency is DigestFrequency.WEEKLY
        assert changed.paused and changed.discord_unreachable and changed.discord_notice_pending
        assert changed.discord_dm_channel == "900"
        assert await store.get_user(user.id) == changed
        back = await store.update_user(user.id, LATER, paused=False, digest_frequency="off")
        assert (back.paused, back.digest_frequency) == (False, DigestFrequency.OFF)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
            ({"timezone": "../etc/passwd"}, "unknown timezone"),
            ({"digest_hour": 24}, "digest hour must be a whole number from 0 to 23, not 24"),
            ({"digest_hour": True}, "digest hour"),
            ({"digest_weekday": 7}, r"digest weekday \(0 = Monday\)"),
            ({"digest_frequency": "hourly"}, "digest frequency must be one of daily, weekdays"),
            ({"paused": "yes"}, "paused must be true or false"),
        ],
    )
    async def test_bad_settings_are_refused_and_change_nothing(
        self, store: Store, changes: dict[str, object], message: str
    ) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        with pytest.raises(InvalidValueError, match=message):
            await store.update_user(user.id, LATER, discord_dm_channel="5", **changes)
        assert await store.get_user(user.id) == user

    async def test_update_unknown_field_or_user(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        with pytest.raises(TypeError, match="cannot change email_verified"):
            await store.update_user(user.id, NOW, email_verified=True)
        with pytest.raises(NotFoundError, match="no user #999"):
            await store.update_user(999, NOW, paused=True)

    async def test_list_users_in_creation_order(self, store: Store) -> None:
        for discord_id in ("3", "1", "2"):
            await store.get_or_create_user(discord_id=discord_id, now=NOW)
        assert [u.discord_id for u in await store.list_users()] == ["3", "1", "2"]

    async def test_users_read_a_page_at_a_time(self, store: Store) -> None:
        users = [await store.get_or_create_user(discord_id=str(n), now=NOW) for n in range(5)]
        await assert_pages(store.list_users, users)

    # --- addresses --------------------------------------------------------------------------

    async def test_set_email_queues_one_confirmation(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        updated = await store.set_email(user.id, "ada@example.org", NOW)
        assert (updated.email, updated.email_verified) == ("ada@example.org", False)
        [confirm] = await store.list_deliveries(user.owner)
        assert (confirm.kind, confirm.channel, confirm.state) == ("confirm", "email", "pending")
        assert confirm.payload["address"] == "ada@example.org"
        assert datetime.fromisoformat(confirm.payload["issued"]) == NOW
        assert confirm.key == f"confirm:email:ada@example.org:{confirm.payload['issued']}"
        assert await store.confirmation_times(user.id, "ADA@example.org", NOW) == [NOW]
        verified = await store.verify_email(user.id, "Ada@Example.org", LATER)
        assert verified is not None
        assert verified.email_deliverable

    async def test_verify_other_address_does_nothing(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        await store.set_email(user.id, "ada@example.org", NOW)
        assert await store.verify_email(user.id, "bob@example.org", NOW) is None
        assert not (await store.get_user(user.id) or user).email_verified

    async def test_address_of_another_account_is_refused(self, store: Store) -> None:
        ada = await verified_user(store, "ada@example.org")
        bob = await store.get_or_create_user(discord_id="bob", now=NOW)
        with pytest.raises(UserError, match=r"^that address is used by another account$"):
            await store.set_email(bob.id, "ADA@example.org", NOW)
        assert (await store.get_user(bob.id) or bob).email is None
        assert await store.find_user(email="ada@example.org") == ada

    async def test_three_confirmations_per_address_per_day(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        for minutes in range(3):
            await store.set_email(user.id, "ada@example.org", NOW + timedelta(minutes=minutes))
        with pytest.raises(LimitError, match="3 confirmation mails went to this address"):
            await store.set_email(user.id, "Ada@example.org", NOW + timedelta(hours=2))
        assert len(await store.list_deliveries(user.owner)) == 3
        await store.set_email(user.id, "ada@example.org", NOW + timedelta(days=1, minutes=1))
        assert len(await store.list_deliveries(user.owner)) == 4

    async def test_setting_an_address_clears_strikes_and_suppression(self, store: Store) -> None:
        user = await verified_user(store)
        for _ in range(3):
            await store.record_email_strike(user.id, "ada@example.org", "550 unknown", NOW)
        struck = await store.get_user(user.id)
        assert struck is not None
        assert (struck.email_strikes, struck.email_suppressed) == (3, True)
        again = await store.set_email(user.id, "ada@example.org", LATER)
        assert (again.email_strikes, again.email_suppressed, again.email_verified) == (
            0,
            False,
            False,
        )
        assert again.email_suppressed_reason is None

    async def test_remove_email_suppresses_queued_mail(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        await store.set_email(user.id, "ada@example.org", NOW)
        removed = await store.remove_email(user.id, LATER)
        assert (removed.email, removed.email_verified) == (None, False)
        [confirm] = await store.list_deliveries(user.owner)
        assert (confirm.state, confirm.last_error) == ("suppressed", "email address removed")
        with pytest.raises(NotFoundError):
            await store.remove_email(999, NOW)

    async def test_suppress_email_is_idempotent_and_keeps_first_reason(self, store: Store) -> None:
        user = await verified_user(store)
        first = await store.suppress_email("ADA@example.org", "you unsubscribed", NOW)
        assert first is not None
        assert (first.email_suppressed, first.email_suppressed_reason) == (True, "you unsubscribed")
        again = await store.suppress_email("ada@example.org", "other", LATER)
        assert again is not None
        assert again.email_suppressed_reason == "you unsubscribed"
        assert not again.email_deliverable
        assert await store.suppress_email("nobody@example.org", "x", NOW) is None
        assert user.id == again.id

    # --- subscriptions ----------------------------------------------------------------------

    async def test_subscriptions_round_trip(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        modes = frozenset({DeliveryMode.DISCORD, DeliveryMode.EMAIL_DIGEST})
        sub = await store.add_subscription(user.owner, "Graphs", "graph", modes, NOW, limit=50)
        post = await store.add_subscription(
            Owner.channel("99"), "gnn", "gnn", DISCORD, NOW, limit=50, guild_id="7"
        )
        assert (sub.owner, sub.query, sub.normalized, sub.deliver) == (
            user.owner,
            "Graphs",
            "graph",
            modes,
        )
        assert (post.owner, post.guild_id) == (Owner.channel("99"), "7")
        assert await store.get_subscription(sub.id) == sub
        assert await store.list_subscriptions(user.owner) == [sub]
        assert await store.list_subscriptions() == [sub, post]
        assert await store.get_subscription(sub.id + 100) is None

    async def test_subscriptions_read_a_page_at_a_time(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        other = await store.get_or_create_user(discord_id="2", now=NOW)
        subs = [
            await store.add_subscription(who.owner, f"q{n}", f"q{n}", DISCORD, NOW, limit=50)
            for n, who in enumerate([user, other, user, user, other])
        ]
        await assert_pages(store.list_subscriptions, subs)
        mine = await store.list_subscriptions(user.owner, after_id=subs[0].id, limit=1)
        assert mine == [subs[2]]

    async def test_limit_is_enforced(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        for n in range(3):
            await store.add_subscription(user.owner, f"q{n}", f"q{n}", DISCORD, NOW, limit=3)
        with pytest.raises(
            LimitError, match=r"^you have 3 subscriptions, the most allowed; remove one first$"
        ):
            await store.add_subscription(user.owner, "q9", "q9", DISCORD, NOW, limit=3)
        channel = Owner.channel("99")
        await store.add_subscription(channel, "a", "a", DISCORD, NOW, limit=1)
        with pytest.raises(LimitError, match=r"^this channel has 1 subscriptions"):
            await store.add_subscription(channel, "b", "b", DISCORD, NOW, limit=1)

    async def test_limit_holds_under_concurrency(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        results = await asyncio.gather(
            *(
                store.add_subscription(user.owner, f"q{n}", f"q{n}", DISCORD, NOW, limit=5)
                for n in range(12)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(r, LimitError) for r in results) == 7
        assert len(await store.list_subscriptions(user.owner)) == 5

    @pytest.mark.parametrize(
        ("owner", "deliver", "message"),
        [
            (Owner.channel("9"), INSTANT, "a channel subscription can only post to Discord"),
            (Owner.user(1), frozenset(), "choose at least one way to deliver"),
        ],
    )
    async def test_bad_subscriptions_are_refused(
        self, store: Store, owner: Owner, deliver: frozenset[DeliveryMode], message: str
    ) -> None:
        await store.get_or_create_user(discord_id="1", now=NOW)
        with pytest.raises(UserError, match=message):
            await store.add_subscription(owner, "q", "q", deliver, NOW, limit=5)
        assert await store.list_subscriptions() == []

    async def test_duplicate_query_and_unknown_user_are_refused(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        sub = await store.add_subscription(user.owner, "Graph", "graph", DISCORD, NOW, limit=5)
        with pytest.raises(UserError, match=rf"you already have this subscription \(#{sub.id}\)"):
            await store.add_subscription(user.owner, "graph", "graph", DIGEST, NOW, limit=5)
        with pytest.raises(NotFoundError, match="no user #77"):
            await store.add_subscription(Owner.user(77), "q", "q", DISCORD, NOW, limit=5)

    async def test_remove_by_another_owner_is_not_found(self, store: Store) -> None:
        ada = await store.get_or_create_user(discord_id="1", now=NOW)
        bob = await store.get_or_create_user(discord_id="2", now=NOW)
        sub = await store.add_subscription(ada.owner, "q", "q", DISCORD, NOW, limit=5)
        with pytest.raises(NotFoundError) as theirs:
            await store.remove_subscription(sub.id, bob.owner, NOW)
        with pytest.raises(NotFoundError) as missing:
            await store.remove_subscription(sub.id + 1, bob.owner, NOW)
        # One message for "not yours" and "not there": existence is not leaked.
        assert str(theirs.value).replace(str(sub.id), "#") == str(missing.value).replace(
            str(sub.id + 1), "#"
        )
        assert await store.get_subscription(sub.id) == sub
        assert await store.remove_subscription(sub.id, None, NOW) == sub  # an admin may
        assert await store.list_subscriptions() == []

    async def test_removing_a_subscription_suppresses_only_its_alerts(self, store: Store) -> None:
        user = await verified_user(store)
        graphs = await store.add_subscription(user.owner, "g", "g", INSTANT, NOW, limit=5)
        nets = await store.add_subscription(user.owner, "n", "n", INSTANT, NOW, limit=5)
        await add_papers(store, "p1", "p2")
        await record_matches(
            store,
            [record(user.owner, "p1", graphs.id), record(user.owner, "p2", graphs.id, nets.id)],
            NOW,
        )
        await store.remove_subscription(graphs.id, user.owner, LATER)
        alerts = {
            d.paper_key: d
            for d in await store.list_deliveries(user.owner)
            if d.kind is DeliveryKind.ALERT
        }
        assert (alerts["p1"].state, alerts["p1"].last_error) == (
            "suppressed",
            "subscription removed",
        )
        assert alerts["p2"].state is DeliveryState.PENDING  # nets still wants it

    async def test_set_subscription_delivery(self, store: Store) -> None:
        user = await store.get_or_create_user(discord_id="1", now=NOW)
        sub = await store.add_subscription(user.owner, "q", "q", DISCORD, NOW, limit=5)
        changed = await store.set_subscription_delivery(sub.id, user.owner, DIGEST, NOW)
        assert changed.deliver == DIGEST
        assert await store.get_subscription(sub.id) == changed
        with pytest.raises(UserError, match="at least one way"):
            await store.set_subscription_delivery(sub.id, user.owner, frozenset(), NOW)
        with pytest.raises(NotFoundError):
            await store.set_subscription_delivery(sub.id, Owner.user(99), DISCORD, NOW)

    # --- changed on the web (issue 12) ---------------------------------------------------

    async def test_update_subscription_keeps_its_id_and_bumps_the_marker(
        self, store: Store
    ) -> None:
        user = await verified_user(store)
        sub = await store.add_subscription(user.owner, "llm", "llm", DIGEST, NOW, limit=5)
        other = await store.add_subscription(user.owner, "gan", "gan", DIGEST, NOW, limit=5)
        marker = await store.subscriptions_marker()
        edited = await store.update_subscription(sub.id, user.owner, LATER, query=("LLMs", "llm2"))
        assert (edited.id, edited.query, edited.normalized) == (sub.id, "LLMs", "llm2")
        paused = await store.update_subscription(sub.id, user.owner, LATER, paused=True)
        assert paused.paused and (await store.get_subscription(sub.id)) == paused
        assert await store.subscriptions_marker() > marker
        with pytest.raises(UserError, match=f"#{other.id}"):
            await store.update_subscription(sub.id, user.owner, LATER, query=("gan", "gan"))
        with pytest.raises(NotFoundError):  # another owner's: the same answer as a missing one
            await store.update_subscription(sub.id, Owner.user(user.id + 1), LATER, paused=False)
        with pytest.raises(UserError):
            await store.update_subscription(sub.id, user.owner, LATER, query=(" ", ""))

    async def test_manage_link_mails_are_capped_and_revoke_with_the_mail(
        self, store: Store
    ) -> None:
        user = await verified_user(store)
        first = await store.queue_manage_link(user.id, NOW, max_per_day=2, revoke=True)
        assert first.kind is DeliveryKind.CONFIRM and first.payload["purpose"] == "manage"
        assert first.payload["address"] == "ada@example.org"
        revoked = await store.get_user(user.id)
        assert revoked is not None and revoked.manage_generation == user.manage_generation + 1
        await store.queue_manage_link(user.id, LATER, max_per_day=2)
        with pytest.raises(LimitError, match="2 links"):
            await store.queue_manage_link(user.id, LATER, max_per_day=2, revoke=True)
        unchanged = await store.get_user(user.id)
        assert unchanged is not None and unchanged.manage_generation == revoked.manage_generation
        assert await store.queue_manage_link(
            user.id, NOW + timedelta(days=1, hours=1), max_per_day=2
        )
