"""CSS inlined into the HTML templates once, when they load, instead of into every message.

Mail clients drop ``<style>`` (Gmail keeps only what it must), so every element carries its
light-mode rules in a ``style`` attribute. Running css-inline over each rendered message cost
more than rendering it; the styles depend only on the template's markup, never on the data
(values are escaped text; the only markup they bring is ``<mark>``, styled by
``mark_tag``). So the loader inlines each template's source once: Jinja syntax is swapped for
opaque tokens the HTML parser keeps as text, the source is inlined, the tokens go back.
Media queries (dark mode, phones) cannot be inlined and stay in ``<style>`` (keep_at_rules).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import css_inline
from jinja2 import BaseLoader, Environment

CSS_NAME = "email.css"
_INCLUDE_CSS = '{% include "' + CSS_NAME + '" %}'
# Jinja tags, expressions and comments; private-use code points never occur in templates.
_JINJA_RE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
_TOKEN_RE = re.compile("\ue000(\\d+)\ue001")
_STYLE_RE = re.compile(r'style="([^"]*)"')


def inliner() -> css_inline.CSSInliner:
    """The settings the mail needs: media queries kept in <style>, nothing fetched."""
    return css_inline.CSSInliner(keep_at_rules=True, minify_css=True, load_remote_stylesheets=False)


def inline_template(source: str, css: str) -> str:
    """``source`` with ``css`` inlined onto its elements; the Jinja syntax unchanged.

    A whole document (the base template) gets its ``<style>`` rebuilt with the media
    queries; a fragment (a child template or macros) only gets style attributes.
    """
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\ue000{len(kept) - 1}\ue001"

    # Jinja drops a template's final newline when it renders; the HTML parser would move it
    # inside <body>, out of Jinja's reach, so drop it first.
    source = source.removesuffix("\n").replace(_INCLUDE_CSS, css)
    hidden = _JINJA_RE.sub(hide, source)
    if hidden.lstrip().lower().startswith("<!doctype"):
        inlined = inliner().inline(hidden)
    else:
        inlined = inliner().inline_fragment(hidden, css)
    return _TOKEN_RE.sub(lambda m: kept[int(m.group(1))], inlined)


def mark_tag(css: str) -> str:
    """The opening ``<mark>`` with its inlined style, for highlights made at render time."""
    found = _STYLE_RE.search(inliner().inline_fragment("<mark></mark>", css))
    return f'<mark style="{found.group(1)}">' if found else "<mark>"


class InliningLoader(BaseLoader):
    """Wraps a loader: ``*.html.j2`` come back with the CSS inlined, the rest as they are."""

    def __init__(self, inner: BaseLoader, css: str) -> None:
        self._inner = inner
        self._css = css

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self._inner.get_source(environment, template)
        if template.endswith(".html.j2"):
            source = inline_template(source, self._css)
        return source, filename, uptodate
