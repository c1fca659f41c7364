"""Which server process holds which live session: each process holds a short lease, renewed in the database.

A session's row names the process holding it (``LiveSession.worker``). That process keeps a ``LiveWorker`` row
whose ``expires_at`` a thread pushes ``LIVE_LEASE_SECONDS`` ahead every quarter of that; a process that dies
(SIGKILL, out of memory, its machine gone) stops renewing, and once the lease has run out any other process may
take its sessions over (``services.live_session_claim``). One renewal per process, however many sessions it holds.

Why a thread and the database: the thread keeps renewing while the event loop is busy with audio (a loop stalled
under load must not lose its sessions to a false takeover), and the check happens in the same transaction as the
takeover, against the database's clock (no two hosts' clocks to disagree).

A lease that ran out while its process lived (the database stalled for longer than a lease) is renewed again, and
``on_lapse`` is called: another process may have taken some of its sessions meanwhile (``live.shutdown`` checks).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now

from live.models import LiveWorker

logger = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 300.0  # how often a process deletes the rows of processes long gone
SWEEP_AFTER = timedelta(hours=1)  # ... that ran out this long ago (a takeover needs only that they ran out)

_names: dict[int, str] = {}


def worker_name() -> str:
    """This server process's name: host, pid and a random part (a restarted process never reuses a name)."""
    pid = os.getpid()  # per pid: a forked child is another process and holds its own lease
    if pid not in _names:
        _names[pid] = f"{socket.gethostname()[:40]}:{pid}:{secrets.token_hex(4)}"
    return _names[pid]


class WorkerLease:
    """This process's lease, held while it holds live sessions (``hold``/``let_go`` count them).

    The lock guards the count and the renewer only, never a database call: ``let_go`` runs on the event loop and
    must never wait for the database.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = 0
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        self._failing = False
        self._swept_at = 0.0
        self.on_lapse: Callable[[], None] | None = None  # called from the renewer thread

    def hold(self) -> str:
        """A session is about to be held here: renew the lease now (so the row it names is alive when written) and
        keep it renewed. Returns this worker's name. Synchronous (database): call it from a database lane."""
        with self._lock:
            held_before = self._held
            self._held += 1
            if self._renewer is None or not self._renewer.is_alive():
                self._stop = threading.Event()  # each renewer its own: one stopping never stops the next
                self._renewer = threading.Thread(target=self._run, args=(self._stop,), name="live-lease", daemon=True)
                self._renewer.start()
        try:
            renewed = self._renew()
        except BaseException:
            self.let_go()
            raise
        if not renewed and held_before:
            self._lapsed()  # it ran out while sessions were held here (the renewer has not noticed yet)
        return worker_name()

    def let_go(self) -> None:
        """A session held here ended (or moved): with none left, the renewer stops (the lease runs out by itself;
        nothing here names it any more)."""
        with self._lock:
            self._held = max(0, self._held - 1)

    def release(self) -> None:
        """Drop the lease at once (a graceful shutdown, after draining): whatever this process still marks as held
        can be taken over right away rather than when the lease would have run out. Synchronous (database)."""
        with self._lock:
            self._stop.set()
            self._renewer = None
        self._drop()

    @property
    def held(self) -> int:
        return self._held

    # -- the renewer thread ------------------------------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(settings.LIVE_LEASE_SECONDS / 4):
                with self._lock:
                    if stop.is_set():
                        return
                    if self._held == 0:
                        self._renewer = None
                        return
                try:
                    if not self._renew():
                        self._lapsed()
                    self._sweep()
                except Exception:
                    self._note_failure()
        finally:
            connection.close()  # this thread's own connection

    def _renew(self) -> bool:
        """Push the lease ahead; return False if it had run out (or was gone) and had to be taken again."""
        expires = Now() + timedelta(seconds=settings.LIVE_LEASE_SECONDS)
        try:
            if LiveWorker.objects.filter(name=worker_name(), expires_at__gt=Now()).update(expires_at=expires):
                renewed = True
            else:
                LiveWorker.objects.update_or_create(name=worker_name(), defaults={"expires_at": expires})
                renewed = False
        except DatabaseError:
            connection.close()  # a broken connection is replaced at the next try, never reused
            raise
        if self._failing:
            self._failing = False
            logger.warning("live: the lease of %s is renewed again", worker_name())
        return renewed

    def _lapsed(self) -> None:
        logger.warning("live: the lease of %s had run out; its sessions are being checked", worker_name())
        if self.on_lapse is not None:
            self.on_lapse()

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_EVERY_SECONDS:
            self._swept_at = now
            LiveWorker.objects.filter(expires_at__lt=Now() - SWEEP_AFTER).delete()

    def _drop(self) -> None:
        try:
            LiveWorker.objects.filter(name=worker_name()).delete()
        except DatabaseError:
            logger.warning("live: dropping the lease of %s failed (it runs out by itself)", worker_name())

    def _note_failure(self) -> None:
        # Once per outage: the database being away is what the health check reports; sessions carry on, and if the
        # lease runs out meanwhile, on_lapse has them checked once it is renewed again.
        if not self._failing:
            self._failing = True
            logger.warning("live: renewing the lease of %s failed; retrying", worker_name(), exc_info=True)


lease = WorkerLease()
