"""The core's use cases, one facade for every channel (CLI, Discord, web).

Channels parse a request, call one method here and render what it returns. Everything a
person can get wrong raises a ``UserError`` whose text is the message to show them.
What the use cases return lives in ``views``, the checks of what people type in
``checks``; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from bot.accounts import addresses as accounts
from bot.accounts import paper_links
from bot.accounts.addresses import LinkBuilder
from bot.accounts.tokens import Signer
from bot.delivery.digests import DigestPlanner
from bot.delivery.follows import Followed, follow_paper, followed_papers, unfollow_paper
from bot.delivery.notifier import Channel, DigestMessage
from bot.delivery.ranking import owner_ranker, with_reasons
from bot.delivery.why import WhyContext, arxiv_lookup, explain_paper
from bot.delivery.why_model import Why
from bot.errors import (
    NoFeedbackError,
    NotFoundError,
    UnknownLikeError,
    UnknownPapersError,
    UsageError,
    UserError,
)
from bot.matching.query import Query, like_keys, paper_key, parse_query, render
from bot.matching.search import search_papers
from bot.matching.step import SubscriptionIndex
from bot.matching.trial import try_queries
from bot.models import DeliveryMode, DigestFrequency, Owner, Paper, Subscription, User
from bot.relevance.corpus import vectorize_new
from bot.relevance.ranking import Ranker
from bot.service.checks import (
    check_min_relevance,
    check_range,
    check_ratings,
    check_timezone,
    timezone_names,
    why_key,
)
from bot.service.views import (
    Learned,
    PaperHit,
    QueryTest,
    Recommendation,
    Subscribed,
    SubscriptionView,
)
from bot.settings import Settings
from bot.store.protocols import Rating, Store

__all__ = [
    "Clock",
    "Learned",
    "PaperHit",
    "Paperbell",
    "QueryTest",
    "Recommendation",
    "Subscribed",
    "SubscriptionView",
    "check_min_relevance",
    "check_timezone",
    "timezone_names",
    "why_key",
]

Clock = Callable[[], datetime]


class Paperbell:
    """Built once per process with resources made outside and passed in."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        signer: Signer,
        clock: Clock,
        index: SubscriptionIndex,
    ) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.clock = clock
        self.index = index
        self.links = LinkBuilder.from_settings(settings, signer)
        self.digests = DigestPlanner(
            store,
            clock,
            settings.email.digest_max_papers,
            all_quiet=settings.email.all_quiet,
            sources=[s.source_id for s in settings.sources],
        )

    @property
    def source_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.settings.sources)

    # --- subscriptions ------------------------------------------------------------------

    async def subscribe(
        self,
        owner: Owner,
        query: str,
        deliver: frozenset[DeliveryMode],
        *,
        guild_id: str | None = None,
        min_relevance: float | None = None,
    ) -> Subscribed:
        check_min_relevance(min_relevance)
        parsed = await self.check_query(query)
        sub = await self.store.add_subscription(
            owner,
            query.strip(),
            render(parsed),
            deliver,
            self.clock(),
            limit=self.settings.max_subscriptions,
            guild_id=guild_id,
            min_relevance=min_relevance,
        )
        self.index.add(sub, parsed)
        return Subscribed(sub, await self.test_query(query))

    async def unsubscribe(self, owner: Owner | None, sub_id: int) -> Subscription:
        sub = await self.store.remove_subscription(sub_id, owner, self.clock())
        self.index.remove(sub.id)
        return sub

    async def subscriptions(self, owner: Owner | None = None) -> list[SubscriptionView]:
        """``owner``'s subscriptions, oldest first, with their match counts; without one,
        everyone's, each owner's together in the order owners first subscribed."""
        subs = await self.store.list_subscriptions(owner)
        if owner is None:
            first: dict[Owner, int] = {}
            for n, sub in enumerate(subs):
                first.setdefault(sub.owner, n)
            subs.sort(key=lambda s: first[s.owner])  # stable: oldest first within an owner
        counts = await self.store.count_matches([s.id for s in subs])
        return [SubscriptionView(s, counts.get(s.id, 0)) for s in subs]

    async def test_query(self, query: str, *, days: int = 7, examples: int = 3) -> QueryTest:
        if not 1 <= days <= 365:
            raise UserError(f"days must be between 1 and 365, not {days}")
        parsed = await self.check_query(query)
        papers = await self.store.list_papers(since=self.clock() - timedelta(days=days))
        found = await try_queries(self.store, {0: parsed}, papers)
        hits = [PaperHit(p, m.matched_words, m.score) for p, m in found]
        hits.sort(key=lambda h: (h.score, h.paper.upvotes or 0), reverse=True)
        return QueryTest(
            query=query,
            normalized=render(parsed),
            days=days,
            count=len(hits),
            total=len(papers),
            top=tuple(hits[:examples]),
            keys=tuple(h.paper.key for h in hits),
        )

    async def search(self, text: str, *, limit: int = 5) -> list[Paper]:
        """Stored papers ``text`` matches, read as a subscription query (bot.matching.search)."""
        return await search_papers(self.store, await self.check_query(text), limit)

    async def check_query(self, text: str) -> Query:
        """``text`` parsed; a ``like:`` naming a paper we do not have is refused."""
        parsed = parse_query(text, sources=self.source_names)
        wanted = like_keys(parsed)
        if wanted:
            await vectorize_new(self.store, self.clock())  # a paper stored a moment ago
            known = await self.store.get_vectors(wanted)
            if missing := sorted(wanted - known.keys()):
                raise UnknownLikeError(
                    f"like:{missing[0]}: no stored paper has that id; "
                    "pick one from `paperbell papers` or `paperbell search`"
                )
        return parsed

    # --- learned relevance --------------------------------------------------------------

    async def rate(
        self,
        user_id: int,
        *,
        like: Sequence[str] = (),
        dislike: Sequence[str] = (),
        sub_id: int | None = None,
        sub_ids: Mapping[str, int] | None = None,
    ) -> dict[str, Rating]:
        """Record 👍 / 👎 on papers (ids as people write them). Nothing is recorded if any
        id is bad: ``UnknownPapersError`` names each, one line apiece."""
        ratings, bad = check_ratings(like, dislike)
        known = await self.store.get_papers(list(ratings))
        missing = [k for k in ratings if k not in known]
        if bad:  # every problem at once, one line each
            raise UsageError("\n".join([*bad, *str(UnknownPapersError(missing)).splitlines()]))
        if missing:
            raise UnknownPapersError(missing)
        subs = dict.fromkeys(ratings, sub_id) if sub_id is not None else {}
        subs |= {paper_key(k) or k: s for k, s in (sub_ids or {}).items()}
        await self.store.rate(user_id, ratings, self.clock(), subs or None)
        return ratings

    async def learned(self, user_id: int) -> list[Learned]:
        """What the user's model learns from: their ratings, newest first."""
        feedback = await self.store.list_feedback(user_id)
        papers = await self.store.get_papers([f.paper_key for f in feedback])
        return [Learned(f, papers.get(f.paper_key)) for f in feedback]

    async def reset_learned(self, user_id: int) -> int:
        """Forget the user's ratings; how many there were."""
        return await self.store.reset_feedback(user_id)

    async def recommend(
        self, user_id: int, *, days: int = 7, limit: int = 10
    ) -> list[Recommendation]:
        """The best unrated papers of the last ``days`` for the user, by their model.
        Raises ``NoFeedbackError`` when there is nothing to learn from yet."""
        check_range("days", days, 1, 365)
        check_range("limit", limit, 1, 100)
        await vectorize_new(self.store, self.clock())
        ranker = await self.ranker(user_id)
        if ranker is None:
            raise NoFeedbackError()
        ranked = await ranker.recommend(self.clock() - timedelta(days=days), limit)
        return [
            Recommendation(p, r.score, why) for p, r, why in await with_reasons(self.store, ranked)
        ]

    async def set_min_relevance(
        self, owner: Owner | None, sub_id: int, value: float | None
    ) -> Subscription:
        """Instant alerts of ``sub_id`` scored below ``value`` wait for the digest (None:
        every alert goes out)."""
        check_min_relevance(value)
        return await self.store.set_min_relevance(sub_id, owner, value, self.clock())

    def feedback_link_paper(self, token: str) -> paper_links.FeedbackRequest:
        """What a feedback link would record, without recording it (the confirm page)."""
        return paper_links.read_feedback_link(self.signer, token, self.clock())

    async def feedback_link(self, token: str) -> tuple[paper_links.FeedbackRequest, Paper]:
        """Record the rating a signed feedback link carries; the paper it was about."""
        request = paper_links.read_feedback_link(self.signer, token, self.clock())
        paper = await self.store.get_paper(request.paper_key)
        if paper is None or await self.store.get_user(request.user_id) is None:
            raise NotFoundError("that paper or account is no longer stored; nothing was recorded")
        await self.rate(
            request.user_id,
            like=[paper.key] if request.rating is Rating.LIKE else [],
            dislike=[paper.key] if request.rating is Rating.DISLIKE else [],
            sub_id=request.sub_id,
        )
        return request, paper

    def follow_link_paper(self, token: str) -> paper_links.FollowRequest:
        """What a follow link would do, without doing it (the confirm page)."""
        return paper_links.read_follow_link(self.signer, token, self.clock())

    async def follow_link(self, token: str) -> Paper:
        """Follow the paper a signed follow link names, by email; the paper."""
        request = paper_links.read_follow_link(self.signer, token, self.clock())
        owner = Owner.user(request.user_id)
        paper, _ = await follow_paper(
            self.store, owner, request.paper_key, Channel.EMAIL, self.clock()
        )
        return paper

    async def why(self, user: User, paper: str) -> Why:
        """Why ``user`` got ``paper`` (an arXiv id or URL, or a stored key), or why not."""
        key = why_key(paper)
        lookup = arxiv_lookup(self.settings)
        ctx = WhyContext(self.store, self.settings, self.digests, self.clock, lookup)
        return await explain_paper(ctx, user, key)

    async def follow(
        self, owner: Owner, paper: str, channel: Channel, received_by: Owner | None = None
    ) -> tuple[Paper, bool]:
        """Follow a paper ``owner`` (or ``received_by``) received (an arXiv id or URL); see
        ``bot.delivery.follows``."""
        key = why_key(paper)
        return await follow_paper(
            self.store, owner, key, channel, self.clock(), received_by=received_by
        )

    async def unfollow(self, owner: Owner, paper: str) -> str:
        key = why_key(paper)
        await unfollow_paper(self.store, owner, key)
        return key

    async def followed(self, owner: Owner) -> list[Followed]:
        return await followed_papers(self.store, owner)

    async def paper(self, key: str) -> Paper | None:
        return await self.store.get_paper(key)

    async def ranker(self, user_id: int) -> Ranker | None:
        return await owner_ranker(self.store, Owner.user(user_id))

    # --- people -------------------------------------------------------------------------

    async def user_for_discord(self, discord_id: str) -> User:
        return await self.store.get_or_create_user(discord_id=discord_id, now=self.clock())

    async def user_for_email(self, address: str) -> User:
        """The account of an address, created (unverified, confirmation queued) if new."""
        return (await self.account_for_email(address)).user

    async def account_for_email(self, address: str) -> accounts.AddressRequest:
        """The account of an address and what was done to confirm it.

        New: created unverified with a confirmation queued. Known: a confirmation is
        re-sent only when the last one expired or was not delivered (within the daily cap).
        """
        checked = accounts.check_email_address(address)
        user = await self.store.find_user(email=checked)
        if user is not None:
            return await accounts.request_confirmation(self.store, user, self.clock())
        user = await self.store.get_or_create_user(email=checked, now=self.clock())
        return await accounts.set_email(self.store, user.id, checked, self.clock())

    async def update_settings(
        self,
        user_id: int,
        *,
        timezone: str | None = None,
        digest_hour: int | None = None,
        frequency: DigestFrequency | None = None,
        weekday: int | None = None,
        paused: bool | None = None,
    ) -> User:
        changes: dict[str, object] = {}
        if timezone is not None:
            changes["timezone"] = check_timezone(timezone)
        if digest_hour is not None:
            changes["digest_hour"] = check_range("digest hour", digest_hour, 0, 23)
        if weekday is not None:
            changes["digest_weekday"] = check_range("weekday", weekday, 0, 6)
        if frequency is not None:
            changes["digest_frequency"] = frequency
        if paused is not None:
            changes["paused"] = paused
        return await self.store.update_user(user_id, self.clock(), **changes)

    async def set_email(self, user_id: int, address: str) -> accounts.AddressRequest:
        return await accounts.set_email(self.store, user_id, address, self.clock())

    async def confirm_by_operator(self, address: str) -> User:
        return await accounts.confirm_by_operator(self.store, address, self.clock())

    async def verify_email(self, user_id: int, code: str) -> User:
        return await accounts.confirm_code(self.store, self.signer, user_id, code, self.clock())

    def confirm_link_address(self, token: str) -> str:
        """The address a confirm link is for, without confirming it."""
        return accounts.confirm_link_address(self.signer, token, self.clock())[1]

    async def confirm_link(self, token: str) -> User:
        return await accounts.confirm_email(self.store, self.signer, token, self.clock())

    async def unsubscribe_link(self, token: str) -> str:
        return await accounts.unsubscribe(self.store, self.signer, token, self.clock())

    async def remove_email(self, user_id: int) -> User:
        return await accounts.remove_email(self.store, user_id, self.clock())

    async def digest_preview(self, user_id: int) -> DigestMessage | None:
        return await self.digests.preview(await self._user(user_id), self.clock())

    async def take_notice(self, user_id: int) -> str | None:
        """A message owed to the user (shown once, at their next interaction)."""
        user = await self._user(user_id)
        if not user.discord_notice_pending:
            return None
        await self.store.update_user(user_id, self.clock(), discord_notice_pending=False)
        if user.email_deliverable:
            return f"I could not DM you, so your alerts now go to {user.email}."
        return "I could not DM you, so your Discord alerts were not delivered. Open your DMs."

    async def _user(self, user_id: int) -> User:
        user = await self.store.get_user(user_id)
        if user is None:
            raise NotFoundError(f"no user #{user_id}")
        return user
