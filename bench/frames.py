"""Timestamped PCM frames: what the load generator sends and how latency is read back from the echo.

A frame is 40 ms of PCM16LE mono at 16 kHz (1,280 bytes). Its first 40 bytes are a tag; the rest is a fixed
noise pattern loud enough (RMS ~1,150) that the bridge treats it as speech and records it, as it would a voice:

    [0:8]   MAGIC b"APSBENCH"
    [8:12]  session number (u32 LE)
    [12:16] sequence number (u32 LE)
    [16:24] scheduled send time, CLOCK_MONOTONIC ns (u64 LE), written by the load generator
    [24:32] simulator receive time, ns (written by gemini_sim's echo mode)
    [32:40] simulator send time, ns (written by gemini_sim's echo mode)

CLOCK_MONOTONIC is system-wide on Linux, so one-way latencies across processes are valid: upstream =
sim receive - scheduled send, downstream = load-generator receive - sim send.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

MAGIC = b"APSBENCH"
SAMPLE_RATE = 16_000
FRAME_MS = 40
FRAME_BYTES = SAMPLE_RATE * 2 * FRAME_MS // 1000  # 1,280
TAG = struct.Struct("<8sIIQQQ")  # 40 bytes

_rng = random.Random(4)
_FILLER = b"".join(
    _rng.randint(-2000, 2000).to_bytes(2, "little", signed=True) for _ in range((FRAME_BYTES - TAG.size) // 2)
)


def make_frame(session: int, seq: int, send_ns: int) -> bytes:
    """Build one tagged frame."""
    return TAG.pack(MAGIC, session, seq, send_ns, 0, 0) + _FILLER


@dataclass(frozen=True, slots=True)
class Stamp:
    session: int
    seq: int
    send_ns: int
    sim_recv_ns: int
    sim_send_ns: int


def read_stamps(data: bytes | memoryview) -> tuple[list[Stamp], int]:
    """Return the tags found at frame boundaries of ``data`` and how many bytes were not tagged frames.

    A reply may carry several frames back to back (a relay that coalesces), so every 1,280-byte boundary is
    checked.
    """
    stamps = []
    view = memoryview(data)
    for offset in range(0, len(view) - TAG.size + 1, FRAME_BYTES):
        magic, session, seq, send_ns, recv_ns, sent_ns = TAG.unpack_from(view, offset)
        if magic == MAGIC:
            stamps.append(Stamp(session, seq, send_ns, recv_ns, sent_ns))
    return stamps, max(0, len(view) - len(stamps) * FRAME_BYTES)
