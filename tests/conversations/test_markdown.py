"""Markdown rendering keeps formatting and drops anything that could run or load in the page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, PYGMENTS_CLASSES, markdown_render


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("**bold** and `code`", "<p><strong>bold</strong> and <code>code</code></p>"),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        ("```\nx < 1\n```", "<pre><code>x &lt; 1\n</code></pre>"),
        ("line one\nline two", "<p>line one<br>\nline two</p>"),
        ("~~gone~~", "<p><s>gone</s></p>"),
    ],
)
def test_markdown_render_formats(source: str, expected: str) -> None:
    """Common chat Markdown becomes the expected HTML."""
    assert markdown_render(source).strip() == expected


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("<script>alert(1)</script>", "<script"),
        ("<img src=x onerror=alert(1)>", "<img"),
        ('<a href="javascript:alert(1)">x</a>', "<a "),
        ("[x](javascript:alert(1))", "href"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "href"),
        ("![tracker](https://evil.example/p.png)", "evil.example"),
        ("<iframe src=https://evil.example></iframe>", "<iframe"),
        ('<div style="position:fixed">x</div>', "<div"),
    ],
)
def test_markdown_render_is_inert(source: str, forbidden: str) -> None:
    """Raw HTML, scripts, handlers, dangerous links and remote images never come out as markup."""
    assert forbidden not in markdown_render(source)


def test_markdown_render_links_are_safe_and_open_elsewhere() -> None:
    """Links keep http(s) targets, open in a new tab and carry noopener/noreferrer."""
    html = markdown_render("[docs](https://example.com/a)")
    assert 'href="https://example.com/a"' in html
    assert 'target="_blank"' in html
    assert "noopener" in html and "noreferrer" in html


def test_markdown_render_empty() -> None:
    """Empty text renders to nothing."""
    assert markdown_render("") == ""


# -- code blocks: highlighted by Pygments, and still only the allow-list ------------------------------------------


def test_fenced_code_with_a_known_language_is_highlighted_with_pygments_classes() -> None:
    html = markdown_render('```python\ndef f(x):\n    return "a<b"  # hi\n```')
    assert html.startswith('<pre class="highlight" data-lang="python"><code>')
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">f</span>' in html
    assert "&lt;b" in html and "style=" not in html


def test_an_unknown_language_or_hostile_info_string_is_plain_code() -> None:
    assert markdown_render('```nosuchlang"><script>\nx\n```').strip() == "<pre><code>x\n</code></pre>"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


_LANGS = st.sampled_from(["", "python", "js", "html", "bash", "sql", "nosuch", 'x" onclick="y', "<script>"])
_PIECES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '<span class="k" style="color:red">x</span>',
            "<pre class=x>",
            "[a](javascript:x)",
            "![i](http://e/x.png)",
            '<a href="x" onclick="y">',
            "`code`",
            "**b**",
            "| a |\n|:-|\n| b |",
            "<img src=x onerror=y>",
            '<div class="highlight">',
        ]
    ),
    st.builds(lambda lang, code: f"```{lang}\n{code}\n```", _LANGS, st.text(max_size=60)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=6).map("\n\n".join))
def test_arbitrary_markdown_never_yields_disallowed_tags_attributes_or_classes(source: str) -> None:
    parser = _Collect()
    parser.feed(markdown_render(source))
    for tag, attrs in parser.found:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            if name == "class":
                allowed = PYGMENTS_CLASSES if tag == "span" else {"highlight"} if tag == "pre" else set()
                assert set((value or "").split()) <= allowed, (tag, value)
            elif tag == "a" and name in ("rel", "target"):
                continue
            else:
                assert name in ALLOWED_ATTRIBUTES.get(tag, set()), (tag, name)
                if name == "style":
                    assert (value or "").replace(" ", "").startswith("text-align:"), value
