"""Per-session numbers: the counters stored on the LiveSession row, and the time from speech to the first reply."""

from __future__ import annotations

import time
from dataclasses import dataclass

from live import metrics
from live.services import LiveSessionCounters


@dataclass
class Counters:
    """What a session relayed (stored on its row when it ends)."""

    messages_in: int = 0
    messages_out: int = 0
    audio_seconds_in: float = 0.0
    audio_seconds_out: float = 0.0

    def as_dict(self) -> LiveSessionCounters:
        """The counters as the row stores them."""
        return {
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "audio_seconds_in": self.audio_seconds_in,
            "audio_seconds_out": self.audio_seconds_out,
        }


class ReplyClock:
    """Time from the end of what the user said or typed to the model's first audio (a Prometheus histogram)."""

    def __init__(self) -> None:
        self._since: float | None = None

    def user_finished(self) -> None:
        """The user stopped speaking or sent text: the wait for a reply starts now."""
        self._since = time.monotonic()

    def model_audio(self) -> None:
        """Model audio arrived: the first since the user finished is the reply's latency."""
        if self._since is not None:
            metrics.observe_time_to_first_audio(time.monotonic() - self._since)
            self._since = None
