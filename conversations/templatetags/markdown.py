"""Template filter ``markdown``: safe Markdown rendering for message text."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from conversations.markdown import markdown_render

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Render Markdown to sanitised HTML."""
    # Safe to mark: markdown_render escapes raw HTML and sanitises the result with an allow-list.
    return mark_safe(markdown_render(text))  # noqa: S308
