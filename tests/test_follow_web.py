"""📌 follow links in mail: signed, GET shows a confirm page and changes nothing, POST
follows; a paper the reader was not sent, a forged link or a missing CSRF token: nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import aiohttp
import pytest

from bot.accounts.addresses import LinkBuilder
from bot.accounts.manage import manage_token
from bot.accounts.tokens import Signer
from bot.delivery.planning import record_matches
from bot.service import Paperbell
from bot.store.protocols import Store
from tests.support_outbox import INSTANT, record, verified_user
from tests.support_relevance import by_title, corpus_service, web_of
from tests.support_web import check_structure, get_text, path_of, post_form

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DIFFUSION = by_title("diffusion")


@pytest.fixture
async def service(store: Store, tmp_path: Path) -> Paperbell:
    return await corpus_service(store, tmp_path, NOW)


@pytest.fixture
async def web(service: Paperbell) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with web_of(service) as client:
        yield client


async def test_follow_link_confirms_then_follows(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    ada = await verified_user(service.store, "ada@example.org")
    sub = await service.store.add_subscription(ada.owner, "x", "x", INSTANT, NOW, limit=5)
    await record_matches(service.store, [record(ada.owner, DIFFUSION[0], sub.id, at=NOW)], NOW)
    links = LinkBuilder(service.signer, "https://bell.example.org").feedback_links(
        ada.id, DIFFUSION[0], sub.id
    )
    assert links.follow is not None
    follow = path_of(links.follow)
    assert follow.startswith("/follow/")
    for _ in range(2):  # a mail scanner opening the link follows nothing
        async with http.get(base + follow) as response:
            assert response.status == 200
            text = await response.text()
            assert f'method="post" action="{follow}"' in text and "📌 Follow it" in text
    assert await service.store.list_follows(ada.owner) == []
    async with http.post(base + follow, headers={"Origin": base}) as response:
        assert response.status == 403  # no CSRF token
    response = await post_form(http, base, follow, follow)
    assert response.status == 200
    assert "You follow “" in await response.text()
    [followed] = await service.store.list_follows(ada.owner)
    assert (followed.paper_key, str(followed.channel)) == (DIFFUSION[0], "email")
    manage = f"/manage/{manage_token(service.signer, ada, NOW)}"
    status, page = await get_text(http, base + manage)
    assert status == 200
    check_structure(page)
    paper = await service.store.get_paper(DIFFUSION[0])
    assert paper is not None
    section = page.split('id="follow-h"', 1)[1].split("</section>", 1)[0]
    assert escape(paper.title) in section and "followed since" in section


async def test_follow_link_for_a_paper_not_received_or_forged_follows_nothing(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    ada = await verified_user(service.store, "ada@example.org")
    ours = LinkBuilder(service.signer, "https://x").feedback_links(ada.id, DIFFUSION[1], None)
    assert ours.follow is not None
    path = path_of(ours.follow)
    response = await post_form(http, base, path, path)
    assert response.status == 400
    assert "you did not receive paper" in await response.text()
    forged = LinkBuilder(Signer(b"not our key"), "https://x").feedback_links(
        ada.id, DIFFUSION[1], None
    )
    assert forged.follow is not None
    for method in (http.get, http.post):
        async with method(base + path_of(forged.follow)) as response:
            assert response.status == 400
            assert "not valid" in await response.text()
    assert await service.store.list_follows(ada.owner) == []
