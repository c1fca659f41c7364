"""``python -m gemini_sim``: serve the simulator stand-alone (HTTPS + WSS on one port, own CA)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .server import FAULT_KINDS, FAULT_POINTS, Fault, Options, Simulator

EPILOG = """\
fault SPEC (repeatable): KIND[:ARG]@WHEN[xCOUNT]
  close[:CODE[:REASON]]  close with CODE (default 1011 "Internal error occurred.")
  stall[:SECONDS]        stop sending and reading for SECONDS (default 5)
  drop                   cut the connection without a close frame (clients see 1006)
  http[:STATUS]          REST only (WHEN=rest): answer with STATUS (429, 500, 503)
  WHEN: setup | message | turn | audio | tool_response | rest ; xCOUNT: how many sessions (default 1)
  e.g. --fault close:1008@turn  --fault stall:3@audio  --fault drop@setupx2  --fault http:429@rest

control endpoints (unauthenticated: keep the simulator on loopback): GET/POST /_sim/options (JSON of
gemini_sim.server.Options fields, e.g. {"realtime_factor": 0, "connection_lifetime": 30}), POST /_sim/faults
(JSON {"kind","when","code","reason","seconds","status","count"}), GET/DELETE /_sim/records (needs --keep-records).

Trust the CA it prints (STATE_DIR/ca.pem), e.g. GEMINI_BASE_URL=https://127.0.0.1:PORT GEMINI_CA_FILE=STATE_DIR/ca.pem
"""


def parse_fault(spec: str) -> Fault:
    """Parse a --fault SPEC."""
    what, _, when = spec.partition("@")
    when = when or "turn"
    count = 1
    if "x" in when:
        when, _, n = when.partition("x")
        count = int(n)
    kind, *args = what.split(":", 2)
    if kind not in FAULT_KINDS or when not in FAULT_POINTS:
        raise argparse.ArgumentTypeError(f"bad fault spec {spec!r}")
    fault = Fault(kind=kind, when=when, count=count)
    if kind == "close" and args:
        fault.code = int(args[0])
        if len(args) > 1:
            fault.reason = args[1]
    elif kind == "stall" and args:
        fault.seconds = float(args[0])
    elif kind == "http" and args:
        fault.status = int(args[0])
    return fault


def build_parser() -> argparse.ArgumentParser:
    """The command line (every option documented)."""
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m gemini_sim",
        description="Offline, protocol-faithful Gemini: Live API over WSS, REST generate/stream/models, "
        "ephemeral auth tokens. Speaks TLS with its own CA.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default %(default)s)")
    p.add_argument("--state-dir", default=".sim", help="where ca.pem/ca-key.pem live, reused (default %(default)s)")
    p.add_argument(
        "--api-key", action="append", dest="api_keys", metavar="KEY", help="accept only this key (repeatable); "
        "default: any non-empty key"
    )  # fmt: skip
    p.add_argument("--record", metavar="FILE", help="append every client frame and REST request as JSON lines")
    p.add_argument(
        "--keep-records",
        type=int,
        default=0,
        metavar="N",
        help="also keep the last N records in memory for GET /_sim/records (default 0: off)",
    )
    p.add_argument(
        "--lifetime",
        type=float,
        default=d.connection_lifetime,
        metavar="S",
        help="Live connection lifetime in seconds before the server closes it (default %(default)s)",
    )
    p.add_argument(
        "--go-away-before",
        type=float,
        default=d.go_away_before,
        metavar="S",
        help="send goAway this many seconds before the end; its timeLeft (default %(default)s)",
    )
    p.add_argument(
        "--handle-delay",
        type=float,
        default=d.handle_delay,
        metavar="S",
        help="seconds from a turnComplete to the sessionResumptionUpdate covering it (default %(default)s)",
    )
    p.add_argument(
        "--session-cap-factor",
        type=float,
        default=d.session_cap_factor,
        metavar="F",
        help="scale per-model session caps, e.g. transcribe-live's 10 minutes (default %(default)s)",
    )
    p.add_argument(
        "--realtime-factor",
        type=float,
        default=d.realtime_factor,
        metavar="F",
        help="reply audio pacing: 1 = real time, 4 = 4x faster, 0 = as fast as possible (default %(default)s)",
    )
    p.add_argument(
        "--audio-chunk-ms",
        type=int,
        default=d.audio_chunk_ms,
        metavar="MS",
        help="milliseconds of 24 kHz audio per modelTurn message (default %(default)s)",
    )
    p.add_argument(
        "--latency",
        type=float,
        default=d.latency,
        metavar="S",
        help="delay before a reply starts, scaled by the real-time factor (default %(default)s)",
    )
    p.add_argument(
        "--stream-delay",
        type=float,
        default=d.stream_delay,
        metavar="S",
        help="delay between :streamGenerateContent SSE chunks (default %(default)s)",
    )
    p.add_argument(
        "--resumption-ttl",
        type=float,
        default=d.resumption_ttl,
        metavar="S",
        help="resumption handles stay valid this long after a session ends (default %(default)s)",
    )
    p.add_argument(
        "--vad-threshold",
        type=float,
        default=d.vad_threshold,
        metavar="LEVEL",
        help="mean |sample| of 16-bit input above which audio counts as speech (default %(default)s)",
    )
    p.add_argument(
        "--silence-ms",
        type=int,
        default=d.silence_ms,
        metavar="MS",
        help="silence ending a spoken turn when setup gives no silenceDurationMs (default %(default)s)",
    )
    p.add_argument(
        "--echo",
        action="store_true",
        help="benchmarks: answer each input audio chunk at once with the same bytes as model audio (no VAD, no turns)",
    )
    p.add_argument(
        "--empty-turns",
        type=int,
        default=d.empty_turns,
        metavar="N",
        help="the next N replies (Live turns, REST answers) come back empty, as some do (default %(default)s)",
    )
    p.add_argument(
        "--access-token-lifetime",
        type=float,
        default=3599.0,
        metavar="SECONDS",
        help="how long an OAuth access token from POST /token lasts (default %(default)s, as Google's)",
    )
    p.add_argument("--fault", action="append", type=parse_fault, default=[], metavar="SPEC",
                   help="inject a fault (repeatable; see below)")  # fmt: skip
    return p


async def serve(args: argparse.Namespace) -> None:
    """Run until interrupted."""
    opts = Options(
        api_keys=frozenset(args.api_keys) if args.api_keys else None,
        connection_lifetime=args.lifetime,
        access_token_lifetime=args.access_token_lifetime,
        go_away_before=args.go_away_before,
        handle_delay=args.handle_delay,
        session_cap_factor=args.session_cap_factor,
        realtime_factor=args.realtime_factor,
        audio_chunk_ms=args.audio_chunk_ms,
        latency=args.latency,
        stream_delay=args.stream_delay,
        resumption_ttl=args.resumption_ttl,
        vad_threshold=args.vad_threshold,
        silence_ms=args.silence_ms,
        echo=args.echo,
        empty_turns=args.empty_turns,
        record=args.keep_records > 0,
        record_limit=max(1, args.keep_records),
        record_path=args.record,
    )
    extra = (args.host,) if args.host not in ("0.0.0.0", "::") else ()  # noqa: S104
    sim = Simulator(args.state_dir, opts, extra_hosts=extra)
    for fault in args.fault:
        sim.add_fault(fault)
    await sim.start(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"gemini_sim listening on https://{shown}:{sim.port}", flush=True)
    print(f"CA certificate: {sim.ca_path.resolve()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
