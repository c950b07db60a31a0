"""The two Jinja environments (HTML autoescaped with the CSS inlined, plain text not
escaped), built once per process, and the filters that render a paper's shared parts
once however many messages show them."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from handlers.email import format as fmt
from handlers.email.inline import CSS_NAME, InliningLoader, mark_tag
from handlers.email.views import PaperView


@functools.cache
def environments() -> tuple[Environment, Environment]:
    """Built once per process, on first use, and shared by every renderer.

    The HTML templates load with the CSS already inlined (``handlers.email.inline``), so a
    message is rendered by Jinja alone.
    """
    loader = PackageLoader("handlers.email", "templates")
    css, _, _ = loader.get_source(Environment(), CSS_NAME)
    common: dict[str, Any] = {
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "auto_reload": False,  # templates ship with the package; never re-stat them
    }
    html = Environment(loader=InliningLoader(loader, css), autoescape=True, **common)
    html.filters["highlight"] = functools.partial(fmt.highlight_html, mark=mark_tag(css))
    text = Environment(loader=loader, autoescape=False, keep_trailing_newline=True, **common)
    text.filters["highlight"] = fmt.highlight_text
    add_html_filters(html, "macros.html.j2")
    add_paper_block(text, "macros.txt.j2")
    text.filters["title_lines"] = title_lines
    return html, text


def title_lines(papers: Sequence[PaperView], first: int) -> str:
    """The text part's list by title, numbered from ``first``, each link on the next line.

    The plain-text twin of ``title_list``: looped over in the template, the 70 or so
    titles of an alert cost Jinja a call per piece of every line.
    """
    return "".join(
        f"{n}. {p.title}\n   {p.url}\n" if p.url else f"{n}. {p.title}\n"
        for n, p in enumerate(papers, first)
    )


def add_html_filters(env: Environment, macros: str) -> None:
    """The HTML environment's filters made of its macros: ``paper_block``, ``title_list``."""
    add_paper_block(env, macros)
    add_title_list(env, macros)


def add_paper_block(env: Environment, macros: str) -> None:
    """The ``paper_block`` filter: a paper's block, its shared head rendered once.

    The head (title, authors, abstract highlighted by the matched words, links) reads the
    same in every reader's message: it is cached per environment, so per template
    version, keyed by what it shows. Only the tail (the reader's queries, why, 👍 / 👎
    links) is rendered per message. A filter, not a function in the context: Jinja binds
    filters when it compiles a template and calls them directly, where a context
    function goes through ``Context.call`` on every paper.
    """
    module = env.get_template(macros).module
    # 1,024 heads, not 4,096: a head carries the reader's matched words, so even 4,096
    # caught only 17-20 % of lookups (about half that now), and held 16 MB more.
    head = functools.lru_cache(maxsize=1024)(module.paper_head)  # type: ignore[attr-defined]
    tail = module.paper_tail  # type: ignore[attr-defined]

    def paper_block(p: PaperView) -> str:
        return head(_shared(p)) + tail(p)  # type: ignore[no-any-return]

    env.filters["paper_block"] = paper_block


def add_title_list(env: Environment, macros: str) -> None:
    """The ``title_list`` filter: the papers listed by title, each item rendered once.

    An alert lists some 70 papers by title; looped over in the template, escaping each
    title and link was a tenth of the time of rendering it. An item reads the same in every
    message, so it is cached by title and link, and the list is joined once.
    """
    module = env.get_template(macros).module
    item = functools.lru_cache(maxsize=4096)(module.title_item)  # type: ignore[attr-defined]

    def title_list(papers: Sequence[PaperView]) -> Markup:
        return Markup("".join([item(p.title, p.url) for p in papers]))

    env.filters["title_list"] = title_list


def _shared(p: PaperView) -> PaperView:
    """What the head shows: the paper and the words that matched, nobody's own links."""
    return PaperView(p.title, p.url, p.authors, p.meta, p.abstract, p.pdf, p.code, p.words, ())
