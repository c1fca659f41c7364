"""Render model and user Markdown to HTML that is safe to put in a page.

Two locks on the door: markdown-it runs with raw HTML disabled (so ``<script>`` in a message is text), and nh3
then keeps only an allow-list of tags, attributes and URL schemes (so a ``javascript:`` link or an ``onerror``
attribute cannot survive even if the renderer had a bug). Images are dropped: a message must not make the
browser fetch anything from elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
URL_SCHEMES = {"http", "https", "mailto"}


@cache
def _parser() -> MarkdownIt:
    # "breaks": a single newline in chat text is a line break, as people expect in a chat.
    parser = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    parser.enable(["table", "strikethrough"])
    parser.add_render_rule("image", _image_as_alt_text)
    return parser


def _image_as_alt_text(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """Render an image as its (escaped) alt text: pages never load images named by a message."""
    return escapeHtml(self.renderInlineAsText(tokens[idx].children or [], options, env))


def markdown_render(text: str) -> str:
    """Return sanitised HTML for Markdown text (model or user written)."""
    if not text:
        return ""
    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties={"text-align"},
    )
