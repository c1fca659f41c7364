"""The server's event loop, seen from a thread that ``sync_to_async`` runs for it (asgiref's private thread-local).

One function, so the one use of asgiref's internals is here; ``tests/test_asgi_loop.py`` fails if an asgiref
upgrade changes it.
"""

from __future__ import annotations

import asyncio
import os

from asgiref.sync import SyncToAsync


def main_event_loop() -> asyncio.AbstractEventLoop | None:
    """The loop that started the ``sync_to_async`` call this thread is running, or None (not in such a thread)."""
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(local, "main_event_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None
