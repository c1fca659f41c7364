"""bench.frames: the tag that carries timestamps through the relays."""

from __future__ import annotations

import struct

from bench.frames import FRAME_BYTES, MAGIC, make_frame, read_stamps


def test_frame_is_40_ms_of_16_khz_pcm16_with_the_tag_first() -> None:
    """A frame is 1,280 bytes and starts with the magic, session, sequence and send time."""
    frame = make_frame(7, 42, 123_456_789)
    assert len(frame) == FRAME_BYTES == 1280
    assert frame.startswith(MAGIC)
    (stamp,), untagged = read_stamps(frame)
    assert (stamp.session, stamp.seq, stamp.send_ns, stamp.sim_recv_ns, stamp.sim_send_ns) == (7, 42, 123_456_789, 0, 0)
    assert untagged == 0


def test_read_stamps_finds_coalesced_frames_and_counts_the_rest() -> None:
    """Frames relayed back to back are all found; bytes that are not tagged frames are counted."""
    echoed = bytearray(make_frame(1, 2, 3))
    echoed[24:40] = struct.pack("<QQ", 10, 20)  # what the simulator's echo writes
    data = bytes(echoed) + make_frame(1, 3, 4) + b"\x00" * 100
    stamps, untagged = read_stamps(data)
    assert [(s.seq, s.sim_recv_ns, s.sim_send_ns) for s in stamps] == [(2, 10, 20), (3, 0, 0)]
    assert untagged == 100
    assert read_stamps(b"\x01" * 2000) == ([], 2000)
