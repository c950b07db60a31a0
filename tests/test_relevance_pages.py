"""Learned relevance on the web pages, over real HTTP: the manage page shows what the ranking
learned and forgets it on request, sets a subscription's ``min_relevance``, counts
``like:`` hit rates; the front page's previews understand ``like:``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from bot.accounts.manage import manage_token
from bot.models import DeliveryMode, User
from bot.service import Paperbell
from bot.store.protocols import Rating, Store
from tests.support_outbox import verified_user
from tests.support_relevance import by_title, corpus_service, dated_corpus, web_of
from tests.support_web import check_structure, csrf_of, get_text, post_form

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DIFFUSION = by_title("diffusion")
TITLES = {p.key: p.title for p in dated_corpus(NOW)}
DIGEST = frozenset({DeliveryMode.EMAIL_DIGEST})


@pytest.fixture
async def service(store: Store, tmp_path: Path) -> Paperbell:
    return await corpus_service(store, tmp_path, NOW)


@pytest.fixture
async def web(service: Paperbell) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with web_of(service) as client:
        yield client


async def reader(service: Paperbell) -> tuple[User, str]:
    user = await verified_user(service.store, "ada@example.org", now=NOW)
    await service.subscribe(user.owner, "diffusion", DIGEST)
    return user, f"/manage/{manage_token(service.signer, user, NOW)}"


async def test_manage_page_lists_what_was_learned_and_forgets_it(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user, page = await reader(service)
    status, text = await get_text(http, base + page)
    assert status == 200 and "What your ranking learned" in text and "Nothing yet" in text
    assert "reset-learned" not in text  # nothing to forget: no button
    await service.rate(user.id, like=DIFFUSION[:2], dislike=DIFFUSION[2:3])
    status, text = await get_text(http, base + page)
    assert status == 200 and "👍 Liked (2)" in text and "👎 Disliked (1)" in text
    liked, disliked = text.split("👎 Disliked", 1)
    for key in DIFFUSION[:2]:
        assert TITLES[key] in liked and TITLES[key] not in disliked
    assert TITLES[DIFFUSION[2]] in disliked
    check_structure(text)

    done = await post_form(http, base, page, f"{page}/reset-learned")
    assert done.status == 303 and "done=forgotten" in done.headers["Location"]
    assert await service.store.list_feedback(user.id) == []
    status, text = await get_text(http, base + done.headers["Location"].split("#")[0])
    assert status == 200 and "Your 👍 / 👎 are forgotten" in text and "Nothing yet" in text


async def test_reset_needs_the_csrf_token_and_our_origin_and_get_changes_nothing(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user, page = await reader(service)
    await service.rate(user.id, like=DIFFUSION[:1])
    async with http.get(base + f"{page}/reset-learned") as response:
        assert response.status == 405  # only a POST acts
    async with http.post(base + f"{page}/reset-learned", headers={"Origin": base}) as response:
        assert response.status == 403 and "security token" in await response.text()
    refused = await post_form(http, base, page, f"{page}/reset-learned", origin="https://evil.test")
    assert refused.status == 403
    assert [f.rating for f in await service.store.list_feedback(user.id)] == [Rating.LIKE]


async def test_reset_is_one_persons_own(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    ada, page = await reader(service)
    bob = await verified_user(service.store, "bob@example.org", now=NOW)
    await service.rate(ada.id, like=DIFFUSION[:1])
    await service.rate(bob.id, like=DIFFUSION[1:2])
    assert (await post_form(http, base, page, f"{page}/reset-learned")).status == 303
    assert await service.store.list_feedback(ada.id) == []
    assert [f.paper_key for f in await service.store.list_feedback(bob.id)] == DIFFUSION[1:2]


async def test_min_relevance_is_set_shown_and_cleared_on_the_manage_page(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user, page = await reader(service)
    [sub] = await service.store.list_subscriptions(user.owner)
    form = {"sub": str(sub.id), "min_relevance": "60"}
    done = await post_form(http, base, page, f"{page}/min-relevance", form)
    assert done.status == 303 and "done=relevance" in done.headers["Location"]
    stored = await service.store.get_subscription(sub.id)
    assert stored is not None and stored.min_relevance == pytest.approx(0.6)
    status, text = await get_text(http, base + page)
    assert status == 200
    assert f'id="mr-{sub.id}" name="min_relevance"' in text and 'value="60"' in text
    check_structure(text)

    bad = await post_form(
        http, base, page, f"{page}/min-relevance", {**form, "min_relevance": "150"}
    )
    assert bad.status == 400
    stored = await service.store.get_subscription(sub.id)
    assert stored is not None and stored.min_relevance == pytest.approx(0.6)

    cleared = await post_form(
        http, base, page, f"{page}/min-relevance", {**form, "min_relevance": ""}
    )
    assert cleared.status == 303
    stored = await service.store.get_subscription(sub.id)
    assert stored is not None and stored.min_relevance is None


async def test_min_relevance_error_is_said_on_the_page(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user, page = await reader(service)
    [sub] = await service.store.list_subscriptions(user.owner)
    async with http.get(base + page) as response:
        token = csrf_of(await response.text())
    data = {"csrf": token, "sub": str(sub.id), "min_relevance": "lots"}
    headers = {"Origin": base}
    async with http.post(base + f"{page}/min-relevance", data=data, headers=headers) as response:
        assert response.status == 400
        assert "min_relevance must be a whole number from 0 to 100" in await response.text()


async def test_previews_show_the_hit_rate_of_like_queries(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    target = DIFFUSION[0]
    expected = await service.test_query(f"like:{target}", days=7)
    assert 0 < expected.count < expected.total  # like: narrows, and finds its own paper
    status, body = await get_text(http, f"{base}/preview.json?query={quote('like:' + target)}")
    data = json.loads(body)
    assert status == 200 and data["normalized"] == f"like:{target}"
    assert (data["count"], data["total"]) == (expected.count, expected.total)
    assert data["share"] == pytest.approx(expected.share)
    assert [t["key"] for t in data["top"]] == [h.paper.key for h in expected.top]

    form = {"email": "", "query": f"like:{target} -survey", "deliver": "digest"}
    response = await post_form(
        http, base, "/", "/preview", {**form, "timezone": "UTC", "hour": "8"}
    )
    text = await response.text()
    assert response.status == 200 and "How paperbell understood it" in text
    narrowed = await service.test_query(f"like:{target} -survey", days=7)
    assert f"{narrowed.count} of {narrowed.total} papers" in text


async def test_previews_name_an_unknown_like_paper(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    status, body = await get_text(http, f"{base}/preview.json?query=like:2401.99999")
    assert (
        status == 400
        and "like:2401.99999: no stored paper has that id" in json.loads(body)["error"]
    )


async def test_manage_page_counts_like_subscriptions(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user, page = await reader(service)
    await service.subscribe(user.owner, f"like:{DIFFUSION[0]}", DIGEST)
    expected = await service.test_query(f"like:{DIFFUSION[0]}", days=7)
    status, text = await get_text(http, base + page)
    assert status == 200
    assert f"{expected.count} of {expected.total} papers in the last 7 days" in text


async def test_json_export_carries_ratings_and_the_relevance_floor(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    user, page = await reader(service)
    [sub] = await service.store.list_subscriptions(user.owner)
    await service.set_min_relevance(user.owner, sub.id, 0.4)
    await service.rate(user.id, like=DIFFUSION[:1], dislike=DIFFUSION[1:2])
    status, body = await get_text(http, f"{base}{page}/export.json")
    data = json.loads(body)
    assert status == 200 and data["subscriptions"][0]["min_relevance"] == 0.4
    ratings = {r["key"]: r["rating"] for r in data["ratings"]}
    assert ratings == {DIFFUSION[0]: "like", DIFFUSION[1]: "dislike"}
