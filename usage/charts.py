"""A bar chart as inline SVG, rendered on the server (the admin's usage page): no script, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, GAP = 720, 120, 2


def bar_chart(*, title: str, bars: Sequence[tuple[str, float, str]], colour: str = "#417690") -> SafeString:
    """Bars of (label, value, value as people read it), left to right; each bar says its label and value on hover.

    Empty when there is nothing to draw.
    """
    if not bars:
        return SafeString("")
    peak = max(value for _, value, _ in bars) or 1.0
    step = WIDTH / len(bars)
    width = max(step - GAP, 1.0)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
        (
            (
                f"{index * step:.1f}",
                f"{HEIGHT - (value / peak) * HEIGHT:.1f}",
                f"{width:.1f}",
                f"{(value / peak) * HEIGHT:.1f}",
                colour,
                label,
                shown,
            )
            for index, (label, value, shown) in enumerate(bars)
        ),
    )
    first, last = bars[0][0], bars[-1][0]
    return format_html(
        '<figure class="usage-chart"><figcaption>{} ({} to {}; peak {})</figcaption>'
        '<svg role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" height="{}" preserveAspectRatio="none">'
        "{}</svg></figure>",
        title,
        first,
        last,
        max(bars, key=lambda bar: bar[1])[2],
        title,
        WIDTH,
        HEIGHT,
        HEIGHT,
        rects,
    )
