"""The lease (live.lease): a session whose process died is taken over within 3 s; one whose process lives is not.

The holder is a real process sharing the test database; it is SIGKILLed, as the kernel's OOM killer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from live import services
from live.lease import WorkerLease, worker_name
from live.models import LiveSession, LiveWorker
from live.protocol import ErrorCode, ProtocolError
from tests.factories import LiveSessionFactory
from tests.live.real_servers import ROOT
from tests.services import skip_or_fail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

HOLDER = """
import sys, time
import django
django.setup()
from live.lease import lease
from live.models import LiveSession
name = lease.hold()
LiveSession.objects.filter(pk=int(sys.argv[1])).update(worker=name, status="active")
print(name, flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start a process holding a new open session (the database must be shared: PostgreSQL)."""
    if connection.vendor != "postgresql":
        skip_or_fail("a second process needs the test database on PostgreSQL (DATABASE_URL)")
    session = LiveSessionFactory.create(status=LiveSession.Status.CONNECTING)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apsara.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(session.pk)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        name = process.stdout.readline().strip()
        assert name, "the holder did not start"
        yield process, session.pk
    finally:
        process.kill()
        process.wait(10)


def claim(pk: int) -> services.Claim:
    session = LiveSession.objects.get(pk=pk)
    return services.live_session_claim(
        user=session.user, session_id=session.public_id, channel_name="specific.new!socket", worker=worker_name()
    )


def test_a_session_of_a_live_process_is_in_use_and_of_a_killed_one_is_taken_over_within_3_s(holder_process):
    process, pk = holder_process
    # Alive: refused for longer than a lease lasts (its thread keeps renewing).
    until = time.monotonic() + 2.5
    while time.monotonic() < until:
        with pytest.raises(ProtocolError) as refused:
            claim(pk)
        assert refused.value.code is ErrorCode.SESSION_IN_USE
        time.sleep(0.25)
    process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    process.wait(10)
    while True:
        try:
            taken = claim(pk)
            break
        except ProtocolError as error:
            assert error.code is ErrorCode.SESSION_IN_USE
            assert time.monotonic() - killed < 10, "never taken over"
            time.sleep(0.05)
    took = time.monotonic() - killed
    print(f"\ntaken over {took:.2f} s after SIGKILL (lease {2.0} s)")
    assert took <= 3.0
    assert taken.cause is services.ResumeCause.CRASH
    assert taken.session.worker == worker_name() and taken.session.status == LiveSession.Status.CONNECTING


def test_the_lease_is_renewed_while_held_and_runs_out_when_nothing_is(settings):
    settings.LIVE_LEASE_SECONDS = 0.4
    lease = WorkerLease()
    name = lease.hold()
    first = LiveWorker.objects.get(name=name).expires_at
    time.sleep(0.5)
    assert LiveWorker.objects.alive().filter(name=name).exists()
    assert LiveWorker.objects.get(name=name).expires_at > first
    lease.let_go()
    time.sleep(0.6)  # the renewer stops at its next turn, and the lease runs out
    assert not LiveWorker.objects.alive().filter(name=name).exists()
    lease.hold()  # held again: a new renewer
    time.sleep(0.3)
    assert LiveWorker.objects.alive().filter(name=name).exists()
    lease.release()
    assert not LiveWorker.objects.filter(name=name).exists()


def test_a_lease_that_ran_out_while_held_is_taken_again_and_reported(settings):
    lapses: list[bool] = []
    lease = WorkerLease()
    lease.on_lapse = lambda: lapses.append(True)
    name = lease.hold()
    LiveWorker.objects.filter(name=name).update(expires_at=timezone.now() - timedelta(seconds=1))  # a long stall
    lease.hold()  # the next session's hold finds it run out: taken again, and the sessions are checked
    assert lapses == [True]
    assert LiveWorker.objects.alive().filter(name=name).exists()
    lease.release()
