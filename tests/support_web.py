"""Helpers for the web tests: the served app, forms' hidden CSRF tokens, posting like a
browser of this site."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import aiohttp

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return html.unescape(found.group(1))


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def get_text(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def post_form(
    http: aiohttp.ClientSession,
    base: str,
    page: str,
    action: str,
    data: dict[str, str] | None = None,
    *,
    origin: str | None = None,
) -> aiohttp.ClientResponse:
    """GET ``page``, then POST ``data`` with its CSRF token and this site's Origin to
    ``action``, as the browser does; the response is read and returned (no redirects)."""
    async with http.get(base + page) as response:
        token = csrf_of(await response.text())
    headers = {"Origin": origin or base}
    async with http.post(
        base + action, data={"csrf": token, **(data or {})}, headers=headers, allow_redirects=False
    ) as response:
        await response.read()
        return response


_URL = re.compile(r"https?://[^\s<>\"]+")


def links_in(text: str, kind: str) -> list[str]:
    """Paths of the ``/kind/...`` links in a mail's text, in order."""
    return [path_of(url) for url in _URL.findall(text) if f"/{kind}/" in url]


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.label_for: list[str] = []
        self.problems: list[str] = []
        self.inputs_named: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"<{tag}> repeats an attribute: {names}")
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if tag == "label" and values.get("for"):
            self.label_for.append(str(values["for"]))
        if tag in ("input", "select") and values.get("type") not in ("hidden", "radio"):
            self.inputs_named.append((tag, values.get("id")))


def check_structure(page: str) -> None:
    """Unique ids, no repeated attribute, and every visible field labelled."""
    parser = _Structure()
    parser.feed(page)
    assert parser.problems == []
    assert len(parser.ids) == len(set(parser.ids)), "ids repeat"
    for target in parser.label_for:
        assert target in parser.ids, f"label for a missing field #{target}"
    for tag, field_id in parser.inputs_named:
        assert field_id in parser.label_for, f"<{tag} id={field_id}> has no label"
