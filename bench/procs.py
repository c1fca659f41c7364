"""Child processes of the benchmark (simulator, daphne, baseline) and what /proc says about them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def cpus() -> list[int]:
    """CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def renice(pid: int, niceness: int | None) -> None:
    """Set a process's scheduling niceness (negative needs privileges); no-op when None."""
    if niceness is not None:
        os.setpriority(os.PRIO_PROCESS, pid, niceness)


def pin(pid: int, cpu_set: Sequence[int] | None) -> None:
    """Restrict a process (0: this one) to ``cpu_set``; no-op when None."""
    if cpu_set:
        os.sched_setaffinity(pid, set(cpu_set))


class Child:
    """A child process started by the benchmark; stopped by its own pid only."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path,
        log: Path,
        cpu_set: Sequence[int] | None = None,
        niceness: int | None = None,
        reports: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            # Only a child that reports readiness on stdout gets a pipe: one nobody reads fills up and then
            # blocks the child's writes (daphne's access log would freeze the whole server).
            stdout=subprocess.PIPE if reports else self._log,
            stderr=self._log,
        )
        pin(self.proc.pid, cpu_set)
        renice(self.proc.pid, niceness)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_line(self, timeout: float) -> str:
        """Read one line of the child's stdout (its readiness report)."""
        import selectors

        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"{self.name} did not report within {timeout}s; see {self.log_path}")
        line = self.proc.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"{self.name} exited ({self.proc.poll()}); see {self.log_path}")
        return line

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Terminate, then kill if it does not exit within 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(Exception):
            self._log.close()


def wait_for_port(port: int, child: Child, timeout: float = 60.0) -> None:
    """Wait until something accepts TCP connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited ({child.proc.returncode}); see {child.log_path}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} did not listen on {port} within {timeout}s; see {child.log_path}")
