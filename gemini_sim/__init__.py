"""gemini_sim: a protocol-faithful, offline stand-in for Google Gemini (Live WebSocket + REST + ephemeral tokens).

One TLS port serves HTTPS and WSS with the simulator's own CA (``STATE_DIR/ca.pem``, reused across runs):

- Live: ``/ws/google.ai.generativelanguage.{v1beta,v1alpha}.GenerativeService.BidiGenerateContent`` (API key:
  ``x-goog-api-key`` or ``?key=``; ``v1`` is a 404 as at Google), ``v1alpha…BidiGenerateContentConstrained``
  (ephemeral token: ``?access_token=``, ``Authorization: Token …`` or ``x-goog-api-key``), and Vertex
  ``/ws/google.cloud.aiplatform.{v1,v1beta1}.LlmBidiService/BidiGenerateContent`` (``Authorization: Bearer …`` with
  a token from ``/token``, checked for expiry and scope).
  Anything else: HTTP 404 at the handshake. See ``gemini_sim.live`` for messages, errors and close codes.
- REST: see ``gemini_sim.rest``; OAuth ``/token``: ``gemini_sim.oauth`` (``SimHandle.service_account_file``). The
  simulated assistant: ``gemini_sim.model``. Models: ``gemini_sim.catalogue``. Sources: ``docs/gemini-fidelity.md``.

Use from Python (tests, the app's embedded default)::

    from gemini_sim import start_background

    sim = start_background(tmp_path, realtime_factor=0, connection_lifetime=2, go_away_before=1)
    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=sim.base_url, client_args={"verify": sim.ssl_context},
        async_client_args={"verify": sim.ssl_context, "ssl": sim.ssl_context}))
    ...
    sim.records(type="frame")          # what clients sent: parsed frames / REST requests
    sim.set_options(realtime_factor=4)  # any Options field, at run time
    sim.inject_fault("close", when="turn", code=1011, reason="Internal error occurred.")
    sim.stop()

``**options`` are the fields of ``gemini_sim.server.Options`` (``api_keys``, ``connection_lifetime``,
``go_away_before``, ``realtime_factor`` (0 = as fast as possible), ``audio_chunk_ms``, ``latency``,
``stream_delay``, ``resumption_ttl``, ``handle_delay``, ``session_cap_factor``, ``vad_threshold``, ``silence_ms``,
``record``, ``record_limit``, ``record_path``, ``echo``, ``empty_turns``: the next N replies come back
empty, ``access_token_lifetime``: seconds an OAuth access token lasts). Each handle is an independent instance with
its own options, tokens, handles and records. ``python -m gemini_sim --help`` runs it stand-alone with the same options.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from pathlib import Path
from typing import Any

from .server import Fault, Options, Simulator

__all__ = ["Fault", "Options", "SimHandle", "Simulator", "start_background"]


class SimHandle:
    """A simulator running in a daemon thread with its own asyncio loop."""

    def __init__(self, sim: Simulator, loop: asyncio.AbstractEventLoop, thread: threading.Thread, host: str) -> None:
        self.simulator = sim
        self.loop = loop
        self.thread = thread
        self.host = host
        self.port: int = sim.port
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"https://{shown}:{self.port}"
        self.ca_path: Path = sim.ca_path
        self.ssl_context: ssl.SSLContext = sim.client_ssl

    @property
    def options(self) -> Options:
        """The live options object (read it; change it with ``set_options``)."""
        return self.simulator.options

    def set_options(self, **changes: Any) -> None:
        """Change options at run time; new values apply to what happens next (e.g. the next connection's lifetime)."""
        self.simulator.options.update(**changes)

    def inject_fault(self, kind: str = "close", **fields: Any) -> Fault:
        """Queue a fault (see ``gemini_sim.server.Fault``); ``when="now"`` hits every open session."""
        fault = Fault(kind=kind, **fields)
        if fault.when == "now":
            asyncio.run_coroutine_threadsafe(self._now(fault), self.loop).result(5)
        else:
            self.simulator.add_fault(fault)
        return fault

    async def _now(self, fault: Fault) -> None:
        self.simulator.add_fault(fault)

    def records(self, **match: Any) -> list[dict[str, Any]]:
        """Recorded client traffic, oldest first; keyword filters match top-level fields (e.g. ``type="frame"``).

        Entries: ``{"type": "connect", "session", "path", "query", "headers"}``, ``{"type": "frame", "session",
        "message"}`` (the client's JSON exactly as sent), ``{"type": "http", "method", "path", "query", "headers",
        "body"}``, ``{"type": "ws_rejected", "path", "status"}``, ``{"type": "close", "session", "code",
        "reason"}`` (what the server closed with).
        """
        return [r for r in self.simulator.recorder.items() if all(r.get(k) == v for k, v in match.items())]

    def client_messages(self, session: str | None = None) -> list[dict[str, Any]]:
        """Just the JSON messages clients sent over Live, optionally for one session id."""
        return [
            r["message"]
            for r in self.simulator.recorder.items()
            if r.get("type") == "frame" and (session is None or r.get("session") == session)
        ]

    def service_account_file(self, path: Path | str, project: str = "sim-project") -> Path:
        """Write a service-account key file (for ``GOOGLE_APPLICATION_CREDENTIALS``) whose tokens come from here."""
        from .oauth import write_service_account_file

        return write_service_account_file(self.simulator, path, self.base_url, project)

    def authorized_user_file(
        self, path: Path | str, scope: str = "https://www.googleapis.com/auth/cloud-platform"
    ) -> Path:
        """Write an ``authorized_user`` ADC file (as ``gcloud auth application-default login`` does) refreshed here."""
        from .oauth import write_authorized_user_file

        return write_authorized_user_file(self.simulator, path, self.base_url, scope)

    def access_token(
        self, scope: str = "https://www.googleapis.com/auth/cloud-platform", lifetime: float | None = None
    ) -> str:
        """Mint an access token here, as ``gcloud auth print-access-token`` hands one out (REST and Live check it)."""
        from .oauth import issue_access_token

        return issue_access_token(self.simulator, scope, "sim-cli", lifetime)[0]

    def clear_records(self) -> None:
        """Forget recorded traffic."""
        self.simulator.recorder.clear()

    def stop(self) -> None:
        """Stop serving, end open sessions, and stop the thread."""
        if self.loop.is_closed() or not self.loop.is_running():
            return
        fut = asyncio.run_coroutine_threadsafe(self.simulator.stop(), self.loop)
        try:
            fut.result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def start_background(state_dir: Path | str, host: str = "127.0.0.1", port: int = 0, **options: Any) -> SimHandle:
    """Start a simulator in a daemon thread and return its handle once it is listening."""
    opts = Options()
    opts.update(**options)
    sim = Simulator(state_dir, opts, extra_hosts=(host,) if host not in ("0.0.0.0", "::") else ())  # noqa: S104
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start(host, port))
        except BaseException as exc:  # report any start failure to the caller's thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=f"gemini_sim:{port}", daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    if not sim.port:
        raise RuntimeError("gemini_sim did not start")
    return SimHandle(sim, loop, thread, host)
