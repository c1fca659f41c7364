"""PCM16 ⇄ WAV packing."""

import array
import contextlib
import io
import math
import struct
import wave

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.audio import AudioError, pcm16_duration, pcm16_to_wav, wav_pcm16, wav_read, wav_to_pcm16


def sine_pcm16(seconds: float, *, sample_rate: int, freq: float = 440.0) -> bytes:
    count = int(seconds * sample_rate)
    return b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / sample_rate))) for i in range(count)
    )


def test_pcm16_to_wav_is_a_valid_wav_with_the_right_duration() -> None:
    """1.5 s of 24 kHz PCM16 becomes a 24 kHz mono 16-bit WAV lasting 1.5 s."""
    pcm = sine_pcm16(1.5, sample_rate=24_000)
    audio = pcm16_to_wav(pcm, sample_rate=24_000)
    assert audio.duration == pytest.approx(1.5)
    assert audio.mime_type == "audio/wav"
    with wave.open(io.BytesIO(audio.data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert wav.getnframes() == 36_000
        assert wav.readframes(wav.getnframes()) == pcm
    assert len(audio.data) == 44 + len(pcm)  # canonical RIFF header, no padding


def test_wav_round_trip_returns_the_samples() -> None:
    """Reading back the WAV gives the original samples, rate and duration."""
    pcm = sine_pcm16(0.25, sample_rate=16_000)
    audio = wav_read(pcm16_to_wav(pcm, sample_rate=16_000).data)
    assert audio.duration == pytest.approx(0.25)
    assert audio.sample_rate == 16_000
    assert wav_pcm16(audio.data) == (pcm, 16_000)


def test_pcm16_duration() -> None:
    """32 000 bytes of 16 kHz mono PCM16 last one second; stereo halves it."""
    assert pcm16_duration(32_000, sample_rate=16_000) == 1.0
    assert pcm16_duration(32_000, sample_rate=16_000, channels=2) == 0.5


@pytest.mark.parametrize(
    ("pcm", "sample_rate", "message"),
    [
        (b"", 16_000, "no audio samples"),
        (b"\x00\x01\x02", 16_000, "whole samples"),
        (b"\x00\x00", 0, "invalid audio format"),
    ],
)
def test_pcm16_to_wav_rejects_bad_audio(pcm: bytes, sample_rate: int, message: str) -> None:
    """Empty audio, half samples and a zero rate are refused with a clear reason."""
    with pytest.raises(AudioError, match=message):
        pcm16_to_wav(pcm, sample_rate=sample_rate)


def test_wav_read_rejects_what_is_not_wav() -> None:
    """Random bytes are not a WAV file."""
    with pytest.raises(AudioError, match="not a WAV file"):
        wav_read(b"definitely not RIFF data")


@given(cut=st.integers(0, 200), junk=st.binary(max_size=64), flip=st.integers(0, 200))
def test_a_damaged_wav_is_an_audio_error_and_nothing_else(cut: int, junk: bytes, flip: int) -> None:
    """However a WAV is cut, padded or corrupted, reading it raises AudioError (a 400 to a client), never a stdlib
    RuntimeError/EOFError/OverflowError that would become a 500."""
    data = bytearray(pcm16_to_wav(sine_pcm16(0.01, sample_rate=16_000), sample_rate=16_000).data)
    if flip < len(data):
        data[flip] ^= 0xFF
    damaged = bytes(data[: len(data) - cut]) + junk
    for read in (wav_read, wav_pcm16):
        with contextlib.suppress(AudioError):
            read(damaged)


def test_a_wav_with_8_bit_samples_is_refused_by_name() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 80)
    with pytest.raises(AudioError, match="expected 16-bit samples, got 8-bit"):
        wav_pcm16(buffer.getvalue())


def test_wav_to_pcm16_makes_any_pcm_wav_mono_16_bit_at_the_rate_asked() -> None:
    """8-bit stereo at 44.1 kHz → PCM16 mono at 16 kHz: channels averaged, the rate changed, the length kept."""
    seconds, rate = 0.5, 44_100
    left = [128 + round(100 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))]
    frames = bytes(b for value in left for b in (value, 128))  # the right channel is silent
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(1)
        wav.setframerate(rate)
        wav.writeframes(frames)

    pcm = wav_to_pcm16(buffer.getvalue(), sample_rate=16_000)

    samples = array.array("h", pcm)
    assert len(samples) == 8000
    assert max(samples) == pytest.approx(50 * 256, rel=0.05)  # half the left channel's amplitude, as 16-bit
    assert wav_to_pcm16(pcm16_to_wav(pcm, sample_rate=16_000).data, sample_rate=16_000) == pcm  # already right


def test_wav_to_pcm16_refuses_what_is_not_a_pcm_wav() -> None:
    with pytest.raises(AudioError, match="not a PCM WAV file"):
        wav_to_pcm16(b"OggS" + bytes(40), sample_rate=16_000)


def extensible_wav(*, rate: int, channels: int, bits: int, frames: bytes, sub_format: int = 1) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE file, as ffmpeg and sox write for more than 16 bits or 2 channels."""
    width = bits // 8
    guid = struct.pack("<H", sub_format) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * channels * width, channels * width, bits)
    fmt += struct.pack("<HHI", 22, bits, 3) + guid
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_wav_to_pcm16_reads_the_extensible_header_of_24_bit_and_multichannel_files() -> None:
    tone = [round(9000 * math.sin(n / 8)) for n in range(4410)]
    frames = b"".join((value << 8 & 0xFFFFFF).to_bytes(3, "little") * 2 for value in tone)  # 24-bit stereo
    pcm = array.array(
        "h", wav_to_pcm16(extensible_wav(rate=44_100, channels=2, bits=24, frames=frames), sample_rate=16_000)
    )
    assert len(pcm) == 1600
    assert max(pcm) == pytest.approx(9000, abs=30) and min(pcm) == pytest.approx(-9000, abs=30)
    with pytest.raises(AudioError, match="not a PCM WAV"):  # IEEE float is not PCM
        wav_to_pcm16(
            extensible_wav(rate=16_000, channels=1, bits=32, frames=bytes(64), sub_format=3), sample_rate=16_000
        )


def test_wav_to_pcm16_refuses_more_than_it_can_hold() -> None:
    frames = bytes(2 * 8000 * 601)  # 601 s of 8 kHz mono
    with pytest.raises(AudioError, match="at most 600 s"):
        wav_to_pcm16(pcm16_to_wav(frames, sample_rate=8000).data, sample_rate=16_000)
