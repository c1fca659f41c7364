"""Markdown rendering keeps formatting and drops anything that could run or load in the page."""

from __future__ import annotations

import pytest

from conversations.markdown import markdown_render


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
