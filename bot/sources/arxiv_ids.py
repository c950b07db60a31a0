"""arXiv identifiers: recognise them, and reduce them to a canonical key plus a version.

New style ``YYMM.NNNN`` (0704–1412) or ``YYMM.NNNNN`` (1501 on); old style
``archive[.SC]/YYMMNNN`` (``hep-th/9901001``, ``math.GT/0309136``); either with ``vN``.
The canonical key drops the version and an old-style subject class (``math.GT/0309136`` is
``math/0309136`` on arXiv itself), so one paper has one key whichever source names it.

Two entry points keep free text from being mistaken for ids: ``parse_arxiv_id`` accepts a
string that IS an identifier (bare, ``arXiv:``/``oai:arXiv.org:`` prefixed, or an arXiv/HF
URL), ``find_arxiv_id_in_url`` accepts only arXiv and Hugging Face paper URLs.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit


class ArxivId(NamedTuple):
    id: str  # canonical, without version
    version: int | None


_NEW = r"(?P<yymm>\d{4})\.(?P<num>\d{4,5})"
_OLD = r"(?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.[A-Z]{2})?/(?P<old>\d{7})"
_VERSION = r"(?:v(?P<version>[1-9]\d{0,3}))?"
_ID_RE = re.compile(rf"(?:{_NEW}|{_OLD}){_VERSION}")
_PREFIX_RE = re.compile(r"^(?:oai:arxiv\.org:|arxiv:)\s*", re.IGNORECASE)

_ARXIV_HOSTS = frozenset({"arxiv.org", "www.arxiv.org", "export.arxiv.org"})
_HF_HOSTS = frozenset({"huggingface.co", "www.huggingface.co"})
_ARXIV_PATH_RE = re.compile(r"^/(?:abs|pdf|html)/(?P<rest>.+?)(?:\.pdf)?/?$")
_HF_PATH_RE = re.compile(r"^/(?:api/)?papers/(?P<rest>[^/]+?)/?$")


def parse_arxiv_id(text: str) -> ArxivId | None:
    """The id in ``text`` if the whole of it is an identifier, a prefixed one, or a URL."""
    text = text.strip()
    if "://" in text:
        return find_arxiv_id_in_url(text)
    return _match_id(_PREFIX_RE.sub("", text, count=1))


def find_arxiv_id_in_url(url: str) -> ArxivId | None:
    """The id in an arxiv.org (abs, pdf, html) or huggingface.co/papers URL, else None."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url  # "arxiv.org/abs/..." written without a scheme
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    if host in _ARXIV_HOSTS:
        match = _ARXIV_PATH_RE.match(unquote(parts.path))
    elif host in _HF_HOSTS:
        match = _HF_PATH_RE.match(unquote(parts.path))
    else:
        return None
    return _match_id(match.group("rest")) if match else None


def _match_id(text: str) -> ArxivId | None:
    match = _ID_RE.fullmatch(text)
    if match is None:
        return None
    version = int(match.group("version")) if match.group("version") else None
    if match.group("yymm"):
        if not _valid_new(match.group("yymm"), match.group("num")):
            return None
        return ArxivId(f"{match.group('yymm')}.{match.group('num')}", version)
    if not _valid_month(match.group("old")[2:4]):
        return None
    return ArxivId(f"{match.group('archive')}/{match.group('old')}", version)


def _valid_new(yymm: str, number: str) -> bool:
    """New-style ids began in 0704 and grew to five digits in 1501."""
    if not _valid_month(yymm[2:]) or yymm < "0704":
        return False
    return len(number) == (5 if yymm >= "1501" else 4)


def _valid_month(mm: str) -> bool:
    return "01" <= mm <= "12"
