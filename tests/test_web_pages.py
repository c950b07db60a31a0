"""The sign-up and manage pages over real HTTP: every rule of issue 12 (CSRF, Origin, no
state change on GET, rate limits, forged/revoked/expired tokens, sign-up modes), the
answers, the manage operations, and the Atom feeds parsed by feedparser."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
import pytest

from bot.accounts.manage import MANAGE, manage_token
from bot.accounts.tokens import Signer
from bot.daemon.resources import build_service
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.messages import AlertMessage, Channel
from bot.models import DeliveryMode, DigestFrequency, Links, User
from bot.selfservice import SelfService, SignupState
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import DeliveryKind, Store
from handlers.web import build_web_app, serve_web
from handlers.web.security import Rate, WebRates
from tests.support_outbox import (
    INSTANT,
    FrozenClock,
    RecordingNotifier,
    add_papers_of,
    paper,
    tick_made,
    verified_user,
)
from tests.support_web import check_structure, csrf_of, get_text, path_of, post_form

NOW = FrozenClock().now
PAPERS = [
    paper("2611.00001", title="Diffusion models for video generation"),
    paper("2611.00002", title="Scaling laws of diffusion transformers"),
    paper("2611.00003", title="A survey of graph neural networks"),
]


@dataclass
class Site:
    base: str
    http: aiohttp.ClientSession
    service: Paperbell
    clock: FrozenClock

    @property
    def store(self) -> Store:
        return self.service.store

    async def post(self, page: str, action: str, data: dict[str, str] | None = None) -> Any:
        return await post_form(self.http, self.base, page, action, data)

    async def snapshot(self) -> tuple[object, ...]:
        store = self.store
        return (
            await store.list_users(),
            await store.list_subscriptions(),
            await store.list_deliveries(),
        )

    def manage_path(self, user: User) -> str:
        return f"/manage/{manage_token(self.service.signer, user, self.clock())}"


async def open_site(
    tmp_path: Path, store: Store, rates: WebRates | None = None, **settings: Any
) -> AsyncIterator[Site]:
    clock = FrozenClock(NOW)
    service = await build_service(load_settings(data_dir=tmp_path, **settings), store, clock)
    await add_papers_of(store, PAPERS, now=NOW - timedelta(hours=1))
    async with (
        serve_web(build_web_app(service, rates=rates), "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as http,
    ):
        yield Site(f"http://{host}:{port}", http, service, clock)


@pytest.fixture
async def site(tmp_path: Path, store: Store) -> AsyncIterator[Site]:
    async for opened in open_site(tmp_path, store):
        yield opened


SIGNUP = {
    "email": "ada@example.org",
    "query": "diffusion",
    "deliver": "digest",
    "timezone": "Europe/Berlin",
    "hour": "7",
}


async def confirmed(site: Site, address: str = "ada@example.org") -> User:
    user = await verified_user(site.store, address, now=NOW)
    await site.service.subscribe(user.owner, "diffusion", frozenset({DeliveryMode.EMAIL_DIGEST}))
    return user


# --- the front page -----------------------------------------------------------------------


async def test_front_page_says_what_is_watched_and_has_a_labelled_form(site: Site) -> None:
    async with site.http.get(site.base + "/") as response:
        text = await response.text()
        headers = response.headers
    assert response.status == 200
    assert (
        "Hugging Face Daily Papers" in text
        and "new papers a day" in text
        and "Sign-up is open" in text
    )
    for name in ("email", "query", "timezone", "hour"):
        assert f'<label for="{name}"' in text and f'id="{name}"' in text
    for value in ("digest", "instant", "both"):
        assert f'name="deliver" value="{value}"' in text
    assert "Query syntax help" in text and 'formaction="/preview"' in text
    assert "<script>" not in text and "<style>" not in text and " style=" not in text
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in headers


async def test_static_script_and_style_are_served(site: Site) -> None:
    for path, kind in (("/static/app.js", "javascript"), ("/static/style.css", "css")):
        async with site.http.get(site.base + path) as response:
            assert response.status == 200 and kind in response.headers["Content-Type"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_preview_shows_the_understood_query_and_recent_matches(site: Site) -> None:
    # The no-JS preview answers with the page itself, the form filled in again.
    page = await _post_page(site, "/", "/preview", {**SIGNUP, "query": "Diffusion -survey"})
    assert "How paperbell understood it" in page
    assert "Diffusion models for video generation" in page and "graph neural" not in page
    assert "2 of 3 papers" in page and 'value="ada@example.org"' in page
    status, body = await get_text(site.http, site.base + "/preview.json?query=diffusion")
    data = json.loads(body)
    assert status == 200 and data["count"] == 2 and data["normalized"] == "diffusion"
    assert data["top"][0]["words"]


async def test_preview_of_a_bad_query_names_the_field_and_column(site: Site) -> None:
    page = await _post_page(site, "/", "/preview", {**SIGNUP, "query": '"unclosed'})
    assert "column" in page and 'aria-invalid="true"' in page
    status, body = await get_text(site.http, site.base + "/preview.json?query=%22unclosed")
    assert status == 400 and "column" in json.loads(body)["error"]


async def _post_page(site: Site, page: str, action: str, data: dict[str, str]) -> str:
    async with site.http.get(site.base + page) as response:
        token = csrf_of(await response.text())
    async with site.http.post(
        site.base + action, data={"csrf": token, **data}, headers={"Origin": site.base}
    ) as response:
        return await response.text()


# --- sign-up ------------------------------------------------------------------------------


async def test_signup_stores_a_pending_subscription_and_queues_one_confirmation(
    site: Site,
) -> None:
    response = await site.post("/", "/subscribe", SIGNUP)
    assert response.status == 200
    user = await site.store.find_user(email="ada@example.org")
    assert user is not None and not user.email_verified
    assert (user.timezone, user.digest_hour) == ("Europe/Berlin", 7)
    [sub] = await site.store.list_subscriptions(user.owner)
    assert sub.normalized == "diffusion" and sub.deliver == {DeliveryMode.EMAIL_DIGEST}
    rows = await site.store.list_deliveries(owner=user.owner)
    assert [r.kind for r in rows] == [DeliveryKind.CONFIRM]


async def test_signup_says_what_happened_at_the_facade(site: Site) -> None:
    self_service = SelfService(site.service)
    args = ("diffusion", "digest", "UTC", "8")
    first = await self_service.signup("ada@example.org", *args)
    assert first.state is SignupState.SENT and first.resent
    again = await self_service.signup("ada@example.org", "llm", "digest", "UTC", "8")
    assert again.state is SignupState.PENDING and not again.resent
    assert "still valid" in again.reason
    site.clock.advance(timedelta(hours=25))
    expired = await self_service.signup("ada@example.org", *args)
    assert expired.state is SignupState.PENDING and expired.resent
    assert "expired" in expired.reason
    await confirmed(site, "bob@example.org")
    known = await self_service.signup("bob@example.org", "gan", "digest", "UTC", "8")
    assert known.state is SignupState.CONFIRMED and known.resent
    bob = await site.store.find_user(email="bob@example.org")
    assert bob is not None
    assert [s.normalized for s in await site.store.list_subscriptions(bob.owner)] == [
        "diffusion"
    ]  # a stranger's form adds nothing to a confirmed person's subscriptions
    rows = await site.store.list_deliveries(owner=bob.owner)
    assert [r.payload.get("purpose") for r in rows if r.kind == "confirm"] == [None, MANAGE]


async def test_signup_page_is_the_same_whatever_the_address_state(site: Site) -> None:
    await confirmed(site, "known@example.org")
    await site.post("/", "/subscribe", {**SIGNUP, "email": "pending@example.org"})
    pages = []
    for address in ("new@example.org", "pending@example.org", "known@example.org"):
        page = await _post_page(site, "/", "/subscribe", {**SIGNUP, "email": address})
        pages.append(page.replace(address, "ADDRESS"))
    assert pages[0] == pages[1] == pages[2]
    assert "Already confirmed" in pages[0] and "re-sent" in pages[0]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("email", "not-an-address", "address"),
        ("email", "", "email is empty"),
        ("query", "-survey", "only says what to leave out"),
        ("deliver", "carrier pigeon", "digest, instant or both"),
        ("timezone", "Mars/Olympus", "time zone"),
        ("hour", "25", "hour must be"),
    ],
)
async def test_signup_refused_names_the_field_and_writes_nothing(
    site: Site, field: str, value: str, says: str
) -> None:
    before = await site.snapshot()
    async with site.http.get(site.base + "/") as response:
        token = csrf_of(await response.text())
    async with site.http.post(
        site.base + "/subscribe",
        data={"csrf": token, **SIGNUP, field: value},
        headers={"Origin": site.base},
    ) as response:
        text = await response.text()
    assert response.status == 400
    assert says in text and f'id="{field}-error"' in text
    assert await site.snapshot() == before


async def test_signup_modes(tmp_path: Path, store: Store) -> None:
    async for site in open_site(tmp_path, store, web={"signup": "closed"}):
        status, text = await get_text(site.http, site.base + "/")
        assert "Sign-up is closed" in text and 'action="/subscribe"' not in text
        token = csrf_of((await get_text(site.http, site.base + "/manage"))[1])
        async with site.http.post(
            site.base + "/subscribe",
            data={"csrf": token, **SIGNUP},
            headers={"Origin": site.base},
        ) as response:
            assert response.status == 400 and "closed" in await response.text()
        user = await confirmed(site)
        status, _ = await get_text(site.http, site.base + site.manage_path(user))
        assert status == 200  # manage pages still work


async def test_signup_domains(tmp_path: Path, store: Store) -> None:
    web = {"signup": "domains", "signup_domains": "uni.example.edu"}
    async for site in open_site(tmp_path, store, web=web):
        _, text = await get_text(site.http, site.base + "/")
        assert "addresses at uni.example.edu" in text
        outside = await _post_page(site, "/", "/subscribe", SIGNUP)
        assert "for addresses at uni.example.edu only" in outside
        inside = {**SIGNUP, "email": "ada@cs.uni.example.edu"}
        assert (await site.post("/", "/subscribe", inside)).status == 200
        assert await site.store.find_user(email="ada@cs.uni.example.edu") is not None


# --- the rules ------------------------------------------------------------------------------


async def test_posts_without_csrf_or_from_another_origin_are_refused(site: Site) -> None:
    user = await confirmed(site)
    manage = site.manage_path(user)
    before = await site.snapshot()
    cases = [("/subscribe", SIGNUP), (f"{manage}/pause-all", {}), (f"{manage}/add", SIGNUP)]
    for action, data in cases:
        async with site.http.post(site.base + action, data=data) as response:
            assert response.status == 403
            assert "security token" in await response.text()
        page = manage if action.startswith("/manage") else "/"
        forged = await post_form(
            site.http, site.base, page, action, data, origin="https://evil.example"
        )
        assert forged.status == 403
    # A token from the front page does not fit a manage page's forms.
    front_token = csrf_of((await get_text(site.http, site.base + "/"))[1])
    async with site.http.post(
        site.base + f"{manage}/pause-all", data={"csrf": front_token}, headers={"Origin": site.base}
    ) as response:
        assert response.status == 403 and "another page" in await response.text()
    assert await site.snapshot() == before


async def test_get_never_changes_anything(site: Site) -> None:
    user = await confirmed(site)
    await site.post("/", "/subscribe", {**SIGNUP, "email": "new@example.org"})
    manage = site.manage_path(user)
    sub = (await site.store.list_subscriptions(user.owner))[0]
    links = site.service.links
    new = await site.store.find_user(email="new@example.org")
    assert new is not None and new.email
    paths = [
        "/",
        "/manage",
        "/preview.json?query=diffusion",
        manage,
        f"{manage}/export.json",
        f"{manage}/export.bib",
        *(
            f"{manage}/{action}"
            for action in ("pause-all", "unsubscribe-all", "delete", "new-link")
        ),
        path_of(links.feed_url(user)),
        path_of(links.feed_url(user, sub.id)),
        path_of(links.confirm_url(new.id, new.email, NOW)),
        path_of(links.message_links(user.email or "").unsubscribe_all or ""),
        "/subscribe",
        "/preview",
    ]
    before = await site.snapshot()
    for path in paths:
        async with site.http.get(site.base + path) as response:
            assert response.status in (200, 404, 405), path
    assert await site.snapshot() == before
    refreshed = await site.store.get_user(user.id)
    assert refreshed == user


async def test_rate_limits_answer_429_with_retry_after(tmp_path: Path, store: Store) -> None:
    rates = WebRates(
        subscribe_ip=Rate(3, 600),
        subscribe_address=Rate(2, 3600),
        link_ip=Rate(2, 600),
        link_address=Rate(1, 3600),
    )
    async for site in open_site(tmp_path, store, rates=rates):
        for _ in range(2):
            assert (await site.post("/", "/subscribe", SIGNUP)).status == 200
        same_address = await site.post("/", "/subscribe", SIGNUP)
        assert same_address.status == 429 and int(same_address.headers["Retry-After"]) > 0
        other = await site.post("/", "/subscribe", {**SIGNUP, "email": "bob@example.org"})
        assert other.status == 429  # the IP's third... fourth request
        page = await _post_page(site, "/manage", "/manage", {"email": "ada@example.org"})
        assert "Check your inbox" in page
        again = await site.post("/manage", "/manage", {"email": "ada@example.org"})
        assert again.status == 429 and "Retry-After" in again.headers
        text = await _post_page(site, "/manage", "/manage", {"email": "x@example.org"})
        assert "Too many requests" in text and "try again in about" in text


async def test_forged_and_foreign_tokens_open_nothing(site: Site) -> None:
    user = await confirmed(site)
    other = await confirmed(site, "bob@example.org")
    bob_sub = (await site.store.list_subscriptions(other.owner))[0]
    forged = Signer(b"another-key-entirely-0123456789abcdef")
    bad = [
        "nonsense",
        manage_token(forged, user, NOW),
        manage_token(site.service.signer, user, NOW)[:-3] + "AAA",
        site.service.signer.sign("confirm", {"user": user.id, "gen": 0}),  # wrong purpose
    ]
    for token in bad:
        status, text = await get_text(site.http, f"{site.base}/manage/{token}")
        assert status == 403 and "not valid" in text and "Mail me a new link" in text
        status, _ = await get_text(site.http, f"{site.base}/feed/{token}.atom")
        assert status == 403
    # Ada's page cannot touch Bob's subscription: same answer as for a missing one.
    response = await site.post(
        site.manage_path(user), f"{site.manage_path(user)}/delete", {"sub": str(bob_sub.id)}
    )
    assert response.status == 400
    assert await site.store.get_subscription(bob_sub.id) == bob_sub


async def test_new_link_revokes_the_old_ones_and_expired_links_offer_a_new_one(
    site: Site,
) -> None:
    user = await confirmed(site)
    old = site.manage_path(user)
    response = await site.post(old, f"{old}/new-link")
    assert response.status == 200
    status, text = await get_text(site.http, site.base + old)
    assert status == 410 and "replaced by a newer one" in text and "Mail me a new link" in text
    feed_status, _ = await get_text(
        site.http, site.base + path_of(site.service.links.feed_url(user))
    )
    assert feed_status == 410
    fresh = await site.store.get_user(user.id)
    assert fresh is not None and fresh.manage_generation == user.manage_generation + 1
    mails = [
        r
        for r in await site.store.list_deliveries(owner=user.owner)
        if r.payload.get("purpose") == MANAGE
    ]
    assert len(mails) == 1
    new = site.manage_path(fresh)
    assert (await get_text(site.http, site.base + new))[0] == 200
    site.clock.advance(timedelta(days=181))
    status, text = await get_text(site.http, site.base + new)
    assert status == 410 and "expired" in text and 'action="/manage"' in text


# --- the manage page --------------------------------------------------------------------------


async def test_manage_page_lists_hit_rates_and_every_operation_works(site: Site) -> None:
    user = await confirmed(site)
    page = site.manage_path(user)
    status, text = await get_text(site.http, site.base + page)
    assert status == 200 and "ada@example.org" in text
    assert "2 of 3 papers in the last 7 days" in text and "digest" in text
    sub = (await site.store.list_subscriptions(user.owner))[0]

    preview = await _post_page(
        site, page, f"{page}/preview", {"query": "graph", "sub": str(sub.id)}
    )
    assert "How paperbell understood it" in preview and "graph neural" in preview
    assert (
        await site.post(page, f"{page}/edit", {"sub": str(sub.id), "query": "graph"})
    ).status == 303
    edited = await site.store.get_subscription(sub.id)
    assert edited is not None and edited.normalized == "graph" and edited.id == sub.id
    assert site.service.index.get(sub.id) == edited

    add = await site.post(page, f"{page}/add", {"query": '"video generation"', "deliver": "both"})
    assert add.status == 303 and "done=added" in add.headers["Location"]
    subs = await site.store.list_subscriptions(user.owner)
    assert len(subs) == 2 and subs[1].deliver == {
        DeliveryMode.EMAIL_DIGEST,
        DeliveryMode.EMAIL_INSTANT,
    }

    assert (await site.post(page, f"{page}/pause", {"sub": str(sub.id)})).status == 303
    paused = await site.store.get_subscription(sub.id)
    assert paused is not None and paused.paused and site.service.index.get(sub.id) is None
    _, text = await get_text(site.http, site.base + page)
    assert "paused" in text and "Resume" in text
    assert (await site.post(page, f"{page}/resume", {"sub": str(sub.id)})).status == 303
    assert site.service.index.get(sub.id) is not None

    settings = {"timezone": "Asia/Tokyo", "hour": "6", "frequency": "weekly", "weekday": "4"}
    assert (await site.post(page, f"{page}/settings", settings)).status == 303
    changed = await site.store.get_user(user.id)
    assert changed is not None
    assert (changed.timezone, changed.digest_hour, changed.digest_weekday) == ("Asia/Tokyo", 6, 4)
    assert changed.digest_frequency is DigestFrequency.WEEKLY
    bad = await _post_page(site, page, f"{page}/settings", {**settings, "frequency": "hourly"})
    assert "frequency must be one of daily, weekdays, weekly, off" in bad

    assert (await site.post(page, f"{page}/delete", {"sub": str(subs[1].id)})).status == 303
    assert await site.store.get_subscription(subs[1].id) is None

    assert (await site.post(page, f"{page}/pause-all")).status == 303
    assert (await site.store.get_user(user.id)).paused  # type: ignore[union-attr]
    assert (await site.post(page, f"{page}/resume-all")).status == 303
    assert not (await site.store.get_user(user.id)).paused  # type: ignore[union-attr]

    assert (await site.post(page, f"{page}/unsubscribe-all")).status == 303
    gone = await site.store.get_user(user.id)
    assert gone is not None and gone.email_suppressed
    assert await site.store.list_subscriptions(user.owner) == []
    status, text = await get_text(site.http, site.base + page)
    assert status == 200 and "unsubscribed from everything" not in text  # notice only after
    assert "No mail is sent to it" in text


async def test_a_forged_subscription_number_is_one_clear_line(site: Site) -> None:
    # Numbers no store could hold (or none at all) reach no store: the page says what to
    # do, and no error is logged for a form that was not ours.
    user = await confirmed(site)
    page = site.manage_path(user)
    for number in ["99999999999999999999", "-1", "0", "1e3", ""]:
        for action in ("pause", "delete", "edit"):
            async with site.http.get(site.base + page) as response:
                token = csrf_of(await response.text())
            data = {"csrf": token, "sub": number, "query": "graph"}
            async with site.http.post(
                site.base + f"{page}/{action}", data=data, headers={"Origin": site.base}
            ) as response:
                text = await response.text()
                assert response.status == 400, (number, action, response.status)
            assert "The form lost its number; reload" in text and "Traceback" not in text
    assert [s.paused for s in await site.store.list_subscriptions(user.owner)] == [False]


async def test_user_strings_are_escaped(site: Site) -> None:
    user = await confirmed(site)
    page = site.manage_path(user)
    nasty = '<script>alert(1)</script> "x"'
    await site.post(page, f"{page}/add", {"query": nasty, "deliver": "digest"})
    _, text = await get_text(site.http, site.base + page)
    assert "<script>alert(1)" not in text and "&lt;script&gt;" in text
    front = await _post_page(site, "/", "/preview", {**SIGNUP, "query": nasty})
    assert "<script>alert(1)" not in front
    trap = replace(
        paper("2611.00666", title="Diffusion <b>trap</b>"), links=Links(abs="javascript:alert(1)")
    )
    await add_papers_of(site.store, [trap], now=NOW)
    shown = await _post_page(site, "/", "/preview", {**SIGNUP, "query": "trap"})
    assert "Diffusion &lt;b&gt;trap&lt;/b&gt;" in shown and "javascript:" not in shown


async def sent_matches(site: Site, user: User) -> list[Any]:
    """Match the stored papers and send the instant alerts, as the daemon does."""
    [sub] = await site.store.list_subscriptions(user.owner)
    await site.store.set_subscription_delivery(sub.id, user.owner, INSTANT, NOW)
    await site.service.index.sync(site.store)
    summary = await match_cycle(site.service.index, site.store, NOW, plan_matches)
    assert summary.matched == 2
    email = RecordingNotifier(Channel.EMAIL)
    links = site.service.links
    await Dispatcher(
        site.store, {email.channel: email}, links, site.clock, random.Random(1)
    ).run_once()
    return email.sent


async def test_recent_papers_feeds_and_exports(site: Site) -> None:
    user = await confirmed(site)
    [alert] = await sent_matches(site, user)
    page = site.manage_path(user)
    # Every mail carries the manage link, and it opens this person's page.
    assert isinstance(alert, AlertMessage) and alert.links.manage
    status, text = await get_text(site.http, site.base + path_of(alert.links.manage))
    assert status == 200 and "ada@example.org" in text
    _, text = await get_text(site.http, site.base + page)
    assert (
        "Papers you were sent recently" in text and "Diffusion models for video generation" in text
    )

    status, body = await get_text(site.http, site.base + f"{page}/export.json")
    data = json.loads(body)
    assert status == 200 and data["email"] == "ada@example.org"
    assert data["subscriptions"][0]["normalized"] == "diffusion"
    assert {p["key"] for p in data["papers"]} == {"2611.00001", "2611.00002"}
    status, bib = await get_text(site.http, site.base + f"{page}/export.bib")
    assert status == 200 and bib.count("@misc{") == 2 and "eprint = {2611.00001}" in bib

    url = path_of(site.service.links.feed_url(user))
    async with site.http.get(site.base + url) as response:
        assert response.headers["Content-Type"].startswith("application/atom+xml")
        parsed = feedparser.parse(await response.read())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and len(parsed.entries) == 2
    entry = parsed.entries[0]
    assert entry.link.startswith("https://arxiv.org/abs/") and entry.id and entry.updated
    assert [t.term for t in entry.tags] and "Matched words: Diffusion" in entry.summary

    sub = (await site.store.list_subscriptions(user.owner))[0]
    second = await site.service.subscribe(
        user.owner, "graph", frozenset({DeliveryMode.EMAIL_DIGEST})
    )
    only = path_of(site.service.links.feed_url(user, second.subscription.id))
    parsed_one = feedparser.parse((await get_text(site.http, site.base + only))[1])
    assert not parsed_one.bozo and parsed_one.entries == []
    all_sub = path_of(site.service.links.feed_url(user, sub.id))
    assert len(feedparser.parse((await get_text(site.http, site.base + all_sub))[1]).entries) == 2
    await site.service.unsubscribe(user.owner, second.subscription.id)
    assert (await get_text(site.http, site.base + only))[0] == 410


async def test_forwarded_for_counts_each_visitor_only_when_trusted(
    tmp_path: Path, store: Store
) -> None:
    rates = WebRates(subscribe_ip=Rate(1, 600))
    for trusted in (True, False):
        async for site in open_site(
            tmp_path, store, rates=rates, web={"trust_forwarded_for": trusted}
        ):
            statuses = []
            for number in range(2):
                token = csrf_of((await get_text(site.http, site.base + "/"))[1])
                async with site.http.post(
                    site.base + "/subscribe",
                    data={"csrf": token, **SIGNUP, "email": f"p{number}@example.org"},
                    headers={"Origin": site.base, "X-Forwarded-For": f"spoof, 192.0.2.{number}"},
                ) as response:
                    statuses.append(response.status)
            assert statuses == ([200, 200] if trusted else [200, 429])


async def test_live_preview_is_rate_limited_too(tmp_path: Path, store: Store) -> None:
    async for site in open_site(tmp_path, store, rates=WebRates(preview_ip=Rate(2, 60))):
        statuses = []
        for _ in range(3):
            async with site.http.get(site.base + "/preview.json?query=llm") as response:
                statuses.append(response.status)
                retry = response.headers.get("Retry-After")
        assert statuses == [200, 200, 429] and retry is not None and int(retry) > 0


async def test_frequency_set_on_the_page_is_what_the_digest_planner_does(site: Site) -> None:
    user = await confirmed(site)  # a digest subscription to "diffusion"
    await match_cycle(site.service.index, site.store, NOW, plan_matches)
    page = site.manage_path(user)
    weekly = {"timezone": "UTC", "hour": "8", "frequency": "weekly", "weekday": "0"}
    assert (await site.post(page, f"{page}/settings", weekly)).status == 303
    assert NOW.weekday() == 5  # a Saturday: Sunday has no digest, Monday has
    site.clock.advance(timedelta(days=1))
    assert await site.service.digests.tick(site.clock()) == 0
    site.clock.advance(timedelta(days=1))
    [monday] = await tick_made(site.service.digests, site.store, site.clock())
    assert monday.digest_date is not None and monday.digest_date.weekday() == 0
    fresh = paper("2611.00009", title="Diffusion once more")
    await add_papers_of(site.store, [fresh], now=site.clock())
    await match_cycle(site.service.index, site.store, site.clock(), plan_matches)
    assert await site.store.digest_waiting() == {user.owner: 1}
    off = {**weekly, "frequency": "off"}
    assert (
        await site.post(site.manage_path(user), f"{site.manage_path(user)}/settings", off)
    ).status == 303
    site.clock.advance(timedelta(days=7))
    assert await site.service.digests.tick(site.clock()) == 0


async def test_pages_have_unique_ids_and_every_field_labelled(site: Site) -> None:
    user = await confirmed(site)
    page = site.manage_path(user)
    pages = [
        (await get_text(site.http, site.base + "/"))[1],
        await _post_page(site, "/", "/subscribe", {**SIGNUP, "query": '"open'}),
        await _post_page(site, "/", "/preview", SIGNUP),
        (await get_text(site.http, site.base + page))[1],
        await _post_page(site, page, f"{page}/preview", {"query": "graph"}),
        (await get_text(site.http, site.base + "/manage"))[1],
    ]
    for text in pages:
        check_structure(text)
