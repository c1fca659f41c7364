"""Voice activity detection on input PCM energy, in audio time (so tests may send audio as fast as they like)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from .. import audio

VAD_WINDOW_MS = 40


@dataclass
class VoiceActivity:
    """Voice-activity state of the turn being heard."""

    in_speech: bool = False
    voiced_ms: float = 0.0
    silence_ms: float = 0.0
    speech_ms: float = 0.0

    def step(self, voiced: bool, ms: float, *, start_ms: float, silence_ms: float) -> Literal["start", "end"] | None:
        """Advance by one window: "start" when ``start_ms`` of speech began a turn, "end" after ``silence_ms``."""
        if not self.in_speech:
            if not voiced:
                self.voiced_ms = 0.0
                return None
            self.voiced_ms += ms
            if self.voiced_ms < start_ms:
                return None
            self.in_speech = True
            self.speech_ms = self.voiced_ms
            self.silence_ms = 0.0
            return "start"
        self.speech_ms += ms
        self.silence_ms = 0.0 if voiced else self.silence_ms + ms
        return "end" if self.silence_ms >= silence_ms else None

    @property
    def heard_seconds(self) -> float:
        """Seconds of speech so far, without the trailing silence."""
        return max(0.0, self.speech_ms - self.silence_ms) / 1000


def windows(pcm: bytes, rate: int) -> Iterator[tuple[bytes, float]]:
    """Split 16-bit PCM into detection windows with their length in ms: long chunks are judged window by window."""
    window = 2 * rate * VAD_WINDOW_MS // 1000
    for start in range(0, len(pcm), window):
        piece = pcm[start : start + window]
        yield piece, 1000.0 * audio.duration(piece, rate)
