"""Give the memory of ended live sessions back, soon after they end: a full garbage collection, then ``malloc_trim``.

A session's objects (consumer, bridge, tasks, the SDK's connection, Django rows...) reference each other in cycles,
so they are freed only by a collection of the oldest generation, which CPython runs rarely (and ``gc.freeze()`` at
start-up makes rarer still). Without this, ``make bench``'s connect/disconnect cycles left about 16,000
unreachable objects per 100 sessions on the heap and the server's RSS rose 10-13 % over three cycles of 100; with it
RSS stays within 1 %. Then glibc's ``malloc_trim(0)`` returns the freed pages to the system (in a worker thread:
ctypes releases the GIL; a no-op without glibc).

A full collection stalls the event loop for about 10-40 ms, so it runs ``RELEASE_DELAY_SECONDS`` after a session
ends (sessions often end in bursts) and at most once every ``MIN_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import weakref
from collections.abc import Callable

RELEASE_DELAY_SECONDS = 2.0
MIN_INTERVAL_SECONDS = 10.0


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


malloc_trim = _find_malloc_trim()
_due: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.TimerHandle] = weakref.WeakKeyDictionary()
_last_release: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = weakref.WeakKeyDictionary()


def release_soon() -> None:
    """A session ended: schedule one release, unless one is already due (call from the event loop)."""
    loop = asyncio.get_running_loop()
    if loop in _due:
        return
    delay = RELEASE_DELAY_SECONDS
    last = _last_release.get(loop)
    if last is not None:
        delay = max(delay, last + MIN_INTERVAL_SECONDS - loop.time())
    _due[loop] = loop.call_later(delay, _release, loop)


def _release(loop: asyncio.AbstractEventLoop) -> None:
    # On the loop's own thread: finalizers of transports and tasks expect it.
    _due.pop(loop, None)
    _last_release[loop] = loop.time()
    gc.collect()
    if malloc_trim is not None:
        loop.run_in_executor(None, malloc_trim, 0)
