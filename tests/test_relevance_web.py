"""👍 / 👎 links in mail: signed, GET shows a confirm page, POST records, forgeries refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.accounts.addresses import LinkBuilder
from bot.accounts.tokens import Signer
from bot.delivery.digests import DigestPlanner
from bot.delivery.planning import record_matches
from bot.service import Paperbell
from bot.store.protocols import Rating, Store
from handlers.email.render import render_digest
from tests.support_outbox import DIGEST, LINKS, FrozenClock, record, tick_made, verified_user
from tests.support_relevance import by_title, corpus_service, web_of
from tests.support_web import path_of, post_form

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DIFFUSION = by_title("diffusion")


@pytest.fixture
async def service(store: Store, tmp_path: Path) -> Paperbell:
    return await corpus_service(store, tmp_path, NOW)


@pytest.fixture
async def web(service: Paperbell) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with web_of(service) as client:
        yield client


async def test_feedback_link_confirms_then_records(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    ada = await verified_user(service.store, "ada@example.org")
    builder = LinkBuilder(service.signer, "https://bell.example.org")
    links = builder.feedback_links(ada.id, DIFFUSION[0], 4)
    like = path_of(links.like)
    for _ in range(2):  # a mail scanner opening the link records nothing
        async with http.get(base + like) as response:
            assert response.status == 200
            text = await response.text()
            assert f'method="post" action="{like}"' in text and "👍" in text
    assert await service.store.list_feedback(ada.id) == []
    response = await post_form(http, base, like, like)
    assert response.status == 200
    assert "Recorded 👍" in await response.text()
    [rated] = await service.store.list_feedback(ada.id)
    assert (rated.paper_key, rated.rating, rated.sub_id) == (DIFFUSION[0], Rating.LIKE, 4)
    dislike = path_of(links.dislike)
    assert (await post_form(http, base, dislike, dislike)).status == 200
    [rated] = await service.store.list_feedback(ada.id)
    assert rated.rating is Rating.DISLIKE  # the latest rating wins


async def test_feedback_post_without_csrf_or_from_elsewhere_records_nothing(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    ada = await verified_user(service.store, "ada@example.org")
    like = path_of(
        LinkBuilder(service.signer, "https://x").feedback_links(ada.id, DIFFUSION[0], 4).like
    )
    async with http.post(base + like, headers={"Origin": base}) as response:
        assert response.status == 403
        assert "security token" in await response.text()
    response = await post_form(http, base, like, like, origin="https://evil.example")
    assert response.status == 403
    assert await service.store.list_feedback(ada.id) == []


async def test_forged_feedback_links_are_refused(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    ada = await verified_user(service.store, "ada@example.org")
    bob = await verified_user(service.store, "bob@example.org")
    ours = LinkBuilder(service.signer, "https://x").feedback_links(ada.id, DIFFUSION[0], None)
    forged = LinkBuilder(Signer(b"not our key"), "https://x").feedback_links(
        bob.id, DIFFUSION[1], None
    )
    body, _, mac = path_of(ours.like).rsplit("/", 1)[1].partition(".")
    swapped = path_of(forged.like).rsplit("/", 1)[1].split(".")[0] + "." + mac
    unsubscribe = path_of(
        LinkBuilder(service.signer, "https://x").stop_subscription_url("ada@example.org", 1)
    ).rsplit("/", 1)[1]  # another purpose's signature
    for token in (path_of(forged.like)[10:], swapped, unsubscribe, body, "garbage"):
        for method in (http.get, http.post):
            async with method(f"{base}/feedback/{token}") as response:
                assert response.status == 400, token
                assert "not valid" in await response.text()
    assert await service.store.list_feedback(ada.id) == []
    assert await service.store.list_feedback(bob.id) == []


async def test_digest_mail_carries_signed_feedback_links(service: Paperbell) -> None:
    store = service.store
    ada = await verified_user(store, "ada@example.org", timezone="UTC")
    sub = await store.add_subscription(ada.owner, "x", "x", DIGEST, NOW, limit=5)
    await record_matches(store, [record(ada.owner, DIFFUSION[2], sub.id, at=NOW)], NOW)
    planner = DigestPlanner(store, FrozenClock())
    [digest] = await tick_made(planner, store, datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    message = await planner.build(digest, ada, NOW, LINKS)
    assert message is not None
    [item] = [i for s in message.sections for i in s.items]
    assert item.feedback is not None
    request = LINKS.signer.verify("feedback", item.feedback.like.rsplit("/", 1)[1], NOW)
    assert request == {"user": ada.id, "paper": DIFFUSION[2], "r": "like", "sub": sub.id}
    mail = render_digest(message, service.settings)
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert item.feedback.like in text.get_content()
    assert item.feedback.dislike.replace("&", "&amp;") in html.get_content()
