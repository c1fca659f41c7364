"""bench: percentiles, added latency and the pass/fail rule of a capacity step."""

from __future__ import annotations

from bench.__main__ import BOUND_MS, StepResult, judge, percentile, summarise
from bench.loadgen import SessionResult


def test_percentile_is_nearest_rank_in_milliseconds() -> None:
    """p50/p99/max of nanosecond samples come back in ms; no samples give None."""
    values = [i * 1_000_000 for i in range(1, 101)]  # 1..100 ms
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) is None


def step_with(target: str, up_ms: list[float], down_ms: list[float], *, lost: int = 0) -> StepResult:
    result = SessionResult(connected=True, sent=len(up_ms) + lost, received=len(up_ms), lost=lost)
    result.up_ns = [int(v * 1e6) for v in up_ms]
    result.down_ns = [int(v * 1e6) for v in down_ms]
    step = StepResult(target, 1)
    summarise(step, [result])
    return step


def test_added_latency_is_the_difference_of_percentiles_and_decides_the_step() -> None:
    """A server within 5 ms p99 of the direct connection passes; one above it fails and says why."""
    direct = step_with("direct", [1.0] * 100, [0.5] * 100)
    fine = step_with("bridge", [1.0 + BOUND_MS - 0.5] * 100, [2.0] * 100)
    judge(fine, direct)
    assert fine.passed and fine.added_up_ms["p99"] == BOUND_MS - 0.5 and fine.added_down_ms["p50"] == 1.5
    slow = step_with("bridge", [1.0] * 98 + [50.0] * 2, [0.5] * 100)
    judge(slow, direct)
    assert not slow.passed and "p99 added up 49.00 ms" in slow.why


def test_lost_frames_or_failed_connects_fail_the_step() -> None:
    """Loss above 0.1 % or a session that never connected fails, whatever the latency."""
    direct = step_with("direct", [1.0] * 1000, [0.5] * 1000)
    lossy = step_with("bridge", [1.0] * 1000, [0.5] * 1000, lost=5)
    judge(lossy, direct)
    assert not lossy.passed and "5 frames lost" in lossy.why
    missing = step_with("bridge", [1.0] * 1000, [0.5] * 1000)
    missing.sessions = 2
    judge(missing, direct)
    assert not missing.passed and "1 failed to connect" in missing.why
