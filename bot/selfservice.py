"""Self-service for people without Discord: sign up on the web, then their own page.

The facade the web pages call (one call per request). Everything a visitor can get wrong
raises a ``UserError`` naming the field; a manage or feed token opens one person's data
and nothing else (``bot.accounts.manage``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.accounts.addresses import (
    UNSUBSCRIBED,
    AddressRequest,
    Confirmation,
    check_email_address,
)
from bot.accounts.export import Received, export_bibtex, export_json
from bot.accounts.manage import (
    FEED,
    MANAGE_MAILS_PER_DAY,
    ManageKey,
    manage_token,
    open_token,
)
from bot.delivery.follows import Followed
from bot.delivery.why_model import Why
from bot.errors import LimitError, QueryError, UserError
from bot.matching.query import Query, render
from bot.matching.step import compile_subscription
from bot.matching.trial import try_queries
from bot.models import DeliveryMode, DigestFrequency, Paper, SourceKind, Subscription, User
from bot.service import Learned, Paperbell, QueryTest, check_timezone
from bot.settings import SourceConfig

HIT_DAYS = 7
RECENT_PAPERS = 20
FEED_ENTRIES = 50
DELIVER_CHOICES: dict[str, frozenset[DeliveryMode]] = {
    "digest": frozenset({DeliveryMode.EMAIL_DIGEST}),
    "instant": frozenset({DeliveryMode.EMAIL_INSTANT}),
    "both": frozenset({DeliveryMode.EMAIL_DIGEST, DeliveryMode.EMAIL_INSTANT}),
}


class FieldError(UserError):
    """A form field that cannot be used; ``field`` names it for the page."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SignupState(StrEnum):
    SENT = "sent"  # a first confirmation mail is queued
    PENDING = "pending"  # already waiting for confirmation; ``resent`` and ``reason`` say more
    CONFIRMED = "confirmed"  # already confirmed; a manage link was mailed (``resent``)


@dataclass(frozen=True, slots=True)
class SignupResult:
    address: str
    state: SignupState
    resent: bool = False  # PENDING: a new confirmation went; CONFIRMED: a manage link went
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Overview:
    sources: tuple[str, ...]
    papers_per_day: float
    signup: str
    domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubscriptionLine:
    subscription: Subscription
    hits: int  # papers it matched among those of the last HIT_DAYS days
    total: int
    feed_url: str

    @property
    def hit_rate(self) -> float:
        return self.hits / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class ManagePage:
    user: User
    token: str  # a fresh manage token for the page's own links and forms
    subscriptions: tuple[SubscriptionLine, ...]
    received: tuple[Received, ...]
    feed_url: str
    learned: tuple[Learned, ...] = ()  # the 👍 / 👎 their ranking learns from, newest first
    followed: tuple[Followed, ...] = ()  # papers followed, newest first, with their changes


@dataclass(frozen=True, slots=True)
class FeedData:
    user: User
    subscription: Subscription | None
    entries: tuple[Received, ...]
    subscriptions: dict[int, Subscription]


class SelfService:
    def __init__(self, core: Paperbell) -> None:
        self.core = core
        self.store = core.store
        self.web = core.settings.web

    # --- the front page -----------------------------------------------------------------

    async def overview(self) -> Overview:
        since = self.core.clock() - timedelta(days=HIT_DAYS)
        recent = await self.store.count_papers_since(since)
        names = tuple(dict.fromkeys(_shown(s) for s in self.core.settings.sources))
        return Overview(names, recent / HIT_DAYS, self.web.signup, self.web.domains)

    async def preview(self, query: str) -> QueryTest:
        try:
            return await self.core.test_query(_required("query", query), days=HIT_DAYS)
        except FieldError:
            raise
        except UserError as exc:
            raise FieldError("query", str(exc)) from None

    async def signup(
        self, email: str, query: str, deliver: str, timezone: str, hour: str
    ) -> SignupResult:
        """Check every field first (nothing is written for a refused form), then store the
        subscription pending and mail the confirmation; an address confirmed already gets
        a manage link instead, and nothing is added for it (a stranger must not change a
        confirmed person's subscriptions)."""
        address = self._check_address(email)
        parsed_query = await self._check_query(query)
        modes = _check_deliver(deliver)
        zone, digest_hour = _check_zone(timezone), _check_hour(hour)
        request = await self.core.account_for_email(address)
        if request.confirmation is Confirmation.CONFIRMED:
            return await self._mail_manage_link(request.user, address)
        if not request.user.email_verified:  # a stranger cannot move a confirmed person's hour
            await self.core.update_settings(request.user.id, timezone=zone, digest_hour=digest_hour)
        try:
            await self.core.subscribe(request.user.owner, parsed_query, modes)
        except LimitError as exc:
            raise FieldError("query", str(exc)) from None
        except UserError:  # the same query asked again: it is there already
            pass
        return _pending_result(address, request)

    def _check_address(self, email: str) -> str:
        if self.web.signup == "closed":
            raise FieldError("email", "sign-up on the web is closed here; ask the operator")
        try:
            address = check_email_address(_required("email", email))
        except FieldError:
            raise
        except UserError as exc:
            raise FieldError("email", str(exc)) from None
        if self.web.signup == "domains" and not _in_domains(address, self.web.domains):
            allowed = ", ".join(self.web.domains)
            raise FieldError("email", f"sign-up here is for addresses at {allowed} only")
        return address

    async def _check_query(self, query: str) -> str:
        await self._parsed(query)
        return query.strip()

    async def _parsed(self, query: str) -> Query:
        """``query`` checked as subscribing checks it (no week of papers scanned), its
        problem named as the form field's."""
        try:
            return await self.core.check_query(_required("query", query))
        except FieldError:
            raise
        except UserError as exc:
            raise FieldError("query", str(exc)) from None

    async def _mail_manage_link(
        self, user: User, address: str, *, revoke: bool = False
    ) -> SignupResult:
        try:
            await self.store.queue_manage_link(
                user.id, self.core.clock(), max_per_day=MANAGE_MAILS_PER_DAY, revoke=revoke
            )
        except LimitError as exc:
            return SignupResult(address, SignupState.CONFIRMED, False, str(exc))
        return SignupResult(address, SignupState.CONFIRMED, True)

    # --- links ---------------------------------------------------------------------------

    async def open(self, token: str, *, purpose: str = "manage") -> ManageKey:
        return await open_token(
            self.store, self.core.signer, token, self.core.clock(), purpose=purpose
        )

    async def confirm(self, token: str) -> tuple[User, str]:
        """Confirm by link; the user, and a fresh manage token for the page it lands on."""
        user = await self.core.confirm_link(token)
        return user, manage_token(self.core.signer, user, self.core.clock())

    async def new_link(self, token: str) -> SignupResult:
        """Revoke every manage link of the token's holder and mail a new one."""
        user = (await self.open(token)).user
        return await self._mail_manage_link(user, user.email or "", revoke=True)

    async def request_link(self, email: str) -> str:
        """ "Send me a new link" from a stale link's page. The answer is the same whether
        or not the address is known, so it reveals nobody."""
        address = check_email_address(_required("email", email))
        user = await self.store.find_user(email=address)
        if user is not None and user.email_verified:
            await self._mail_manage_link(user, address, revoke=True)
        return address

    # --- the manage page ----------------------------------------------------------------

    async def manage(self, token: str) -> ManagePage:
        user = (await self.open(token)).user
        subs = await self.store.list_subscriptions(user.owner)
        hits, total = await self._hits(subs)
        links = self.core.links
        lines = tuple(
            SubscriptionLine(s, hits.get(s.id, 0), total, links.feed_url(user, s.id)) for s in subs
        )
        received = await self._received(user, RECENT_PAPERS, sent_only=True)
        fresh = manage_token(self.core.signer, user, self.core.clock())
        learned = tuple(await self.core.learned(user.id))
        followed = tuple(await self.core.followed(user.owner))
        feed = links.feed_url(user)
        return ManagePage(user, fresh, lines, tuple(received), feed, learned, followed)

    async def _hits(self, subs: list[Subscription]) -> tuple[dict[int, int], int]:
        papers = await self.store.list_papers(since=self.core.clock() - timedelta(days=HIT_DAYS))
        queries: dict[int, Query] = {}
        for sub in subs:
            try:
                queries[sub.id] = compile_subscription(sub)  # as the match step reads it
            except QueryError:
                continue  # stored by an older paperbell with other rules: no rate to show
        found = await try_queries(self.store, queries, papers)
        counts = Counter(match.sub_id for _, match in found)
        return dict(counts), len(papers)

    async def _received(self, user: User, limit: int, *, sent_only: bool) -> list[Received]:
        records = await self.store.recent_matches(user.owner, limit, sent_only=sent_only)
        papers: dict[str, Paper] = await self.store.get_papers([r.paper_key for r in records])
        return [Received(r, papers[r.paper_key]) for r in records if r.paper_key in papers]

    async def add(self, token: str, query: str, deliver: str) -> Subscription:
        user = (await self.open(token)).user
        await self._parsed(query)
        sub = await self.core.subscribe(user.owner, query.strip(), _check_deliver(deliver))
        return sub.subscription

    async def edit(self, token: str, sub_id: int, query: str) -> Subscription:
        user = (await self.open(token)).user
        parsed = await self._parsed(query)
        sub = await self.store.update_subscription(
            sub_id, user.owner, self.core.clock(), query=(query.strip(), render(parsed))
        )
        self.core.index.remove(sub.id)
        if not sub.paused:
            self.core.index.add(sub, parsed)
        return sub

    async def pause(self, token: str, sub_id: int, paused: bool) -> Subscription:
        user = (await self.open(token)).user
        sub = await self.store.update_subscription(
            sub_id, user.owner, self.core.clock(), paused=paused
        )
        self.core.index.remove(sub.id)
        if not paused:
            self.core.index.add(sub)
        return sub

    async def delete(self, token: str, sub_id: int) -> Subscription:
        user = (await self.open(token)).user
        return await self.core.unsubscribe(user.owner, sub_id)

    async def digest_settings(
        self, token: str, timezone: str, hour: str, frequency: str, weekday: str
    ) -> User:
        user = (await self.open(token)).user
        try:
            chosen = DigestFrequency(frequency)
        except ValueError:
            choices = ", ".join(DigestFrequency)
            raise FieldError("frequency", f"frequency must be one of {choices}") from None
        return await self.core.update_settings(
            user.id,
            timezone=_check_zone(timezone),
            digest_hour=_check_hour(hour),
            frequency=chosen,
            weekday=_check_int("weekday", weekday or "0", 0, 6),
        )

    async def pause_all(self, token: str, paused: bool) -> User:
        user = (await self.open(token)).user
        return await self.core.update_settings(user.id, paused=paused)

    async def unsubscribe_all(self, token: str) -> User:
        """Stop all mail: the address is suppressed ("you unsubscribed") and its
        subscriptions removed; the page (and a new sign-up) can start again."""
        user = (await self.open(token)).user
        for sub in await self.store.list_subscriptions(user.owner):
            await self.core.unsubscribe(user.owner, sub.id)
        if user.email:
            await self.store.suppress_email(user.email, UNSUBSCRIBED, self.core.clock())
        return (await self.open(token)).user

    async def reset_learned(self, token: str) -> int:
        """Forget every 👍 / 👎 of the token's holder; how many there were."""
        return await self.core.reset_learned((await self.open(token)).user.id)

    async def min_relevance(self, token: str, sub_id: int, percent: str) -> Subscription:
        """Instant alerts of ``sub_id`` scored below ``percent`` % wait for the digest
        (empty: every alert goes out at once)."""
        user = (await self.open(token)).user
        text = percent.strip().removesuffix("%").strip()
        value = _check_int("min_relevance", text, 0, 100) / 100 if text else None
        return await self.core.set_min_relevance(user.owner, sub_id, value)

    async def why(self, token: str, paper: str) -> Why:
        """Why the page's owner got ``paper``, or where it stopped (``Paperbell.why``)."""
        user = (await self.open(token)).user
        try:
            return await self.core.why(user, _required("paper", paper))
        except UserError as exc:
            raise exc if isinstance(exc, FieldError) else FieldError("paper", str(exc)) from None

    async def export(self, token: str, fmt: str) -> str:
        user = (await self.open(token)).user
        subs = await self.store.list_subscriptions(user.owner)
        received = await self._received(user, 10_000, sent_only=True)
        if fmt == "bib":
            return export_bibtex(subs, received)
        ratings = await self.store.list_feedback(user.id)
        return export_json(user, subs, received, self.core.clock(), ratings)

    async def feed(self, token: str) -> FeedData:
        key = await self.open(token, purpose=FEED)
        subs = {s.id: s for s in await self.store.list_subscriptions(key.user.owner)}
        sub = None
        if key.sub_id is not None:
            sub = subs.get(key.sub_id)
            if sub is None:
                raise UserError("this feed's subscription was deleted")
        received = await self._received(key.user, FEED_ENTRIES * 4, sent_only=False)
        if sub is not None:
            received = [r for r in received if sub.id in r.record.sub_ids]
        return FeedData(key.user, sub, tuple(received[:FEED_ENTRIES]), subs)


_KIND_SHOWN = {
    SourceKind.HF_DAILY: "Hugging Face Daily Papers",
    SourceKind.ARXIV_RSS: "arXiv",
    SourceKind.ARXIV_API: "arXiv",
}


def _shown(source: SourceConfig) -> str:
    return _KIND_SHOWN.get(source.kind, source.name)


def _pending_result(address: str, request: AddressRequest) -> SignupResult:
    match request.confirmation:
        case Confirmation.QUEUED:
            return SignupResult(address, SignupState.SENT, True)
        case Confirmation.RESENT:
            return SignupResult(address, SignupState.PENDING, True, request.reason)
        case Confirmation.PENDING:
            why = "the confirmation sent earlier is still valid; use its link or code"
            return SignupResult(address, SignupState.PENDING, False, why)
        case _:
            return SignupResult(address, SignupState.PENDING, False, request.reason)


def _required(field: str, value: str) -> str:
    if not value or not value.strip():
        raise FieldError(field, f"{field} is empty; fill it in")
    return value


def _in_domains(address: str, domains: tuple[str, ...]) -> bool:
    host = address.rpartition("@")[2].lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _check_deliver(deliver: str) -> frozenset[DeliveryMode]:
    try:
        return DELIVER_CHOICES[deliver]
    except KeyError:
        raise FieldError("deliver", "deliver must be digest, instant or both") from None


def _check_zone(name: str) -> str:
    try:
        return check_timezone((name or "UTC").strip())
    except UserError as exc:
        raise FieldError("timezone", str(exc)) from None


def _check_hour(hour: str) -> int:
    return _check_int("hour", hour or "8", 0, 23)


def _check_int(field: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise FieldError(field, f"{field} must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise FieldError(field, f"{field} must be a whole number from {low} to {high}")
    return value
