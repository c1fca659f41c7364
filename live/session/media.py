"""What a browser sends besides JSON: frame sizes, audio decoding, image sniffing, and the audio rate limit."""

from __future__ import annotations

from typing import Literal

from conversations.audio import AudioError as ConversationsAudioError
from conversations.audio import wav_pcm16, wav_read
from live.protocol import INPUT_SAMPLE_RATE, AudioError, ErrorCode


def utf8_length(text: str) -> int:
    """The size of a text frame as it came over the wire (UTF-8), without encoding it when it is ASCII."""
    if text.isascii():
        return len(text)
    # surrogatepass: a test client may hand the app any str; a real socket's text is valid UTF-8.
    return len(text.encode("utf-8", "surrogatepass"))


def pcm_seconds(pcm: bytes, sample_rate: int = INPUT_SAMPLE_RATE) -> float:
    """How long a PCM16 mono buffer plays."""
    return len(pcm) / 2 / sample_rate


def decode_audio(data: bytes, mime: str) -> bytes:
    """Turn a decoded ``audioChunk`` into PCM16LE 16 kHz mono, or raise an AudioError saying what is supported."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _wav_pcm(data)
    if data[:4] in (b"OggS", b"fLaC", b"\x1aE\xdf\xa3") or data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3"):
        raise AudioError(
            ErrorCode.UNSUPPORTED_AUDIO_FORMAT, "Compressed audio (Ogg, FLAC, WebM, MP3) is not accepted; send PCM16."
        )
    if not mime.startswith("audio/pcm") or ("rate=" in mime and "rate=16000" not in mime):
        raise AudioError(ErrorCode.UNSUPPORTED_AUDIO_FORMAT, f"Audio of type {mime[:60]!r} is not accepted.")
    if len(data) % 2:
        raise AudioError(ErrorCode.AUDIO_DECODE_FAILED, "audioChunk is not PCM16LE (an odd number of bytes).")
    return data


def _wav_pcm(data: bytes) -> bytes:
    try:
        info = wav_read(data)
        pcm, rate = wav_pcm16(data)
    except ConversationsAudioError:
        raise AudioError(ErrorCode.AUDIO_DECODE_FAILED, "audioChunk is a damaged WAV file.") from None
    if info.channels != 1 or rate != INPUT_SAMPLE_RATE:
        raise AudioError(
            ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
            f"WAV audio must be mono 16-bit 16 kHz (got {info.channels} channel(s), {rate} Hz).",
        )
    return pcm


def sniff_image(data: bytes) -> str:
    """The MIME type of a camera or screen frame, from its first bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class AudioRateGuard:
    """Notice a client sending audio far faster than real time (a flood, not a person talking).

    A token bucket of audio seconds: it refills at ``factor`` seconds of audio per second of wall time and holds at
    most ``burst_seconds``, so however long someone has talked, at most that much arrives at once. Hand-written
    because each frame needs an immediate yes or no (async limiters such as aiolimiter make the caller wait).
    """

    def __init__(self, *, factor: float, burst_seconds: float, close_after_seconds: float) -> None:
        self.factor = factor
        self.burst = burst_seconds
        self.close_after = close_after_seconds
        self._credit = burst_seconds
        self._last: float | None = None
        self.accepted = 0.0
        self.dropped = 0.0

    def check(self, seconds: float, now: float) -> Literal["ok", "drop", "close"]:
        """Admit ``seconds`` of audio arriving at ``now``, or say to drop it (or to close: it keeps flooding)."""
        if self._last is not None:
            self._credit = min(self.burst, self._credit + max(0.0, now - self._last) * self.factor)
        self._last = now
        if seconds <= self._credit:
            self._credit -= seconds
            self.accepted += seconds
            return "ok"
        self.dropped += seconds
        return "close" if self.dropped > self.close_after else "drop"
