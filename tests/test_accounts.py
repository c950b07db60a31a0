"""Email use cases: double opt-in by link or code, limits, unsubscribe, removal."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from bot.accounts import addresses as accounts
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.notifier import Channel, ConfirmationMessage
from bot.delivery.planning import record_matches
from bot.errors import InvalidTokenError, InvalidValueError, LimitError, UserError
from bot.models import DeliveryMode, User
from bot.store.protocols import DeliveryState, Store
from tests.support_outbox import (
    DISCORD,
    INSTANT,
    LINKS,
    NOW,
    SIGNER,
    FrozenClock,
    RecordingNotifier,
    add_papers,
    record,
    verified_user,
)

DAY = timedelta(hours=24)


async def newcomer(store: Store) -> User:
    return await store.get_or_create_user(discord_id="700", now=NOW)


async def mailed_confirmations(store: Store, now: datetime = NOW) -> list[ConfirmationMessage]:
    email = RecordingNotifier(Channel.EMAIL)
    clock = FrozenClock(now)
    await Dispatcher(store, {Channel.EMAIL: email}, LINKS, clock, random.Random(1)).run_once()
    return [m for m in email.sent if isinstance(m, ConfirmationMessage)]


def token_of(url: str) -> str:
    return url.rpartition("/")[2]


# --- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "give an email address"),
        ("ada.example.org", "is not an email address"),
        ("ada@localhost", "'localhost' is not a valid domain"),
        ("ada@exa mple.org", "is not a valid domain"),
        ("a..b@example.org", "the part before the @"),
        ("<ada@example.org>", "'example.org>' is not a valid domain"),
        ("a(b)@example.org", "the part before the @"),
        ("ada@example.org\r\nBcc: eve@example.org", "line breaks or control characters"),
        ("adä@example.org", "plain ASCII"),
        ("a" * 65 + "@example.org", "too long"),
    ],
)
def test_bad_addresses_are_refused_clearly(address: str, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        accounts.check_email_address(address)


def test_good_addresses_are_trimmed_and_domain_folded() -> None:
    assert accounts.check_email_address("  Ada.L+bell@Example.ORG ") == "Ada.L+bell@example.org"


async def test_double_opt_in_by_link(store: Store) -> None:
    user = await newcomer(store)
    request = await accounts.set_email(store, user.id, "ada@example.org", NOW)
    assert request.confirmation is accounts.Confirmation.QUEUED
    pending = request.user
    assert (pending.email, pending.email_deliverable) == ("ada@example.org", False)
    [mail] = await mailed_confirmations(store)
    token = token_of(mail.confirm_url)
    assert mail.confirm_url == f"https://bell.example.org/confirm/{token}"
    confirmed = await accounts.confirm_email(store, SIGNER, token, NOW + timedelta(hours=23))
    assert confirmed.email_deliverable
    again = await accounts.confirm_email(store, SIGNER, token, NOW + timedelta(hours=23))
    assert again == confirmed  # following the link twice is fine


async def test_double_opt_in_by_code(store: Store) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "ada@example.org", NOW)
    [mail] = await mailed_confirmations(store)
    wrong = f"{(int(mail.code) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidTokenError, match="that code is not right"):
        await accounts.confirm_code(store, SIGNER, user.id, wrong, NOW)
    with pytest.raises(InvalidTokenError, match="6 digits"):
        await accounts.confirm_code(store, SIGNER, user.id, "12ab", NOW)
    confirmed = await accounts.confirm_code(store, SIGNER, user.id, f" {mail.code} ", NOW)
    assert confirmed.email_verified


async def test_wrong_codes_are_limited(store: Store) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "ada@example.org", NOW)
    [mail] = await mailed_confirmations(store)
    wrong = f"{(int(mail.code) + 1) % 1_000_000:06d}"
    for _ in range(accounts.MAX_WRONG_CODES):
        with pytest.raises(InvalidTokenError, match="not right"):
            await accounts.confirm_code(store, SIGNER, user.id, wrong, NOW)
    with pytest.raises(InvalidTokenError, match="too many wrong codes; use the link"):
        await accounts.confirm_code(store, SIGNER, user.id, mail.code, NOW)
    by_link = await accounts.confirm_email(store, SIGNER, token_of(mail.confirm_url), NOW)
    assert by_link.email_verified


async def test_links_and_codes_expire_after_a_day(store: Store) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "ada@example.org", NOW)
    [mail] = await mailed_confirmations(store)
    late = NOW + DAY + timedelta(seconds=1)
    with pytest.raises(InvalidTokenError, match="expired"):
        await accounts.confirm_email(store, SIGNER, token_of(mail.confirm_url), late)
    with pytest.raises(InvalidTokenError, match="that code has expired"):
        await accounts.confirm_code(store, SIGNER, user.id, mail.code, late)
    fresh = await store.get_user(user.id)
    assert fresh is not None
    assert not fresh.email_verified


async def test_a_link_for_a_replaced_address_does_not_confirm(store: Store) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "old@example.org", NOW)
    [old] = await mailed_confirmations(store)
    await accounts.set_email(store, user.id, "new@example.org", NOW)
    with pytest.raises(InvalidTokenError, match="no longer on the account"):
        await accounts.confirm_email(store, SIGNER, token_of(old.confirm_url), NOW)
    with pytest.raises(InvalidTokenError, match="not right"):
        await accounts.confirm_code(store, SIGNER, user.id, old.code, NOW)


async def test_at_most_three_confirmation_mails_a_day(store: Store) -> None:
    user = await newcomer(store)
    for n in range(3):
        await accounts.set_email(store, user.id, "ada@example.org", NOW + timedelta(minutes=n))
    with pytest.raises(LimitError, match="3 confirmation mails went to this address"):
        await accounts.set_email(store, user.id, "ada@example.org", NOW + timedelta(hours=1))
    mails = await mailed_confirmations(store, NOW + timedelta(hours=1))
    assert len(mails) == 3
    # Each mail's code works while it is fresh: the newest one too.
    confirmed = await accounts.confirm_code(store, SIGNER, user.id, mails[-1].code, NOW)
    assert confirmed.email_verified


async def test_an_address_of_another_account(store: Store) -> None:
    await verified_user(store, "ada@example.org")
    user = await newcomer(store)
    with pytest.raises(UserError) as refused:
        await accounts.set_email(store, user.id, "ADA@example.org", NOW)
    assert str(refused.value) == "that address is used by another account"


async def test_an_unconfirmed_address_gets_nothing_but_the_confirmation(
    store: Store,
) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "ada@example.org", NOW)
    sub = await store.add_subscription(user.owner, "g", "g", INSTANT, NOW, limit=5)
    await add_papers(store, "p1")
    await record_matches(store, [record(user.owner, "p1", sub.id)], NOW)
    assert len(await mailed_confirmations(store)) == 1
    [alert] = [d for d in await store.list_deliveries(user.owner) if d.kind == "alert"]
    assert (alert.state, alert.last_error) == ("suppressed", "email address not confirmed")


# --- unsubscribe ------------------------------------------------------------------------------


async def test_unsubscribe_all_is_idempotent_until_the_address_is_set_again(
    store: Store,
) -> None:
    user = await verified_user(store)
    links = LINKS.message_links("ada@example.org")
    assert links.unsubscribe_all is not None
    token = token_of(links.unsubscribe_all)
    years_later = NOW + timedelta(days=800)  # unsubscribe links never expire
    first = await accounts.unsubscribe(store, SIGNER, token, years_later)
    second = await accounts.unsubscribe(store, SIGNER, token, years_later)
    assert first == second == "paperbell will send no more email to ada@example.org."
    stopped = await store.get_user(user.id)
    assert stopped is not None
    assert (stopped.email_suppressed, stopped.email_suppressed_reason) == (True, "you unsubscribed")
    assert not stopped.email_deliverable
    again = await accounts.set_email(store, user.id, "ada@example.org", years_later)
    assert again.confirmation is accounts.Confirmation.RESENT
    assert (again.user.email_suppressed, again.user.email_verified) == (False, False)


async def test_tokens_are_bound_to_their_purpose(store: Store) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "ada@example.org", NOW)
    [mail] = await mailed_confirmations(store)
    with pytest.raises(InvalidTokenError, match="not valid"):
        await accounts.unsubscribe(store, SIGNER, token_of(mail.confirm_url), NOW)
    with pytest.raises(InvalidTokenError, match="not valid"):
        await accounts.unsubscribe(store, SIGNER, token_of(mail.confirm_url) + "x", NOW)


async def test_unsubscribe_one_subscription(store: Store) -> None:
    user = await verified_user(store)
    both = frozenset({DeliveryMode.DISCORD, DeliveryMode.EMAIL_INSTANT})
    mixed = await store.add_subscription(user.owner, "a", "a", both, NOW, limit=5)
    mail_only = await store.add_subscription(user.owner, "b", "b", INSTANT, NOW, limit=5)
    for sub in (mixed, mail_only):
        token = token_of(LINKS.stop_subscription_url("ada@example.org", sub.id))
        first = await accounts.unsubscribe(store, SIGNER, token, NOW)
        assert first == await accounts.unsubscribe(store, SIGNER, token, NOW)
        assert first == "ada@example.org will get no more email from this subscription."
    assert [s.deliver for s in await store.list_subscriptions(user.owner)] == [DISCORD]
    fresh = await store.get_user(user.id)
    assert fresh is not None
    assert fresh.email_deliverable  # other mail still goes


async def test_a_stop_link_cannot_touch_another_users_subscription(store: Store) -> None:
    await verified_user(store, "ada@example.org")
    bob = await verified_user(store, "bob@example.org")
    theirs = await store.add_subscription(bob.owner, "b", "b", INSTANT, NOW, limit=5)
    token = token_of(LINKS.stop_subscription_url("ada@example.org", theirs.id))
    await accounts.unsubscribe(store, SIGNER, token, NOW)
    assert await store.get_subscription(theirs.id) == theirs


async def test_remove_email(store: Store) -> None:
    user = await newcomer(store)
    await accounts.set_email(store, user.id, "ada@example.org", NOW)
    removed = await accounts.remove_email(store, user.id, NOW)
    assert removed.email is None
    assert await store.find_user(email="ada@example.org") is None
    assert {d.state for d in await store.list_deliveries(user.owner)} == {DeliveryState.SUPPRESSED}
    with pytest.raises(InvalidTokenError, match="no address to confirm"):
        await accounts.confirm_code(store, SIGNER, user.id, "123456", NOW)


# --- an address asked for again ----------------------------------------------------------------


async def fail_confirmations(store: Store, now: datetime) -> None:
    """The SMTP server refused every confirmation mail due now, for good."""
    for batch in await store.claim_due(now):
        await store.mark_failed([d.id for d in batch.deliveries], "550 mailbox unavailable", now)


async def test_asked_again_while_pending_sends_nothing_new(store: Store) -> None:
    user = (
        await accounts.set_email(store, (await newcomer(store)).id, "ada@example.org", NOW)
    ).user
    again = await accounts.request_confirmation(store, user, NOW + timedelta(hours=1))
    assert again.confirmation is accounts.Confirmation.PENDING
    assert again.delivery is not None and again.delivery.state is DeliveryState.PENDING
    assert len(await mailed_confirmations(store, NOW + timedelta(hours=1))) == 1


async def test_an_expired_confirmation_is_resent_with_a_new_token(store: Store) -> None:
    user = (
        await accounts.set_email(store, (await newcomer(store)).id, "ada@example.org", NOW)
    ).user
    [first] = await mailed_confirmations(store)
    later = NOW + DAY + timedelta(minutes=1)
    again = await accounts.request_confirmation(store, user, later)
    assert (again.confirmation, again.reason) == (
        accounts.Confirmation.RESENT,
        "the last one expired",
    )
    [second] = await mailed_confirmations(store, later)
    assert token_of(second.confirm_url) != token_of(first.confirm_url)
    confirmed = await accounts.confirm_email(store, SIGNER, token_of(second.confirm_url), later)
    assert confirmed.email_deliverable
    done = await accounts.request_confirmation(store, confirmed, later)
    assert done.confirmation is accounts.Confirmation.CONFIRMED


async def test_undelivered_confirmations_are_resent_within_the_daily_cap(
    store: Store,
) -> None:
    user = (
        await accounts.set_email(store, (await newcomer(store)).id, "ada@example.org", NOW)
    ).user
    for n in range(1, 3):
        await fail_confirmations(store, NOW + timedelta(minutes=n - 1))
        again = await accounts.request_confirmation(store, user, NOW + timedelta(minutes=n))
        assert again.confirmation is accounts.Confirmation.RESENT
        assert again.reason == "the last one was not delivered: 550 mailbox unavailable"
    await fail_confirmations(store, NOW + timedelta(minutes=2))
    capped = await accounts.request_confirmation(store, user, NOW + timedelta(minutes=4))
    assert capped.confirmation is accounts.Confirmation.NOT_SENT
    assert capped.reason.startswith("3 confirmation mails went to this address")


async def test_an_unsubscribed_address_must_confirm_again(store: Store) -> None:
    user = await verified_user(store, "ada@example.org")
    token = token_of(LINKS.message_links("ada@example.org").unsubscribe_all or "")
    await accounts.unsubscribe(store, SIGNER, token, NOW)
    stopped = await store.get_user(user.id)
    assert stopped is not None
    again = await accounts.request_confirmation(store, stopped, NOW + timedelta(hours=1))
    assert again.confirmation is accounts.Confirmation.RESENT
    assert again.reason == "mail to it was stopped: you unsubscribed"
    assert not again.user.email_deliverable and not again.user.email_suppressed
