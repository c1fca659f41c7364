"""The production topology (deploy/): nginx round robin over two ``apsara.serve`` workers, on real PostgreSQL, Redis
and SeaweedFS, Gemini being the test's simulator. Real processes, as tests/live/real_servers.py runs them."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

from websockets.sync.client import connect
from websockets.typing import Origin

from deploy.cluster import Cluster, get_json, nginx_executable, render_nginx_conf
from deploy.seaweed import S3_BUCKET, free_port
from tests.live.real_servers import run_django, setup_user
from tests.services import skip_or_fail

# A documentation address (RFC 5737): what a client claims to be, which must never be believed.
FORGED = "203.0.113.9"
# The test's own address, distinct from nginx's 127.0.0.1: the whole of 127/8 is loopback on Linux.
CLIENT = "127.0.0.2"

FAILED_LOGINS = """
import django
django.setup()
from axes.models import AccessAttempt
print(sorted({str(a.ip_address) for a in AccessAttempt.objects.all()}))
"""

SAVE_AUDIO = """
import django
django.setup()
from django.core.files.base import ContentFile
from django.core.files.storage import storages
print(storages["audio"].save("deploy-check/probe.txt", ContentFile(b"stored by a worker")))
"""


def request(
    cluster: Cluster, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, str]:
    """One request to nginx from the test's own loopback address; return status, headers and text."""
    connection = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10, source_address=(CLIENT, 0))
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def sockets_accepted(cluster: Cluster) -> list[int]:
    """How many /live sockets each worker has accepted so far (from its access log)."""
    return [worker.log.read_text(errors="replace").count('"WebSocket /live" [accepted]') for worker in cluster.workers]


def test_nginx_spreads_requests_and_sockets_over_both_workers(cluster: Cluster) -> None:
    """HTTP and /live through nginx reach both workers; the client's address reaches Django and a forged one does
    not; a browser's login form and socket origin pass through; the workers store audio in SeaweedFS."""
    assert request(cluster, "GET", "/nginx-health")[0] == 200
    names = {get_json(f"{cluster.url}/live/health")[1]["worker"] for _ in range(6)}
    assert names == {worker.name for worker in cluster.workers}

    _, cookie = setup_user(cluster.worker_env())
    before = sockets_accepted(cluster)
    for _ in range(4):
        url = cluster.url.replace("http://", "ws://") + "/live"
        with connect(url, origin=Origin(cluster.url), additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "ping"}))
            while (message := json.loads(ws.recv(timeout=10)))["type"] != "pong":
                pass
            assert message["protocolVersion"]
    after = sockets_accepted(cluster)
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 2]  # round robin: no stickiness

    # The login form through nginx: its CSRF check passes (Host keeps nginx's port), and the failure is counted
    # against the address nginx saw, not the one the client wrote into X-Forwarded-For.
    _, headers, page = request(cluster, "GET", "/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    csrf_cookie = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", ""))
    assert token and csrf_cookie, page
    form = {"csrfmiddlewaretoken": token[1], "username": "nobody", "password": "wrong"}
    status, _, answer = request(
        cluster,
        "POST",
        "/login/",
        urllib.parse.urlencode(form),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie[1]}",
            "Origin": cluster.url,
            "X-Forwarded-For": FORGED,
        },
    )
    assert status == 200 and "correct username and password" in answer, answer  # not 403: CSRF passed
    assert run_django(cluster.worker_env(), FAILED_LOGINS) == str([CLIENT])

    assert cluster.s3 is not None
    key = run_django(cluster.worker_env(), SAVE_AUDIO)
    stored = cluster.s3.client().get_object(Bucket=S3_BUCKET, Key=key)
    assert stored["Body"].read() == b"stored by a worker"


class Traffic:
    """Requests through nginx, one after another on a thread, until stopped: what each got, and every failure."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.served: list[str] = []  # the worker that answered each request, in order
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = get_json(f"{self.cluster.url}/live/health", timeout=10)
                if status == 200:
                    self.served.append(body["worker"])
                else:
                    self.failures.append(f"{status} {body}")
            except Exception as error:
                self.failures.append(repr(error))
            time.sleep(0.01)  # steady traffic, leaving the two cores to the servers

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def count_now(self) -> int:
        return len(self.served) + len(self.failures)

    def wait_for(self, requests: int) -> None:
        target = self.count_now() + requests
        deadline = time.monotonic() + 30
        while self.count_now() < target and time.monotonic() < deadline:
            time.sleep(0.02)


def test_a_rolling_restart_and_a_crash_lose_no_request(cluster: Cluster) -> None:
    """Requests keep flowing through nginx while each worker in turn is stopped and started again (SIGTERM: it
    refuses new connections, nginx tries the other), and after one is killed outright: none fails."""
    old = {worker.name for worker in cluster.workers}
    with Traffic(cluster) as traffic:
        traffic.wait_for(20)
        cluster.restart(0)
        cluster.restart(1)
        traffic.wait_for(20)
        new = {worker.name for worker in cluster.workers}
        assert not new & old  # both are new processes...
        assert new <= set(traffic.served[-20:])  # ...and nginx sends requests to both

        cluster.kill(0)  # a crash: connections refused from now on
        killed_at = traffic.count_now()
        traffic.wait_for(40)
    assert traffic.failures == []
    assert set(traffic.served[killed_at + 1 :]) == {cluster.workers[1].name}
    assert len(traffic.served) > 100
    cluster.restart(0)  # back to two workers for whatever runs next


def test_the_rendered_config_is_valid_nginx(tmp_path: Path) -> None:
    """Every placeholder is filled and ``nginx -t`` accepts the result, as an unprivileged prefix install."""
    nginx = nginx_executable()
    if nginx is None:
        skip_or_fail("nginx is not installed (scripts/install-system-packages.sh)")
    assert nginx is not None
    for sub in ("logs", "temp"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(run_dir=tmp_path, listen=f"127.0.0.1:{free_port()}", worker_ports=[8001, 8002]))
    text = conf.read_text()
    assert "server 127.0.0.1:8001 max_fails=1" in text and "server 127.0.0.1:8002 max_fails=1" in text
    assert not re.search(r"^\s*(ip_hash|hash|sticky|least_conn)\b", text, re.MULTILINE)  # plain round robin
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "logs" / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
