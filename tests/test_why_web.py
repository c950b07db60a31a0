"""The manage page's "Why didn't I get a paper?" box, over real HTTP: a POST with the
page's CSRF token answers on the page; a bad id is the field's error; no token, no answer."""

from __future__ import annotations

import html

import aiohttp

from bot.service import Paperbell
from tests.support_relevance import corpus
from tests.support_web import check_structure, post_form
from tests.test_relevance_pages import reader, service, web

__all__ = ["service", "web"]  # the fixtures, shared with the other manage-page tests


def _without(word: str) -> str:
    return next(p.key for p in corpus() if word not in (p.title + " " + p.abstract).lower())


async def _answer(response: aiohttp.ClientResponse) -> str:
    return html.unescape(await response.text())


async def test_why_box_explains_a_missed_paper_on_the_page(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    _user, page = await reader(service)  # subscribed to "diffusion"
    key = _without("diffusion")
    done = await post_form(http, base, page, f"{page}/why", {"paper": f"arxiv.org/abs/{key}v2"})
    text = await _answer(done)
    assert done.status == 200
    assert "Why didn't I get a paper?" in text
    assert "verdict: seen, but no subscription matched" in text
    assert '`diffusion`: the paper\'s title or abstract has no word "diffusion"' in text
    check_structure(await done.text())


async def test_why_box_refuses_a_bad_id_in_the_field(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    _user, page = await reader(service)
    done = await post_form(http, base, page, f"{page}/why", {"paper": "yesterday's paper"})
    text = await _answer(done)
    assert done.status == 400
    assert 'id="paper-error"' in text and "is not a paper id" in text


async def test_why_box_needs_the_csrf_token(
    service: Paperbell, web: tuple[str, aiohttp.ClientSession]
) -> None:
    base, http = web
    _user, page = await reader(service)
    async with http.post(
        f"{base}{page}/why", data={"paper": "2406.11779"}, headers={"Origin": base}
    ) as response:
        assert response.status == 403
