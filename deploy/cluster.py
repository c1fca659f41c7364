"""Run the production topology on one machine: nginx in front of N ``apsara.serve`` workers.

``python -m deploy.cluster --workers 2 --port 8080 [--seaweedfs DIR]``: migrates once, starts the workers on
loopback ports, waits until each answers ``/live/health``, renders ``deploy/nginx.conf`` into the run directory and
runs nginx in the foreground, then supervises until Ctrl-C or SIGTERM stops everything. PostgreSQL, Redis and S3
are whatever the environment configures (``DATABASE_URL``, ``REDIS_URL``, ``AUDIO_STORAGE``/``AWS_*``); with
``--seaweedfs DIR`` a local SeaweedFS serves S3 instead. The tests drive the same :class:`Cluster` (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from deploy.seaweed import SeaweedS3, free_port, free_ports

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("nginx.conf")
# A refused connection is certain: one is enough to skip a worker, and it is tried again this soon.
FAIL_TIMEOUT_SECONDS = 2


def nginx_executable() -> str | None:
    """Find Debian's nginx (``/usr/sbin`` is not on every user's PATH)."""
    return shutil.which("nginx") or (shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))


def render_nginx_conf(
    *,
    run_dir: Path,
    listen: str,
    worker_ports: list[int],
    worker_processes: str = "auto",
    client_max_body_size: str = "4m",
    live_timeout: str = "24h",
) -> str:
    """Fill in ``deploy/nginx.conf``: the listen address, one upstream server per worker, and the run directory."""
    servers = "\n".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;" for port in worker_ports
    )
    values = {
        "run_dir": str(run_dir),
        "listen": listen,
        "upstream_servers": servers,
        "worker_processes": worker_processes,
        "client_max_body_size": client_max_body_size,
        "live_timeout": live_timeout,
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    if re.search(r"@\w+@", text):  # a placeholder nobody filled in would be a confusing nginx error later
        raise ValueError(f"unfilled placeholder in {TEMPLATE}")
    return text


def get_json(url: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """GET ``url``; return its status and JSON body (non-2xx answers included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own http:// URLs)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@dataclass
class Worker:
    """One ``apsara.serve`` process on a loopback port; its output goes to ``log`` (appended across restarts)."""

    index: int
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    name: str = ""  # live.lease.worker_name() of the running process, as its /live/health reports it

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def url(self) -> str:
        """The worker itself, bypassing nginx (for health probes and ``/metrics``, which are per process)."""
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Cluster:
    """nginx on ``host:port`` load-balancing ``count`` workers; optionally a local SeaweedFS for S3.

    Use as a context manager (or ``start()``/``stop()``). ``env`` is the workers' environment (default: this
    process's); the settings module is ``apsara.settings.production`` unless it sets ``DJANGO_SETTINGS_MODULE``.
    """

    run_dir: Path
    count: int = 2
    port: int = 8080  # 0: a free port
    host: str = "127.0.0.1"
    env: Mapping[str, str] | None = None
    seaweedfs: Path | None = None
    worker_ports: list[int] | None = None  # default: free loopback ports
    start_timeout: float = 60
    stop_timeout: float = 60  # a worker's graceful stop (it may be draining live calls)
    workers: list[Worker] = field(default_factory=list, init=False)
    nginx: subprocess.Popen[bytes] | None = field(default=None, init=False)
    s3: SeaweedS3 | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """nginx's base URL, what browsers use."""
        return f"http://{self.host}:{self.port}"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def worker_env(self) -> dict[str, str]:
        """The environment of every worker (and of ``migrate``)."""
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("DJANGO_SETTINGS_MODULE", "apsara.settings.production")
        if self.s3 is not None:
            env.update(self.s3.django_env())
        return env

    def start(self) -> None:
        """Start everything and wait until nginx and every worker answer; on any failure stop what started."""
        nginx = nginx_executable()
        if nginx is None:
            raise RuntimeError("nginx is not installed (scripts/install-system-packages.sh installs it)")
        for sub in ("logs", "temp"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        ports = self.worker_ports or free_ports(self.count)
        self.workers = [Worker(i, port, self.logs / f"worker-{i}.log") for i, port in enumerate(ports)]
        try:
            if self.seaweedfs is not None:  # it takes seconds to be ready: meanwhile, migrate and start workers
                self.s3 = SeaweedS3(directory=self.seaweedfs)
                self.s3.launch()
            self._migrate()
            for worker in self.workers:  # all at once: they start in parallel, then each is waited for
                self._spawn(worker)
            if self.s3 is not None:
                self.s3.wait_ready()
            for worker in self.workers:
                self._wait_healthy(worker)
            conf = self.run_dir / "nginx.conf"
            conf.write_text(
                render_nginx_conf(run_dir=self.run_dir, listen=f"{self.host}:{self.port}", worker_ports=ports)
            )
            command = [nginx, "-p", str(self.run_dir), "-c", str(conf), "-e", str(self.logs / "error.log")]
            with (self.logs / "nginx.out").open("ab") as out:
                self.nginx = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_nginx()
        except BaseException:
            self.stop()
            raise

    def _migrate(self) -> None:
        # Once, before any worker: workers never race each other over the schema.
        with (self.logs / "migrate.log").open("ab") as out:
            done = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                env=self.worker_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{_tail(self.logs / 'migrate.log')}")

    def _spawn(self, worker: Worker) -> None:
        command = [sys.executable, "-m", "apsara.serve", "--host", "127.0.0.1", "--port", str(worker.port)]
        with worker.log.open("ab") as out:
            # Its own session: a Ctrl-C in the terminal reaches the supervisor only, which stops workers in order.
            worker.process = subprocess.Popen(
                command, cwd=ROOT, env=self.worker_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_healthy(self, worker: Worker) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not worker.running():
                raise RuntimeError(f"worker {worker.index} exited:\n{_tail(worker.log)}")
            try:
                status, body = get_json(f"{worker.url}/live/health", timeout=5)
                if status == 200:
                    worker.name = str(body.get("worker", ""))
                    return
            except (OSError, ValueError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {worker.index} not healthy in {self.start_timeout}s:\n{_tail(worker.log)}")
            time.sleep(0.2)

    def _wait_nginx(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.nginx is None or self.nginx.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{_tail(self.logs / 'error.log')}{_tail(self.logs / 'nginx.out')}")
            try:
                with urllib.request.urlopen(f"{self.url}/nginx-health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer in {self.start_timeout}s:\n{_tail(self.logs / 'error.log')}")
            time.sleep(0.1)

    def kill(self, index: int) -> None:
        """SIGKILL worker ``index`` (a crash: nothing is drained) and reap it."""
        process = self.workers[index].process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def terminate(self, index: int) -> int:
        """SIGTERM worker ``index`` (what a process manager sends) and wait until it exits; return its exit code."""
        worker = self.workers[index]
        if worker.process is None:
            return 0
        if worker.process.poll() is None:
            worker.process.terminate()
            try:
                worker.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(10)
                raise RuntimeError(f"worker {index} did not stop within {self.stop_timeout}s") from None
        return worker.process.returncode

    def restart(self, index: int) -> None:
        """One step of a rolling restart: stop worker ``index`` gracefully, start it again on its port, and return
        once nginx sends it requests again (so the next worker may go)."""
        worker = self.workers[index]
        self.terminate(index)
        self._spawn(worker)
        self._wait_healthy(worker)
        # nginx skips a worker for fail_timeout after a refused connection; stopping the next one before nginx
        # takes this one back would leave no worker to send requests to.
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                if get_json(f"{self.url}/live/health", timeout=5)[1].get("worker") == worker.name:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not send requests to the restarted worker {index}")

    def stop(self) -> None:
        """Stop everything: workers get SIGTERM (and are waited for), nginx SIGQUIT (a graceful stop), S3 last."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # stops accepting; finishes what is in flight
        for worker in self.workers:  # all at once: each drains its own live calls meanwhile
            if worker.running():
                assert worker.process is not None
                worker.process.terminate()
        errors = []
        for worker in self.workers:
            try:
                self.terminate(worker.index)
            except RuntimeError as error:
                errors.append(str(error))
        if self.nginx is not None:
            try:
                self.nginx.wait(35)  # worker_shutdown_timeout is 30 s
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait(10)
        if self.s3 is not None:
            self.s3.stop()
        if errors:
            raise RuntimeError("; ".join(errors))

    def supervise(self) -> None:
        """Until interrupted: restart a worker that exits on its own; give up if nginx does."""
        while True:
            if self.nginx is None or self.nginx.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{_tail(self.logs / 'error.log')}")
            for worker in self.workers:
                if not worker.running():
                    print(f"worker {worker.index} exited; starting it again", file=sys.stderr)
                    self._spawn(worker)
                    self._wait_healthy(worker)
            time.sleep(1)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    except OSError:
        return f"({path} missing)\n"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, start the cluster and supervise it until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="nginx load-balancing N apsara.serve workers (docs/deploy.md).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080, help="nginx's port")
    parser.add_argument("--host", default="127.0.0.1", help="nginx's address (0.0.0.0: every interface)")
    parser.add_argument("--first-worker-port", type=int, default=0, help="workers on consecutive ports (0: free)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".cluster", help="nginx.conf, logs, pid, temp")
    parser.add_argument("--seaweedfs", type=Path, metavar="DIR", help="run a local SeaweedFS S3 with data in DIR")
    args = parser.parse_args(argv)
    first = args.first_worker_port
    cluster = Cluster(
        run_dir=args.run_dir.resolve(),
        count=args.workers,
        port=args.port,
        host=args.host,
        seaweedfs=args.seaweedfs.resolve() if args.seaweedfs else None,
        worker_ports=[first + i for i in range(args.workers)] if first else None,
    )

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # one path out, whichever signal

    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(signum, stop_on_signal)
    try:
        cluster.start()
        for worker in cluster.workers:
            print(f"worker {worker.index}: pid {worker.pid}, {worker.url}, log {worker.log}")
        print(f"nginx: pid {cluster.nginx.pid if cluster.nginx else '?'}, {cluster.url} (Ctrl-C stops everything)")
        cluster.supervise()
    except KeyboardInterrupt:
        print("stopping...", file=sys.stderr)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
