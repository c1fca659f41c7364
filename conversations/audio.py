"""PCM16 ⇄ WAV: the one place audio is packed for storage (REST uploads and the live recorder)."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

WAV_MIME_TYPE = "audio/wav"
INPUT_SAMPLE_RATE = 16_000  # what browsers send to Gemini Live
OUTPUT_SAMPLE_RATE = 24_000  # what Gemini Live sends back
SAMPLE_WIDTH = 2  # PCM16


class AudioError(ValueError):
    """Audio bytes that cannot be stored as WAV."""


# What the stdlib's wave raises on a damaged file besides wave.Error: EOFError for a cut file, RuntimeError for a
# chunk that claims more bytes than there are, ValueError/OverflowError for absurd sizes. Parsing bytes in memory
# has no other failure than the file being damaged.
_DAMAGED = (wave.Error, EOFError, RuntimeError, ValueError, OverflowError, OSError)


@dataclass(frozen=True)
class WavAudio:
    """A complete WAV file in memory, with what the Message row records about it."""

    data: bytes
    duration: float  # seconds
    sample_rate: int
    channels: int = 1
    mime_type: str = WAV_MIME_TYPE


def pcm16_duration(num_bytes: int, *, sample_rate: int, channels: int = 1) -> float:
    """Return the duration in seconds of `num_bytes` of PCM16 audio."""
    return num_bytes / (SAMPLE_WIDTH * channels * sample_rate)


def pcm16_to_wav(pcm: bytes, *, sample_rate: int, channels: int = 1) -> WavAudio:
    """Wrap raw little-endian PCM16 samples in a WAV container."""
    if sample_rate <= 0 or channels <= 0:
        raise AudioError(f"invalid audio format: {sample_rate} Hz, {channels} channel(s)")
    if not pcm:
        raise AudioError("no audio samples")
    if len(pcm) % (SAMPLE_WIDTH * channels):
        raise AudioError(f"PCM16 audio must be whole samples; got {len(pcm)} bytes for {channels} channel(s)")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return WavAudio(
        data=buffer.getvalue(),
        duration=pcm16_duration(len(pcm), sample_rate=sample_rate, channels=channels),
        sample_rate=sample_rate,
        channels=channels,
    )


def wav_read(data: bytes) -> WavAudio:
    """Validate a WAV file and return it with its duration."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            frames = wav.getnframes()
            sample_rate = wav.getframerate()
            channels = wav.getnchannels()
    except _DAMAGED as exc:
        raise AudioError(f"not a WAV file: {exc}") from exc
    if sample_rate <= 0:
        raise AudioError("WAV file has no sample rate")
    return WavAudio(data=data, duration=frames / sample_rate, sample_rate=sample_rate, channels=channels)


def wav_pcm16(data: bytes) -> tuple[bytes, int]:
    """Return the PCM16 samples and sample rate of a WAV file."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            width = wav.getsampwidth()
            pcm, rate = wav.readframes(wav.getnframes()), wav.getframerate()
    except _DAMAGED as exc:
        raise AudioError(f"not a WAV file: {exc}") from exc
    if width != SAMPLE_WIDTH:
        raise AudioError(f"expected 16-bit samples, got {8 * width}-bit")
    return pcm, rate
