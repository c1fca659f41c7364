"""Render model and user Markdown to HTML that is safe to put in a page.

Two locks on the door: markdown-it runs with raw HTML disabled (so ``<script>`` in a message is text), and nh3
then keeps only an allow-list of tags, attributes and URL schemes (so a ``javascript:`` link or an ``onerror``
attribute cannot survive even if the renderer had a bug). Images are dropped: a message must not make the
browser fetch anything from elsewhere.

Fenced code with a language Pygments knows is highlighted here, on the server, as ``<span class="…">`` with
Pygments' own short class names (``k``, ``s2``, ``nf``…; colours in static/css/app.css, light and dark): the
allow-list admits exactly those classes on ``span`` and nothing else, and no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
    "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}, "pre": {"data-lang"},
}  # fmt: skip
URL_SCHEMES = {"http", "https", "mailto"}
# Every class Pygments' HTML formatter emits for a token (its short names); "" is plain text, never a class.
PYGMENTS_CLASSES = frozenset(name for name in STANDARD_TYPES.values() if name)
ALLOWED_CLASSES = {"span": set(PYGMENTS_CLASSES), "pre": {"highlight"}}
# Longer code is shown plain: highlighting is cheap but not free, and a page render must stay quick.
HIGHLIGHT_MAX_CHARS = 50_000
_FORMATTER = HtmlFormatter(nowrap=True)  # spans only: the <pre> is ours; classes, never inline styles


@cache
def _parser() -> MarkdownIt:
    # "breaks": a single newline in chat text is a line break, as people expect in a chat.
    parser = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "highlight": _highlight_code})
    parser.enable(["table", "strikethrough"])
    parser.add_render_rule("image", _image_as_alt_text)
    return parser


@lru_cache(maxsize=256)  # names come from messages: bounded
def _lexer(name: str) -> Lexer | None:
    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return None


def _highlight_code(code: str, lang: str, attrs: str) -> str:
    """A fence's code highlighted by Pygments as a whole ``<pre>``; "" (markdown-it's plain block) when the
    language is missing or unknown (no guessing: a wrong guess colours prose as code)."""
    lexer = _lexer(lang.strip().lower()[:40]) if lang.strip() else None
    if lexer is None or len(code) > HIGHLIGHT_MAX_CHARS:
        return ""
    # The label is the lexer's own name for the language, never the text of the info string.
    label = escapeHtml(lexer.aliases[0] if lexer.aliases else lang)
    return f'<pre class="highlight" data-lang="{label}"><code>{highlight(code, lexer, _FORMATTER)}</code></pre>'


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
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties={"text-align"},
    )
