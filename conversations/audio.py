"""PCM16 ⇄ WAV: the one place audio is packed for storage (REST uploads and the live recorder), and a WAV file of any
format made into the PCM16 Gemini takes."""

from __future__ import annotations

import array
import io
import sys
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


def wav_to_pcm16(data: bytes, *, sample_rate: int) -> bytes:
    """Return a PCM WAV file of any rate, width (8-32 bit) and channel count as mono PCM16LE at ``sample_rate``.

    For audio read from a file (``manage.py live_test --audio``): channels are averaged and the rate changed by
    linear interpolation, which is enough for speech going to Gemini (no numpy: the project does not need it).
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except _DAMAGED as exc:
        # Python 3.11's wave reads only the plain PCM header; ffmpeg and sox write WAVE_FORMAT_EXTENSIBLE for more
        # than 16 bits or 2 channels (wave reads it from 3.12 on).
        extensible = _extensible_pcm(data)
        if extensible is None:
            raise AudioError(f"not a PCM WAV file: {exc}") from exc
        width, channels, rate, frames = extensible
    if rate <= 0 or channels <= 0 or width not in (1, 2, 3, 4):
        raise AudioError(f"unsupported WAV format: {rate} Hz, {channels} channel(s), {8 * width}-bit")
    seconds = len(frames) / (rate * channels * width)
    if seconds > MAX_CONVERTED_SECONDS:
        raise AudioError(f"{seconds:.0f} s of audio: at most {MAX_CONVERTED_SECONDS} s can be converted at once")
    samples = _samples(frames, width)
    if channels > 1:
        samples = [sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)]
    if rate != sample_rate and samples:
        samples = _resample(samples, rate, sample_rate)
    return array.array("h", samples).tobytes() if sys.byteorder == "little" else _swapped(samples)


MAX_CONVERTED_SECONDS = 600  # a turn's worth: the conversion holds every sample as a Python int
_EXTENSIBLE = 0xFFFE
_PCM = 1


def _extensible_pcm(data: bytes) -> tuple[int, int, int, bytes] | None:
    """(width, channels, rate, frames) of a WAVE_FORMAT_EXTENSIBLE file whose sub-format is PCM, else None."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        name, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        body = data[offset + 8 : offset + 8 + size]
        if name == b"fmt ":
            fmt = body
        elif name == b"data" and fmt is not None:
            if len(fmt) < 26 or int.from_bytes(fmt[0:2], "little") != _EXTENSIBLE:
                return None
            if int.from_bytes(fmt[24:26], "little") != _PCM:  # the sub-format GUID starts with the format tag
                return None
            channels, rate = int.from_bytes(fmt[2:4], "little"), int.from_bytes(fmt[4:8], "little")
            width = int.from_bytes(fmt[14:16], "little") // 8
            if width <= 0 or channels <= 0:
                return None
            return width, channels, rate, body[: len(body) - len(body) % (width * channels)]
        offset += 8 + size + (size % 2)
    return None


def _samples(frames: bytes, width: int) -> list[int]:
    """Frames as signed 16-bit sample values (8-bit WAV is unsigned; 24- and 32-bit keep their top 16 bits)."""
    if width == 1:
        return [(b - 128) << 8 for b in frames]
    if width == 2:
        values = array.array("h", frames[: len(frames) - len(frames) % 2])
        if sys.byteorder != "little":
            values.byteswap()
        return values.tolist()
    return [
        int.from_bytes(frames[i + width - 2 : i + width], "little", signed=True)
        for i in range(0, len(frames) - width + 1, width)
    ]


def _resample(samples: list[int], source: int, target: int) -> list[int]:
    count = max(1, round(len(samples) * target / source))
    step = source / target
    last = len(samples) - 1
    out = []
    for n in range(count):
        position = n * step
        i = int(position)
        if i >= last:
            out.append(samples[last])
            continue
        fraction = position - i
        out.append(round(samples[i] + (samples[i + 1] - samples[i]) * fraction))
    return out


def _swapped(samples: list[int]) -> bytes:
    values = array.array("h", samples)
    values.byteswap()
    return values.tobytes()
