"""Template context shared by every page."""

from django.http import HttpRequest

from gemini.client import current_mode


def gemini_mode(request: HttpRequest) -> dict[str, object]:
    """Expose which Gemini the app talks to, so pages can show the simulator banner."""
    return {"gemini_mode": current_mode()}
