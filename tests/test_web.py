"""The web endpoint over real HTTP: RFC 8058 one-click unsubscribe, confirmation, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.accounts.addresses import LinkBuilder
from bot.daemon.resources import build_service
from bot.models import DeliveryMode
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import Store
from handlers.web import build_web_app, serve_web
from tests.support_web import get_text, path_of, post_form

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
async def service(store: Store, tmp_path: Path) -> Paperbell:
    return await build_service(load_settings(data_dir=tmp_path), store, clock=lambda: NOW)


@pytest.fixture
async def web(service: Paperbell) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with (
        serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        aiohttp.ClientSession() as session,
    ):
        yield f"http://{host}:{port}", session


def links(service: Paperbell) -> LinkBuilder:
    return LinkBuilder(service.signer, "https://bell.example.org")


async def test_confirm_get_shows_a_form_post_confirms(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user = await service.user_for_email("ada@example.org")
    assert not user.email_verified and user.email
    url = path_of(links(service).confirm_url(user.id, user.email, NOW))
    for _ in range(2):  # a mail scanner opening the link confirms nothing
        async with http.get(base + url) as response:
            assert response.status == 200
            text = await response.text()
            assert "ada@example.org" in text and f'method="post" action="{url}"' in text
    untouched = await service.store.get_user(user.id)
    assert untouched is not None and not untouched.email_verified
    async with http.post(base + url, allow_redirects=False) as response:
        assert response.status == 403  # no CSRF token: a form of ours always has one
    response = await post_form(http, base, url, url)
    assert response.status == 303 and response.headers["Location"].startswith("/manage/")
    status, text = await get_text(http, base + response.headers["Location"])
    assert status == 200 and "Your address is confirmed" in text
    verified = await service.store.get_user(user.id)
    assert verified is not None and verified.email_verified


async def test_confirm_after_unsubscribing_says_mail_stays_stopped(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user = await service.user_for_email("ada@example.org")
    assert user.email
    confirm = path_of(links(service).confirm_url(user.id, user.email, NOW))
    assert (await post_form(http, base, confirm, confirm)).status == 303
    stop = path_of(links(service).message_links("ada@example.org").unsubscribe_all or "")
    async with http.post(base + stop, data=ONE_CLICK) as response:
        assert response.status == 200
    response = await post_form(http, base, confirm, confirm)
    _status, text = await get_text(http, base + response.headers["Location"])
    assert "Your address is confirmed:" not in text
    assert "confirming does not resume mail that was stopped" in text
    assert "you unsubscribed" in text
    still = await service.store.get_user(user.id)
    assert still is not None and still.email_suppressed


async def test_get_never_unsubscribes_post_does_once_and_again(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user = await service.user_for_email("ada@example.org")
    await service.subscribe(user.owner, "llm", frozenset({DeliveryMode.EMAIL_DIGEST}))
    url = path_of(links(service).message_links("ada@example.org").unsubscribe_all or "")
    async with http.get(base + url) as response:
        assert response.status == 200
        assert 'method="post"' in await response.text()
    still = await service.store.get_user(user.id)
    assert still is not None and not still.email_suppressed
    for _ in range(2):  # idempotent
        async with http.post(base + url, data=ONE_CLICK, allow_redirects=False) as response:
            assert response.status == 200
            assert "Set-Cookie" not in response.headers
            assert "no more email" in await response.text()
    gone = await service.store.get_user(user.id)
    assert gone is not None and gone.email_suppressed


async def test_per_subscription_stop_leaves_the_others(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user = await service.user_for_email("ada@example.org")
    digest = frozenset({DeliveryMode.EMAIL_DIGEST})
    first = (await service.subscribe(user.owner, "llm", digest)).subscription
    second = (await service.subscribe(user.owner, "gan", digest)).subscription
    url = path_of(links(service).stop_subscription_url("ada@example.org", first.id))
    async with http.post(base + url, data=ONE_CLICK) as response:
        assert response.status == 200
    remaining = [v.subscription.id for v in await service.subscriptions(user.owner)]
    assert remaining == [second.id]


@pytest.mark.parametrize("token", ["nonsense", "a.b", "x" * 300])
async def test_bad_tokens_get_a_clear_page(
    web: tuple[str, aiohttp.ClientSession], token: str
) -> None:
    base, http = web
    async with http.post(f"{base}/unsubscribe/{token}", data=ONE_CLICK) as response:
        assert response.status == 400
        assert "not valid" in await response.text()
    async with http.get(f"{base}/confirm/{token}") as response:
        assert response.status == 400
    async with http.post(f"{base}/confirm/{token}") as response:
        assert response.status == 400


async def test_health(web: tuple[str, aiohttp.ClientSession]) -> None:
    base, http = web
    async with http.get(f"{base}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True


async def test_unsubscribe_button_from_a_browser_needs_its_csrf_token(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    await service.user_for_email("ada@example.org")
    url = path_of(links(service).message_links("ada@example.org").unsubscribe_all or "")
    async with http.post(base + url, data=ONE_CLICK, headers={"Origin": base}) as response:
        assert response.status == 403  # a browser without the page's token
    async with http.post(
        base + url, data=ONE_CLICK, headers={"Origin": "https://evil.example"}
    ) as response:
        assert response.status == 403
    user = await service.store.find_user(email="ada@example.org")
    assert user is not None and not user.email_suppressed
    response = await post_form(http, base, url, url, ONE_CLICK)
    assert response.status == 200
    user = await service.store.find_user(email="ada@example.org")
    assert user is not None and user.email_suppressed
