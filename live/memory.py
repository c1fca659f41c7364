"""Give freed memory back to the operating system after live sessions end (glibc's ``malloc_trim``).

A live session allocates many medium-sized buffers from the C heap: audio frames, JSON text, TLS records, recordings.
When a burst of sessions ended glibc kept the freed pages, so the server's RSS stayed near its high-water mark and
crept up 2-4 MB per 100 sessions in ``make bench``'s connect/disconnect cycles, while the Python heap stayed flat
(tracemalloc). ``malloc_trim(0)`` returns those pages. It runs in a worker thread (ctypes releases the GIL), once
``TRIM_DELAY_SECONDS`` after a session ends, however many end meanwhile. Without glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import weakref
from collections.abc import Callable

TRIM_DELAY_SECONDS = 2.0


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


malloc_trim = _find_malloc_trim()
_scheduled: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


def trim_soon() -> None:
    """Trim the C heap ``TRIM_DELAY_SECONDS`` from now, unless a trim is already due (call from the event loop)."""
    if malloc_trim is None:
        return
    loop = asyncio.get_running_loop()
    if loop in _scheduled:
        return

    def trim() -> None:
        _scheduled.pop(loop, None)
        if malloc_trim is not None:
            loop.run_in_executor(None, malloc_trim, 0)

    _scheduled[loop] = loop.call_later(TRIM_DELAY_SECONDS, trim)
