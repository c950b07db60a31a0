"""Email addresses of users: set (double opt-in), confirm, unsubscribe, remove.

The CLI, Discord and the web endpoint all call these. The rules:

* An address is stored unverified and receives nothing but a confirmation mail until its
  owner follows the link or types the 6-digit code (both valid for 24 hours). At most
  ``CONFIRMATIONS_PER_DAY`` confirmation mails go to one address in any 24 hours, and
  after ``MAX_WRONG_CODES`` wrong codes only the link confirms it. Asked for again (another
  subscription), an address gets a new confirmation only when the last one expired or was
  not delivered, or mail to it was stopped; each request says what happened to it.
* Opening a confirm link only shows a button (mail scanners open links); pressing it confirms.
* Unsubscribe links never expire. ``{"email": a}`` stops all mail to ``a``: the holder's
  address is *suppressed* (``User.email_suppressed``, reason "you unsubscribed") until
  they set an address again, which needs a new confirmation. ``{"email": a, "sub": id}``
  removes the email delivery modes of that one subscription (and the subscription itself
  when no other mode is left). Both are idempotent: the same request twice gives the same
  answer.

Links and codes are built by ``LinkBuilder`` from a ``Signer``; nothing secret is stored.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.accounts.manage import MANAGE_DAYS, feed_token, manage_token
from bot.accounts.tokens import Signer
from bot.address import check_email_address as check_email_address  # noqa: PLC0414 - re-exported
from bot.errors import InvalidTokenError, InvalidValueError, LimitError, NotFoundError
from bot.messages import ConfirmationMessage, FeedbackLinks, ManageLinkMessage, MessageLinks
from bot.models import DeliveryMode, User
from bot.settings import EmailSettings, Settings
from bot.store.protocols import Delivery, DeliveryKind, DeliveryState, Rating, Store

CONFIRM_HOURS = 24
CONFIRMATIONS_PER_DAY = 3
MAX_WRONG_CODES = 5  # per address and 24 hours: guessing 1 in a million stays hopeless
CONFIRM, UNSUBSCRIBE, FEEDBACK = "confirm", "unsubscribe", "feedback"
FOLLOW = "follow"
UNSUBSCRIBED = "you unsubscribed"
EMAIL_MODES = frozenset({DeliveryMode.EMAIL_INSTANT, DeliveryMode.EMAIL_DIGEST})

_CODE = re.compile(r"^\d{6}$")
# Unsubscribe links never expire, so one (address, subscription) always signs to the same
# token; a digest asks for its reader's few links once per paper. Enough for the readers
# of a claim or two: 65,536 entries (every link of 10,000 readers) held 24 MB all day to
# save one signature (5 µs) per link and message.
_LINKS_CACHED = 4096


@dataclass(frozen=True, slots=True)
class LinkBuilder:
    """Signed links and codes for mail: confirm, unsubscribe all, stop one subscription."""

    signer: Signer
    public_url: str
    # Papers of an alert, and of a digest, that get 👍 / 👎 links: those shown in full (the
    # rest are listed by title, without them), so no link is signed that no mail shows.
    feedback_papers: int = EmailSettings.model_fields["alert_full_papers"].default
    digest_feedback_papers: int = EmailSettings.model_fields["digest_full_papers"].default

    @classmethod
    def from_settings(cls, settings: Settings, signer: Signer) -> LinkBuilder:
        email = settings.email
        return cls(signer, settings.public_url, email.alert_full_papers, email.digest_full_papers)

    def _url(self, path: str, token: str) -> str:
        return f"{self.public_url.rstrip('/')}/{path}/{token}"

    def message_links(self, address: str, manage: str | None = None) -> MessageLinks:
        """The one-click unsubscribe link, which never expires, and the manage link.

        No ``mailto:`` unsubscribe: nothing reads mail sent to paperbell, so such a request
        would be lost while the sender believes it worked.
        """
        return MessageLinks(unsubscribe_all=_unsubscribe_url(self, address, None), manage=manage)

    def manage_url(self, user: User, now: datetime) -> str:
        return self._url("manage", manage_token(self.signer, user, now))

    def feed_url(self, user: User, sub_id: int | None = None) -> str:
        return self._url("feed", feed_token(self.signer, user, sub_id)) + ".atom"

    def manage_link(self, key: str, user: User, address: str, now: datetime) -> ManageLinkMessage:
        return ManageLinkMessage(key, address, self.manage_url(user, now), MANAGE_DAYS)

    def stop_subscription_url(self, address: str, sub_id: int) -> str:
        return _unsubscribe_url(self, address, sub_id)

    def feedback_links(self, user_id: int, paper_key: str, sub_id: int | None) -> FeedbackLinks:
        """👍 / 👎 links for one paper of one reader's mail; they do not expire (a paper
        may be rated weeks later), and only ever record that one rating."""

        def url(rating: Rating) -> str:
            payload: dict[str, object] = {"user": user_id, "paper": paper_key, "r": str(rating)}
            if sub_id is not None:
                payload["sub"] = sub_id
            return self._url(FEEDBACK, self.signer.sign(FEEDBACK, payload))

        follow = self._url(FOLLOW, self.signer.sign(FOLLOW, {"user": user_id, "paper": paper_key}))
        return FeedbackLinks(like=url(Rating.LIKE), dislike=url(Rating.DISLIKE), follow=follow)

    def confirm_url(self, user_id: int, address: str, issued: datetime) -> str:
        payload = {"user": user_id, "email": address, "iat": int(issued.timestamp())}
        token = self.signer.sign(CONFIRM, payload, issued + timedelta(hours=CONFIRM_HOURS))
        return self._url(CONFIRM, token)

    def confirm_code(self, user_id: int, address: str, issued: datetime) -> str:
        return self.signer.code(CONFIRM, _code_subject(user_id, address), issued)

    def confirmation(
        self, key: str, user_id: int, address: str, issued: datetime, user: User | None = None
    ) -> ConfirmationMessage:
        """The same message for every retry: the link and code derive from the issue time."""
        return ConfirmationMessage(
            key=key,
            address=address,
            code=self.confirm_code(user_id, address, issued),
            confirm_url=self.confirm_url(user_id, address, issued),
            expires_hours=CONFIRM_HOURS,
            manage_url=None if user is None else self.manage_url(user, issued),
        )


@functools.lru_cache(maxsize=_LINKS_CACHED)
def _unsubscribe_url(links: LinkBuilder, address: str, sub_id: int | None) -> str:
    """The never-expiring unsubscribe link: all mail to ``address``, or one subscription's.

    Pure (the same builder, address and id sign to the same token), hence cached; the
    builder is part of the key, so another secret key or public URL never shares an entry.
    """
    payload: dict[str, str | int] = {"email": address}
    if sub_id is not None:
        payload["sub"] = sub_id
    return links._url(UNSUBSCRIBE, links.signer.sign(UNSUBSCRIBE, payload))


def _code_subject(user_id: int, address: str) -> str:
    return f"{user_id}:{address.lower()}"


# --- use cases -------------------------------------------------------------------------------


class Confirmation(StrEnum):
    """What a request for an address did about its confirmation mail."""

    QUEUED = "queued"  # a first confirmation mail is in the outbox
    RESENT = "resent"  # a new one (new link and code) is in the outbox; ``reason`` says why
    PENDING = "pending"  # one issued earlier is still valid; no new mail
    CONFIRMED = "confirmed"  # the address is confirmed and receiving mail; none needed
    NOT_SENT = "not_sent"  # nothing queued; ``reason`` says why


@dataclass(frozen=True, slots=True)
class AddressRequest:
    """The account after a request for an address, and what happened about confirming it.

    ``delivery`` is the outbox row of the confirmation concerned (new or pending), so a
    caller that dispatches can say whether it really went out.
    """

    user: User
    confirmation: Confirmation
    reason: str = ""
    delivery: Delivery | None = None


async def set_email(
    store: Store,
    user_id: int,
    address: str,
    now: datetime,
    *,
    max_per_day: int = CONFIRMATIONS_PER_DAY,
) -> AddressRequest:
    """Give the user ``address`` (unverified) and queue one confirmation mail.

    Setting the address the user already receives mail at changes nothing. ``InvalidValueError``
    for a bad address, ``UserError`` if another account holds it, ``LimitError`` past
    ``max_per_day`` confirmation mails to it in 24 hours.
    """
    checked = check_email_address(address)
    user = await store.get_user(user_id)
    if user is not None and user.email == checked and user.email_deliverable:
        return AddressRequest(user, Confirmation.CONFIRMED)
    earlier = None
    if user is not None and user.email == checked:
        earlier = await latest_confirmation(store, user, checked)
    user = await store.set_email(user_id, checked, now, max_per_day=max_per_day)
    state = Confirmation.QUEUED if earlier is None else Confirmation.RESENT
    reason = "" if earlier is None else "asked for again"
    return AddressRequest(user, state, reason, await latest_confirmation(store, user, checked))


async def request_confirmation(
    store: Store,
    user: User,
    now: datetime,
    *,
    max_per_day: int = CONFIRMATIONS_PER_DAY,
) -> AddressRequest:
    """An address asked for again (another subscription): mail it only when needed.

    A valid confirmation already out is not repeated; an expired or undelivered one is
    replaced by a new one (new link and code) within ``max_per_day``; an address stopped
    (unsubscribed, bouncing) must be confirmed again before it gets anything.
    """
    address = user.email
    if address is None:
        raise InvalidValueError("this account has no address to confirm")
    if user.email_deliverable:
        return AddressRequest(user, Confirmation.CONFIRMED)
    latest = await latest_confirmation(store, user, address)
    why = _why_mail_again(user, latest, now)
    if why is None:
        return AddressRequest(user, Confirmation.PENDING, delivery=latest)
    return await _reissue(store, user, now, max_per_day=max_per_day, why=why)


def _why_mail_again(user: User, latest: Delivery | None, now: datetime) -> str | None:
    """Why a new confirmation is needed ("" for a first one); ``None`` while one is good."""
    if user.email_verified:  # confirmed once, then stopped: its owner must opt in again
        return f"mail to it was stopped: {user.email_suppressed_reason or 'deliveries failed'}"
    if latest is None:
        return ""
    if _issued(latest) <= now - timedelta(hours=CONFIRM_HOURS):
        return "the last one expired"
    if latest.state in (DeliveryState.FAILED, DeliveryState.SUPPRESSED):
        return f"the last one was not delivered: {latest.last_error or latest.state}"
    return None


async def _reissue(
    store: Store, user: User, now: datetime, *, max_per_day: int, why: str = ""
) -> AddressRequest:
    address = user.email or ""
    try:
        updated = await store.set_email(user.id, address, now, max_per_day=max_per_day)
    except LimitError as exc:
        return AddressRequest(user, Confirmation.NOT_SENT, str(exc))
    state = Confirmation.RESENT if why else Confirmation.QUEUED
    return AddressRequest(updated, state, why, await latest_confirmation(store, updated, address))


async def latest_confirmation(store: Store, user: User, address: str) -> Delivery | None:
    """The outbox row of the newest confirmation mail to ``address``, if any."""
    # Only this reader's confirmation rows: a year of instant alerts is thousands of rows.
    rows = [
        row
        for row in await store.list_deliveries(owner=user.owner, kind=DeliveryKind.CONFIRM)
        if row.payload.get("address") == address
        and row.payload.get("purpose") is None  # a manage-link mail confirms nothing
    ]
    return max(rows, key=_issued, default=None)


def _issued(row: Delivery) -> datetime:
    issued = row.payload.get("issued")
    return datetime.fromisoformat(issued) if isinstance(issued, str) else row.created_at


def confirmation_expires(row: Delivery) -> datetime:
    return _issued(row) + timedelta(hours=CONFIRM_HOURS)


def confirm_link_address(signer: Signer, token: str, now: datetime) -> tuple[int, str]:
    """The user id and address a confirm link is for; changes nothing.

    ``InvalidTokenError`` for a forged, garbled or expired link.
    """
    data = signer.verify(CONFIRM, token, now)
    user_id, address = data.get("user"), data.get("email")
    if not isinstance(user_id, int) or not isinstance(address, str):
        raise InvalidTokenError("this link is not valid")
    return user_id, address


async def confirm_email(store: Store, signer: Signer, token: str, now: datetime) -> User:
    """Confirm by link. Confirming twice is fine; ``InvalidTokenError`` says what is wrong."""
    user_id, address = confirm_link_address(signer, token, now)
    user = await store.get_user(user_id)
    if user is None:
        raise InvalidTokenError("this link is for an account that no longer exists")
    return await _verify(store, user, address, now)


async def confirm_by_operator(store: Store, address: str, now: datetime) -> User:
    """An operator vouches for an address: confirmed without the mail round trip.

    A stop (unsubscribed, bouncing) stays: only the address's owner can lift it.
    """
    checked = check_email_address(address)
    user = await store.find_user(email=checked)
    if user is None:
        raise NotFoundError(
            f"no account has the address {checked}; add it with paperbell subscribe --email"
        )
    if user.email_verified:
        return user
    verified = await store.verify_email(user.id, checked, now)
    if verified is None:  # the address changed since we looked
        raise NotFoundError(f"no account has the address {checked} any more")
    return verified


async def confirm_code(
    store: Store, signer: Signer, user_id: int, code: str, now: datetime
) -> User:
    """Confirm by the 6-digit code from the latest mails (each valid 24 hours)."""
    user = await store.get_user(user_id)
    if user is None:
        raise NotFoundError(f"no user #{user_id}")
    if user.email is None:
        raise InvalidTokenError("there is no address to confirm; set one first")
    if user.email_verified:
        return user
    if not _CODE.match(code.strip()):
        raise InvalidTokenError("a confirmation code is 6 digits, like 042817")
    window = now - timedelta(hours=CONFIRM_HOURS)
    if await store.wrong_codes(user.id, user.email, window) >= MAX_WRONG_CODES:
        raise InvalidTokenError(
            "too many wrong codes; use the link in the confirmation mail, or try again tomorrow"
        )
    issued = await store.confirmation_times(user.id, user.email, datetime.min.replace(tzinfo=UTC))
    subject = _code_subject(user.id, user.email)
    matching = [t for t in issued if signer.check_code(CONFIRM, subject, t, code)]
    if not matching:
        await store.record_wrong_code(user.id, user.email)
        raise InvalidTokenError("that code is not right; check the latest confirmation mail")
    if all(now - t > timedelta(hours=CONFIRM_HOURS) for t in matching):
        raise InvalidTokenError("that code has expired; set your address again for a new one")
    return await _verify(store, user, user.email, now)


async def _verify(store: Store, user: User, address: str, now: datetime) -> User:
    if user.email is None or user.email.lower() != address.lower():
        raise InvalidTokenError(
            "this confirmation is for an address no longer on the account; "
            "use the latest confirmation mail"
        )
    if user.email_verified:
        return user
    verified = await store.verify_email(user.id, address, now)
    if verified is None:  # the address changed since we looked
        raise InvalidTokenError("this confirmation is for an address no longer on the account")
    return verified


async def unsubscribe(store: Store, signer: Signer, token: str, now: datetime) -> str:
    """Stop what the token names; returns a sentence for the page. Idempotent."""
    data = signer.verify(UNSUBSCRIBE, token, now)
    address, sub_id = data.get("email"), data.get("sub")
    if not isinstance(address, str) or not (sub_id is None or isinstance(sub_id, int)):
        raise InvalidTokenError("this link is not valid")
    if sub_id is None:
        await store.suppress_email(address, UNSUBSCRIBED, now)
        return f"paperbell will send no more email to {address}."
    await _stop_subscription_email(store, address, sub_id, now)
    return f"{address} will get no more email from this subscription."


async def _stop_subscription_email(store: Store, address: str, sub_id: int, now: datetime) -> None:
    user = await store.find_user(email=address)
    sub = await store.get_subscription(sub_id)
    if user is None or sub is None or sub.owner != user.owner or not sub.deliver & EMAIL_MODES:
        return  # nothing (left) to stop: the same answer as the first time
    remaining = sub.deliver - EMAIL_MODES
    try:
        if remaining:
            await store.set_subscription_delivery(sub.id, user.owner, remaining, now)
        else:
            await store.remove_subscription(sub.id, user.owner, now)
    except NotFoundError:
        return  # removed meanwhile: what was asked is done


async def remove_email(store: Store, user_id: int, now: datetime) -> User:
    """Forget the user's address; mail still queued for it is suppressed."""
    return await store.remove_email(user_id, now)
