"""Audio: a cheap synthetic "voice" for replies (24 kHz PCM16LE) and an energy measure for voice activity detection.

Replies are built by concatenating pre-rendered syllables (harmonic tones under an envelope, pitch set by the
voice), one per vowel group of each word, so the length of the audio follows the text. Syllables are rendered once
per voice and cached; building a reply is a ``bytes.join``.
"""

from __future__ import annotations

import math
import re
import sys
import zlib
from array import array
from functools import cache

OUTPUT_RATE = 24000
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_RATE}"
INPUT_RATE = 16000
SYLLABLE_S = 0.16
WORD_GAP_S = 0.05
SENTENCE_GAP_S = 0.25
_VARIANTS = (1.0, 1.08, 0.94, 1.15, 0.9, 1.04, 0.97, 1.12)
_VOWELS = re.compile(r"[aeiouy]+", re.IGNORECASE)


def _to_le(samples: array) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


@cache
def _syllables(voice: str) -> tuple[bytes, ...]:
    """Render the syllables of one voice (base pitch from the voice name: 95 to 235 Hz)."""
    f0 = 95 + zlib.crc32(voice.encode()) % 140
    n = int(SYLLABLE_S * OUTPUT_RATE)
    out = []
    for k in _VARIANTS:
        samples = array("h")
        for i in range(n):
            t = i / OUTPUT_RATE
            f = f0 * k * (1.0 + 0.06 * (0.5 - i / n))  # slight falling glide, like a spoken syllable
            env = math.sin(math.pi * i / n) ** 2
            phase = 2 * math.pi * f * t
            v = math.sin(phase) + 0.5 * math.sin(2 * phase) + 0.3 * math.sin(3 * phase) + 0.15 * math.sin(5 * phase)
            samples.append(int(6000 * env * v))
        out.append(_to_le(samples))
    return tuple(out)


@cache
def _silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * OUTPUT_RATE))


def synthesize(text: str, voice: str) -> bytes:
    """Render text as 24 kHz mono PCM16LE whose duration follows the number of syllables."""
    syllables = _syllables(voice)
    parts: list[bytes] = []
    for word in text.split():
        count = max(1, len(_VOWELS.findall(word)))
        seed = zlib.crc32(word.lower().encode())
        for j in range(count):
            parts.append(syllables[(seed + j) % len(syllables)])
        parts.append(_silence(SENTENCE_GAP_S if word[-1] in ".!?" else WORD_GAP_S))
    return b"".join(parts)


def duration(pcm: bytes, rate: int) -> float:
    """Seconds of mono PCM16 audio."""
    return len(pcm) / (2 * rate)


def input_rate(mime_type: str) -> int:
    """Sample rate from a mime type such as ``audio/pcm;rate=16000`` (16 kHz when unstated)."""
    for param in mime_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key == "rate" and value.isdigit():
            return int(value)
    return INPUT_RATE


def level(pcm: bytes) -> float:
    """Mean absolute amplitude of PCM16LE (every 4th sample: cheap, and plenty for speech-vs-silence)."""
    usable = len(pcm) - len(pcm) % 2
    if usable == 0:
        return 0.0
    samples = array("h")
    samples.frombytes(pcm[:usable])
    if sys.byteorder == "big":
        samples.byteswap()
    picked = samples[::4]
    return sum(map(abs, picked)) / len(picked)
