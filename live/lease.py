"""Which server process holds which live session: each process holds a short lease, renewed in the database."""

from __future__ import annotations

import functools
import os
import secrets
import socket


@functools.cache
def worker_name() -> str:
    """This server process's name: host, pid and a random part (a restarted process never reuses a name)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
