"""Summarise a cProfile dump of the server by package: where the CPU of a benchmark run went.

The dump covers the whole process (start-up included), so compare runs of the same shape, not absolute seconds.

``python -m bench.profile_summary bench/results/uvicorn.prof`` (written by ``python -m bench --profile``).
"""

from __future__ import annotations

import pstats
import sys
from collections import defaultdict

GROUPS = (
    ("live/", "apsara live/ (bridge, consumer, recorder)"),
    ("conversations/", "apsara conversations/"),
    ("google/genai", "google-genai SDK"),
    ("pydantic", "pydantic"),
    ("websockets/", "websockets (Gemini leg)"),
    ("autobahn/", "autobahn (browser leg framing)"),
    ("daphne/", "daphne"),
    ("twisted/", "twisted"),
    ("uvicorn/", "uvicorn"),
    ("uvloop", "uvloop"),
    ("channels/", "channels"),
    ("channels_redis/", "channels_redis"),
    ("prometheus_client", "prometheus_client"),
    ("django/", "django"),
    ("asgiref/", "asgiref"),
    ("asyncio/", "asyncio event loop"),
    ("ssl", "TLS (ssl module)"),
    ("json/", "json"),
)


def group_of(filename: str, name: str) -> str:
    """Name the package a profiled function belongs to."""
    if "select.epoll" in name or "poll' of" in name:
        return "idle (waiting in epoll)"
    if "importlib" in filename or any(k in name for k in ("marshal.loads", "builtins.compile", "__build_class__")):
        return "startup (imports)"
    for needle, label in GROUPS:
        if needle in filename or needle in name:
            return label
    if "/lib/python3" in filename and "site-packages" not in filename:
        return "Python stdlib (typing, enum, logging, ...)"
    if filename == "~":
        return "builtins (socket send/recv, base64, ...)"
    return "other"


def main(path: str) -> None:
    """Print own (tottime) seconds per package, biggest first."""
    stats = pstats.Stats(path)
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[group_of(filename, name)] += tottime
    busy = sum(v for k, v in totals.items() if not k.startswith("idle"))
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        share = "" if label.startswith("idle") else f"{seconds / busy * 100:5.1f}% of busy"
        print(f"{seconds:8.2f} s  {share:>14}  {label}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/uvicorn.prof")
