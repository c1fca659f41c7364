"""How the admin shows numbers, durations and long text to people: rounded, with separators, cut short.

Staff read these tables on a laptop: "2.4000000000000012" seconds or a 24-character id in full helps nobody, and
wide columns push the table past the screen. The full value stays one hover away (a `title`) where it is cut.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

EMPTY = "—"


def clock(seconds: float | None) -> str:
    """A duration as m:ss, or h:mm:ss from an hour on ("—" when unknown)."""
    if seconds is None:
        return EMPTY
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def audio_seconds(seconds: float | None) -> str:
    """Seconds of audio as people say them: "2.4 s" under a minute, then m:ss ("—" when unknown)."""
    if seconds is None:
        return EMPTY
    return f"{seconds:.1f} s" if seconds < 59.95 else clock(seconds)


def count(value: int | None) -> str:
    """A count with thousands separators: 12,345."""
    return EMPTY if value is None else f"{value:,}"


def cut(text: str, chars: int = 40) -> SafeString | str:
    """`text` cut to `chars` characters with an ellipsis, the whole of it in a title (shown on hover)."""
    if not text:
        return EMPTY
    if len(text) <= chars:
        return text
    return format_html('<span class="cut" title="{}">{}…</span>', text, text[: chars - 1])
