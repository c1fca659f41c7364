"""``python -m bench``: the live bridge against the baseline proxy, over a direct connection to gemini_sim.

One run: start gemini_sim (echo mode), Apsara as production serves it (``apsara.serve``), and ``bench.baseline``;
then
1. a leak check on each server: 3 cycles of 100 sessions connecting, streaming a few frames and disconnecting;
2. capacity steps: at each N, N full-duplex sessions straight to the sim (the floor), through the baseline and
   through the bridge, measuring one-way latency per 40 ms frame, CPU and memory of the server process.
Results go to ``bench/results/`` (JSON and the printed table). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import ssl
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.frames import FRAME_MS
from bench.loadgen import CONNECT_CONCURRENCY, SessionResult, Target, connect_cycle, run_session

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BOUND_MS = 5.0  # p99 added latency per direction that a step must stay within
MAX_LOSS = 0.001  # fraction of frames that may go missing in a passing step
SERVERS = ("baseline", "bridge", "bridge-daphne")  # bridge: as served in production (apsara.serve); -daphne: same app
CHILD_OF = {"baseline": "baseline", "bridge": "uvicorn", "bridge-daphne": "daphne"}  # target → its process
LEAK_BOUND = 0.10  # RSS after the cycles may exceed RSS after the warm-up cycle by this fraction
SETTLE_SECONDS = 3.0  # after a cycle, for closes and recording flushes to finish before RSS is read
HARNESS_LIMIT_PERCENT = 70.0  # per harness CPU; above it the step measures the harness as much as the server


def percentile(values: list[int], q: float) -> float | None:
    """Nearest-rank percentile of ``values`` in milliseconds (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered) / 100))) - 1
    return ordered[rank] / 1e6


@dataclass
class StepResult:
    """One target at one N."""

    target: str
    sessions: int
    connected: int = 0
    connect_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: int = 0
    sent: int = 0
    received: int = 0
    lost: int = 0
    reordered: int = 0
    untagged_bytes: int = 0
    up_ms: dict[str, float | None] = field(default_factory=dict)
    down_ms: dict[str, float | None] = field(default_factory=dict)
    added_up_ms: dict[str, float | None] = field(default_factory=dict)
    added_down_ms: dict[str, float | None] = field(default_factory=dict)
    sender_late_p99_ms: float | None = None
    server_cpu_s: float | None = None
    cpu_s_per_audio_min: float | None = None
    server_cpu_percent: float | None = None
    server_rss_idle_mb: float | None = None
    server_rss_mb: float | None = None
    rss_per_session_kb: float | None = None
    rss_growth_kb_per_session_s: float | None = None  # RSS growth while streaming (e.g. recording buffers)
    cpu_us_per_frame: float | None = None  # server CPU per 40 ms frame relayed (one up and one down per echo)
    harness_warning: str = ""
    loadgen_cpu_percent: float | None = None
    sim_cpu_percent: float | None = None
    passed: bool | None = None
    why: str = ""


def summarise(step: StepResult, results: list[SessionResult]) -> None:
    """Fold per-session results into the step."""
    up = [v for r in results for v in r.up_ns]
    down = [v for r in results for v in r.down_ns]
    late = [v for r in results for v in r.late_ns]
    step.connected = sum(r.connected for r in results)
    step.connect_errors = sorted({r.error for r in results if not r.connected})[:3]
    step.errors = sorted(
        {r.error for r in results if r.connected and r.error} | {e for r in results for e in r.server_errors}
    )[:5]
    step.samples = len(up)
    step.sent = sum(r.sent for r in results)
    step.received = sum(r.received for r in results)
    step.lost = sum(r.lost for r in results)
    step.reordered = sum(r.reordered for r in results)
    step.untagged_bytes = sum(r.untagged_bytes for r in results)
    for name, values in (("up_ms", up), ("down_ms", down)):
        setattr(
            step, name, {f"p{q:g}": percentile(values, q) for q in (50, 99, 99.9)} | {"max": percentile(values, 100)}
        )
    step.sender_late_p99_ms = percentile(late, 99)


class Bench:
    """Owns the child processes and runs the phases."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.children: dict[str, procs.Child] = {}
        all_cpus = procs.cpus()
        pin = args.pin and len(all_cpus) >= 2
        # The servers under test on one CPU; the load generator and the simulator on the other(s).
        self.server_cpus = all_cpus[:1] if pin else None
        self.harness_cpus = all_cpus[1:] if pin else None
        self.targets: dict[str, Target] = {}

    # PROCESSES
    # ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the simulator, prepare the database, start daphne and the baseline; fill ``self.targets``."""
        procs.pin(0, self.harness_cpus)
        procs.renice(0, self.args.nice)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        if self.args.gemini_url:
            info = {"base_url": self.args.gemini_url, "ca_path": self.args.gemini_ca}
        else:
            sim = self._child(
                "sim", ["-m", "bench.sim_process", str(self.workdir / "sim")], env, self.harness_cpus, reports=True
            )
            info = json.loads(sim.read_line(60))
        sim_ssl = ssl.create_default_context(cafile=info["ca_path"])

        app_env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "apsara.settings.production",
            "DJANGO_SECRET_KEY": "bench-only-secret",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_COOKIES": "0",
            "DATABASE_URL": self.args.database_url or f"sqlite:///{self.workdir / 'bench.sqlite3'}",
            "GEMINI_API_KEY": "bench",
            "GEMINI_BASE_URL": info["base_url"],
            "GEMINI_CA_FILE": info["ca_path"],
            "GEMINI_LIVE_MODEL": self.args.model,
            "MEDIA_ROOT": str(self.workdir / "media"),
            "AUDIO_STORAGE": "local",
            "LIVE_MAX_SESSIONS_PER_USER": "3",
            "LOG_LEVEL": "WARNING",
        }
        if self.args.redis_url:
            app_env["REDIS_URL"] = self.args.redis_url
            app_env["CHANNEL_LAYER_PREFIX"] = f"bench{os.getpid()}"
        else:
            app_env.pop("REDIS_URL", None)
        users = max(max(self.args.sessions), self.args.cycle_sessions)
        prep = self._child("prep", ["-m", "bench.django_prep", str(users)], app_env, self.harness_cpus, reports=True)
        cookies = json.loads(prep.read_line(180))["cookies"]
        prep.stop()

        self.targets = {
            "direct": Target("direct", info["base_url"].replace("https://", "wss://"), self.args.model, ssl=sim_ssl)
        }
        waits = []
        for name, process in CHILD_OF.items():
            if name not in self.args.targets:
                continue
            port = procs.free_port()
            if name == "baseline":
                args = ["-m", "bench.baseline", "--port", str(port), "--gemini-url", info["base_url"],
                        "--ca", info["ca_path"], "--model", self.args.model]  # fmt: skip
                self.targets[name] = Target("baseline", f"ws://127.0.0.1:{port}/", self.args.model)
            else:
                if process == "daphne":
                    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "apsara.asgi:application"]
                else:
                    args = ["-m", "apsara.serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                            "--log-level", "warning"]  # fmt: skip
                if self.args.profile:
                    args = ["-m", "cProfile", "-o", str(RESULTS / f"{process}.prof"), *args]
                self.targets[name] = Target(
                    "bridge",
                    f"ws://127.0.0.1:{port}/live",
                    self.args.model,
                    cookies=cookies,
                    origin=f"http://127.0.0.1:{port}",
                )
            server_env = env if name == "baseline" else app_env
            if process == "daphne" and not self.args.database_url:
                # Its own copy of the prepared SQLite file: two servers writing one SQLite file lock each other
                # ("database is locked" while one flushes its step's recordings), failing sessions.
                copy = self.workdir / "bench-daphne.sqlite3"
                shutil.copyfile(self.workdir / "bench.sqlite3", copy)
                server_env = {**app_env, "DATABASE_URL": f"sqlite:///{copy}"}
            child = self._child(process, args, server_env, self.server_cpus)
            waits.append((port, child))
        for port, child in waits:
            procs.wait_for_port(port, child)

    def _child(
        self, name: str, args: list[str], env: dict[str, str], cpu_set: list[int] | None, *, reports: bool = False
    ) -> procs.Child:
        child = procs.Child(
            name,
            args,
            env=env,
            cwd=ROOT,
            log=self.workdir / f"{name}.log",
            cpu_set=cpu_set,
            niceness=self.args.nice,
            reports=reports,
        )
        self.children[name] = child
        return child

    def stop(self) -> None:
        """Stop every child this run started."""
        for child in reversed(list(self.children.values())):
            with contextlib.suppress(Exception):
                if child.proc.stdin:
                    child.proc.stdin.close()
            child.stop()

    def server_pid(self, target: str) -> int | None:
        return self.children[CHILD_OF[target]].pid if target in CHILD_OF else None

    # PHASES
    # ------------------------------------------------------------------------------
    async def leak_check(self, target: str) -> dict[str, Any]:
        """RSS of the server around ``cycles`` cycles of ``cycle_sessions`` connects and disconnects.

        Python keeps freed heap for reuse, so the first cycle at a given size raises RSS in any server (the
        baseline too). The verdict compares RSS after the measured cycles with RSS after one warm-up cycle of the
        same size ("warm"); growth over the idle server ("cold") is reported as well.
        """
        pid = self.server_pid(target)
        assert pid is not None
        await connect_cycle(self.targets[target], 5)  # load code paths and pools once
        await asyncio.sleep(2)
        cold = procs.rss_bytes(pid)
        warmup = await connect_cycle(self.targets[target], self.args.cycle_sessions)
        await asyncio.sleep(SETTLE_SECONDS)
        before = procs.rss_bytes(pid)
        cycles = [{**warmup, "warm_up": True, "rss_mb": round(before / 2**20, 1)}]
        for _ in range(self.args.cycles):
            cycle = await connect_cycle(self.targets[target], self.args.cycle_sessions)
            await asyncio.sleep(SETTLE_SECONDS)  # let closes and flushes finish
            cycles.append({**cycle, "rss_mb": round(procs.rss_bytes(pid) / 2**20, 1)})
        after = procs.rss_bytes(pid)
        growth = after / before - 1
        return {
            "sessions_per_cycle": self.args.cycle_sessions,
            "rss_idle_mb": round(cold / 2**20, 1),
            "rss_before_mb": round(before / 2**20, 1),
            "rss_after_mb": round(after / 2**20, 1),
            "growth_percent": round(growth * 100, 1),
            "cold_growth_percent": round((after / cold - 1) * 100, 1),
            "cycles": cycles,
            "passed": growth <= LEAK_BOUND and all(c["ok"] == self.args.cycle_sessions for c in cycles),
        }

    async def step(self, target_name: str, sessions: int) -> StepResult:
        """Hold ``sessions`` full-duplex sessions on one target and measure inside a common window."""
        target = self.targets[target_name]
        step = StepResult(target_name, sessions)
        pid = self.server_pid(target_name)
        sim_pid = self.children["sim"].pid if "sim" in self.children else None
        if pid:
            await asyncio.sleep(1)
            step.server_rss_idle_mb = procs.rss_bytes(pid) / 2**20
        results = [SessionResult() for _ in range(sessions)]
        connected = [asyncio.Event() for _ in range(sessions)]
        limiter = asyncio.Semaphore(CONNECT_CONCURRENCY)
        window: tuple[int, int] | None = None
        stop_at: float | None = None
        frame_ns = FRAME_MS * 1_000_000
        runs = [
            asyncio.create_task(
                run_session(
                    target,
                    i,
                    offset_ns=(i * frame_ns) // sessions,  # spread sends evenly over the 40 ms period
                    stop_at=lambda: stop_at,
                    window=lambda: window,
                    connected=connected[i],
                    limiter=limiter,
                    result=results[i],
                )
            )
            for i in range(sessions)
        ]
        marks: dict[str, float] | None = None
        end_marks: dict[str, float] | None = None
        rss_growth = 0
        try:
            with contextlib.suppress(TimeoutError):  # whoever has not connected by then counts as failed
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 120)
            start = time.monotonic_ns() + int(self.args.warmup * 1e9)
            window = (start, start + int(self.args.duration * 1e9))
            await asyncio.sleep(self.args.warmup)
            marks = self._marks(pid, sim_pid)
            rss_start = procs.rss_bytes(pid) if pid else 0
            await asyncio.sleep(self.args.duration)
            end_marks = self._marks(pid, sim_pid)
            if pid:
                step.server_rss_mb = procs.rss_bytes(pid) / 2**20
                rss_growth = procs.rss_bytes(pid) - rss_start
            stop_at = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 60)
        finally:
            stop_at = time.monotonic()
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
        summarise(step, results)
        if marks is None or end_marks is None:
            return step
        elapsed = end_marks["t"] - marks["t"]
        step.loadgen_cpu_percent = round((end_marks["self"] - marks["self"]) / elapsed * 100, 1)
        step.sim_cpu_percent = round((end_marks["sim"] - marks["sim"]) / elapsed * 100, 1)
        if pid:
            step.server_cpu_s = round(end_marks["server"] - marks["server"], 2)
            step.server_cpu_percent = round(step.server_cpu_s / elapsed * 100, 1)
            audio_minutes = step.connected * elapsed / 60
            step.cpu_s_per_audio_min = round(step.server_cpu_s / audio_minutes, 3) if audio_minutes else None
            frames = step.connected * elapsed * 1000 / FRAME_MS * 2  # each direction
            step.cpu_us_per_frame = round(step.server_cpu_s * 1e6 / frames, 1) if frames else None
        harness = (step.loadgen_cpu_percent or 0) + (step.sim_cpu_percent or 0)
        if harness > HARNESS_LIMIT_PERCENT * max(1, len(self.harness_cpus or procs.cpus())):
            step.harness_warning = f"load generator + sim used {harness:.0f}% CPU: the harness may be the bottleneck"
        if pid and step.connected and step.server_rss_mb is not None and step.server_rss_idle_mb is not None:
            step.rss_per_session_kb = round((step.server_rss_mb - step.server_rss_idle_mb) * 1024 / step.connected, 1)
            step.rss_growth_kb_per_session_s = round(rss_growth / 1024 / step.connected / self.args.duration, 1)
        return step

    @staticmethod
    def _marks(pid: int | None, sim_pid: int | None) -> dict[str, float]:
        times = os.times()
        return {
            "t": time.monotonic(),
            "self": times.user + times.system,
            "sim": procs.cpu_seconds(sim_pid) if sim_pid else 0.0,
            "server": procs.cpu_seconds(pid) if pid else 0.0,
        }

    async def capacity(self) -> list[StepResult]:
        """Step N up; each server stops stepping after its first failing step."""
        steps: list[StepResult] = []
        failed: set[str] = set()
        for n in self.args.sessions:
            direct = await self.step("direct", n)
            direct.passed = direct.connected == n and (direct.lost <= MAX_LOSS * max(direct.sent, 1))
            steps.append(direct)
            self._print_step(direct)
            for name in SERVERS:
                if name in failed or name not in self.args.targets:
                    continue
                step = await self.step(name, n)
                judge(step, direct)
                for _ in range(self.args.retries):
                    if step.passed or not harness_stalled(step, direct):
                        break
                    # The load generator itself ran late: the machine was busy, not necessarily the server.
                    self._print_step(step)
                    print(f"  (harness stalled: sender late p99 {fmt(step.sender_late_p99_ms)} ms; measuring again)")
                    step = await self.step(name, n)
                    judge(step, direct)
                steps.append(step)
                self._print_step(step)
                if not step.passed:
                    failed.add(name)
            if self.args.targets and failed >= set(self.args.targets):
                break
        return steps

    @staticmethod
    def _print_step(step: StepResult) -> None:
        up, down = step.up_ms, step.down_ms
        added = ""
        if step.target != "direct":
            added = f" added p99 up {fmt(step.added_up_ms.get('p99'))} down {fmt(step.added_down_ms.get('p99'))}"
        verdict = "" if step.passed is None else (" PASS" if step.passed else f" FAIL ({step.why})")
        print(
            f"  N={step.sessions:<4} {step.target:<8} connected {step.connected:>4}  "
            f"up p50/p99 {fmt(up.get('p50'))}/{fmt(up.get('p99'))}  down p50/p99 {fmt(down.get('p50'))}/"
            f"{fmt(down.get('p99'))} ms{added}  lost {step.lost}  cpu {fmt(step.server_cpu_percent)}%  "
            f"lg {fmt(step.loadgen_cpu_percent)}% sim {fmt(step.sim_cpu_percent)}%{verdict}"
            + (f"  [{step.harness_warning}]" if step.harness_warning else ""),
            flush=True,
        )


def harness_stalled(step: StepResult, direct: StepResult) -> bool:
    """Tell whether the load generator's own sends ran late enough to explain a failure."""
    late = step.sender_late_p99_ms or 0.0
    return late > max(BOUND_MS, 2 * (direct.sender_late_p99_ms or 0.0))


def judge(step: StepResult, direct: StepResult) -> None:
    """Added latency = the target's percentile minus the direct connection's at the same N; pass or fail."""
    for name in ("up_ms", "down_ms"):
        mine, floor = getattr(step, name), getattr(direct, name)
        setattr(
            step,
            f"added_{name}",
            {q: (None if mine.get(q) is None or floor.get(q) is None else round(mine[q] - floor[q], 3)) for q in mine},
        )
    reasons = []
    if step.connected < step.sessions:
        reasons.append(f"{step.sessions - step.connected} failed to connect: {step.connect_errors[:1]}")
    if step.lost > MAX_LOSS * max(step.sent, 1):
        reasons.append(f"{step.lost} frames lost")
    for name in ("added_up_ms", "added_down_ms"):
        value = getattr(step, name).get("p99")
        if value is None:
            reasons.append(f"no {name[6:-3]} samples")
        elif value > BOUND_MS:
            reasons.append(f"p99 added {name[6:-3]} {value:.2f} ms > {BOUND_MS} ms")
    step.passed = not reasons
    step.why = "; ".join(reasons)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def report(leaks: dict[str, Any], steps: list[StepResult], args: argparse.Namespace) -> str:
    """Build the summary table."""
    lines = ["", "Apsara live bridge vs baseline proxy (gemini_sim echo, 40 ms PCM16 frames both ways)", ""]
    columns = [name for name in SERVERS if name in args.targets]
    capacity: dict[str, int] = dict.fromkeys(SERVERS, 0)
    for name in columns:
        passing = [s.sessions for s in steps if s.target == name and s.passed]
        capacity[name] = max(passing, default=0)
    header = f"{'':34}" + "".join(f"{name:>22}" for name in columns)
    lines.append(header)

    def row(label: str, values: dict[str, str]) -> None:
        lines.append(f"{label:34}" + "".join(f"{values.get(name, '-'):>22}" for name in columns))

    at = {}
    for name in columns:
        mine = [s for s in steps if s.target == name]
        at[name] = next((s for s in mine if s.sessions == capacity[name]), mine[0] if mine else None)
    ref = {
        name: next((s for s in steps if s.target == name and s.sessions == args.report_at), None) for name in columns
    }
    for name in columns:
        if ref[name] is None:
            ref[name] = at[name]
    row("most sessions, p99 added <= 5 ms", {n: str(capacity[n]) for n in columns})
    row(
        "capacity vs baseline",
        {n: f"{capacity[n] / capacity['baseline']:.2f}x" for n in columns if n != "baseline" and capacity["baseline"]},
    )
    for label, attr, q in (
        ("added up p50 (ms)", "added_up_ms", "p50"),
        ("added up p99 (ms)", "added_up_ms", "p99"),
        ("added down p50 (ms)", "added_down_ms", "p50"),
        ("added down p99 (ms)", "added_down_ms", "p99"),
    ):
        row(f"{label} @N", {n: fmt(getattr(r, attr).get(q)) if (r := ref[n]) else "-" for n in columns})
    row("  (N for the rows above)", {n: str(r.sessions) if (r := ref[n]) else "-" for n in columns})

    def floor(n: str) -> str:
        r = ref[n]
        direct = next((s for s in steps if s.target == "direct" and r and s.sessions == r.sessions), None)
        return f"{fmt(direct.up_ms.get('p99'))} / {fmt(direct.down_ms.get('p99'))}" if direct else "-"

    row("  direct p99 up / down (ms) @N", {n: floor(n) for n in columns})
    row("CPU s per audio minute @N", {n: fmt(r.cpu_s_per_audio_min) if (r := ref[n]) else "-" for n in columns})
    row("server CPU us per frame @N", {n: fmt(r.cpu_us_per_frame) if (r := ref[n]) else "-" for n in columns})
    frames_per_s_at_100 = 100 * 2 * 1000 / FRAME_MS  # 100 sessions, a frame each way every FRAME_MS
    row(
        "  = CPU cores at N=100 (projected)",
        {n: fmt((r.cpu_us_per_frame or 0) * frames_per_s_at_100 / 1e6) if (r := ref[n]) else "-" for n in columns},
    )
    row(
        "RSS growth per session (KiB/s) @N",
        {n: fmt(r.rss_growth_kb_per_session_s) if (r := ref[n]) else "-" for n in columns},
    )
    row("memory per session (KiB) @N", {n: fmt(r.rss_per_session_kb) if (r := ref[n]) else "-" for n in columns})
    for name in columns:
        if name in leaks:
            leak = leaks[name]
            leaks[name]["summary"] = (
                f"{leak['rss_before_mb']}->{leak['rss_after_mb']} MB {leak['growth_percent']:+.1f}%"
            )
            leaks[name]["cold_summary"] = f"{leak['rss_idle_mb']} MB idle {leak['cold_growth_percent']:+.1f}%"
    row(f"RSS after {args.cycles}x{args.cycle_sessions} (vs warm)", {n: leaks[n]["summary"] for n in leaks})
    row("  (vs idle, before any load)", {n: leaks[n]["cold_summary"] for n in leaks})
    row(
        "  slowest connect in a cycle (s)",
        {n: fmt(max((c["connect_max_s"] or 0) for c in leaks[n]["cycles"])) for n in leaks},
    )
    row("  within 10 %", {n: "yes" if leaks[n]["passed"] else "NO" for n in leaks})
    directs = [s for s in steps if s.target == "direct"]
    lines.append(
        "harness (load generator + sim) CPU %, direct: "
        + ", ".join(f"N={d.sessions} {(d.loadgen_cpu_percent or 0) + (d.sim_cpu_percent or 0):.0f}" for d in directs)
    )
    lines.append("")
    lines.append(
        f"Targets: bridge >= 100 sessions within the bound: {'yes' if capacity['bridge'] >= 100 else 'NO'}; "
        f"bridge capacity >= 0.8x baseline: "
        f"{'yes' if capacity['baseline'] and capacity['bridge'] >= 0.8 * capacity['baseline'] else 'NO'}; "
        f"memory after cycles within 10 %: {'yes' if leaks.get('bridge', {}).get('passed') else 'NO'}"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="10,25,50,75,100,125,150,200", help="N per capacity step (comma list)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after all connected before measuring")
    parser.add_argument("--cycles", type=int, default=3, help="connect/disconnect cycles of the leak check")
    parser.add_argument("--cycle-sessions", type=int, default=100, help="sessions per leak-check cycle")
    parser.add_argument("--no-leak-check", action="store_true")
    parser.add_argument(
        "--targets",
        default="baseline,bridge",
        help="servers: baseline, bridge (apsara.serve), bridge-daphne (the same app under daphne); direct always runs",
    )
    parser.add_argument("--report-at", type=int, default=100, help="N whose CPU/memory/latency the table shows")
    parser.add_argument(
        "--retries", type=int, default=1, help="re-measure a failed step when the load generator itself ran late"
    )
    parser.add_argument("--model", default="gemini-3.1-flash-live-preview")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="the bridge's database (default: SQLite in a temp dir); PostgreSQL is more realistic",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", ""),
        help="channel layer for the bridge (default: in-memory)",
    )
    parser.add_argument("--gemini-url", default="", help="use this running echo-mode simulator instead of starting one")
    parser.add_argument("--gemini-ca", default="", help="CA file to trust for --gemini-url")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin servers and load to CPUs")
    parser.add_argument(
        "--nice", type=int, default=None, help="niceness for every process of the run (e.g. -5 on a shared machine)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the bridge's server under cProfile (bench/results/<server>.prof)"
    )
    parser.add_argument("--max-seconds", type=float, default=900.0, help="give up after this long")
    args = parser.parse_args(argv)
    args.sessions = [int(n) for n in args.sessions.split(",") if n.strip()]
    args.targets = [t for t in args.targets.split(",") if t]
    return args


async def run(args: argparse.Namespace, bench: Bench) -> tuple[dict[str, Any], list[StepResult]]:
    leaks: dict[str, Any] = {}
    if not args.no_leak_check:
        print(f"Leak check: {args.cycles} cycles of {args.cycle_sessions} connects/disconnects", flush=True)
        for name in args.targets:
            leaks[name] = await bench.leak_check(name)
            print(f"  {name}: {json.dumps(leaks[name])}", flush=True)
    print(f"Capacity: steps {args.sessions}, {args.warmup:g}s warm-up + {args.duration:g}s measured each", flush=True)
    return leaks, await bench.capacity()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="apsara-bench-") as tmp:
        workdir = Path(tmp)
        bench = Bench(args, workdir)
        try:
            bench.start()
            print(
                f"servers on CPUs {bench.server_cpus}, load generator and gemini_sim on {bench.harness_cpus}",
                flush=True,
            )
            leaks, steps = asyncio.run(asyncio.wait_for(run(args, bench), args.max_seconds))
        finally:
            bench.stop()
            for log in workdir.glob("*.log"):  # keep the servers' logs with the results
                (RESULTS / f"{started}-{log.name}").write_bytes(log.read_bytes()[-200_000:])
    table = report(leaks, steps, args)
    load_after = os.getloadavg()
    table += (
        f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        "(other work on the machine makes the latency numbers noisy)"
    )
    print(table)
    meta = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "args": vars(args),
    }
    payload = {"meta": meta, "leak_check": leaks, "steps": [asdict(s) for s in steps], "table": table}
    (RESULTS / f"{started}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{started}.txt").write_text(table + "\n")
    print(f"\nwritten: bench/results/{started}.json and .txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
