"""The audio rate limit on its own: real-time speech always passes, a burst is capped however long the talk was."""

from __future__ import annotations

from live.session.media import AudioRateGuard


def guard() -> AudioRateGuard:
    return AudioRateGuard(factor=3.0, burst_seconds=10.0, close_after_seconds=10.0)


def test_real_time_speech_always_passes():
    rate = guard()
    assert all(rate.check(0.04, i * 0.04) == "ok" for i in range(15_000))  # ten minutes of 40 ms frames


def test_the_burst_is_capped_after_ten_minutes_of_normal_speech():
    rate = guard()
    for i in range(15_000):
        rate.check(0.04, i * 0.04)
    now = 600.0
    verdicts = [rate.check(1.0, now) for _ in range(30)]  # 30 s of audio in one instant
    assert verdicts[:10] == ["ok"] * 10  # the burst allowance...
    assert "ok" not in verdicts[10:]  # ...and no more: an uncapped credit would have taken all 30 (and ~1,200 s)
    assert verdicts[-1] == "close"  # and keeping it up closes


def test_credit_comes_back_at_the_allowed_speed():
    rate = guard()
    assert rate.check(10.0, 0.0) == "ok"
    assert rate.check(1.0, 0.0) == "drop"
    assert rate.check(3.0, 1.0) == "ok"  # one second later, three seconds of audio at factor 3
    assert rate.check(0.5, 1.0) == "drop"
