"""Serve Apsara in production: uvicorn (uvloop, the sans-I/O ``websockets`` protocol) running ``apsara.asgi``.

``python -m apsara.serve --host 0.0.0.0 --port 8000``: one process. Run several behind a load balancer (``deploy/``,
``docs/deploy.md``); each stops on its own (SIGTERM or SIGINT): it stops accepting connections, hands its live calls
over to the others (``live.shutdown.drain``, at most ``LIVE_DRAIN_SECONDS``), then closes what is left and exits.
``make run`` keeps Django's ``runserver`` (daphne, with autoreload) for development; the same ASGI application runs
under both.

Why uvicorn rather than daphne in production (the stack's default; measured in ``bench/``, issue 4): per relayed
40 ms audio frame daphne (Twisted + autobahn) cost about 270 µs of server CPU and uvicorn with these options about
190 µs, against 250 µs for the bare ``websockets`` baseline; and uvicorn applies backpressure (it stops reading a
socket while the application is busy and makes ``send`` wait for the kernel's buffer) where daphne queues without
bound in both directions (``../shared/reference/performance-anchors.md`` §4).
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

import uvicorn
from django.conf import settings


def uvicorn_options() -> dict[str, Any]:
    """The server settings, one place for ``python -m apsara.serve`` and the benchmark."""
    return {
        "loop": "uvloop",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,  # audio does not compress; deflate would cost CPU per frame
        # Frames up to this size reach the bridge, which answers FRAME_TOO_LARGE past LIVE_MAX_FRAME_BYTES; beyond it
        # the server closes the socket (1009) without buffering more. runserver's daphne reads the same setting.
        "ws_max_size": settings.WEBSOCKET_MAX_MESSAGE_BYTES,
        "lifespan": "off",  # Django has no lifespan handlers
        "proxy_headers": True,
        "server_header": False,
    }


class DrainingServer(uvicorn.Server):
    """uvicorn, with live calls handed over before the connections close (uvicorn would close them with 1012 at
    once, and the calls would be resumed only once their process were found gone)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        from live import shutdown

        for server in self.servers:
            server.close()  # stop accepting first: the load balancer sends new connections elsewhere
        for sock in sockets or []:
            sock.close()
        await shutdown.drain()
        await super().shutdown(sockets)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management.base import BaseCommand, SystemCheckError

    parser = argparse.ArgumentParser(description="Serve Apsara (HTTP and /live) with uvicorn.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies whose X-Forwarded-* to trust")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apsara.settings.production")
    try:
        # Load the settings on their own first: a variable missing or malformed (django-environ raises
        # ImproperlyConfigured, or ValueError for a value it cannot parse) is the operator's to fix, so it is one
        # line saying what to set and exit code 2 (a usage error), not a traceback.
        settings.INSTALLED_APPS  # noqa: B018  (the access imports the settings module)
    except (ImproperlyConfigured, ValueError) as error:
        parser.exit(2, f"apsara.serve: cannot start: {' '.join(str(error).split())}\n")
    django.setup()
    try:
        # The system checks runserver and manage.py run (e.g. a Live API version Gemini serves no Live on): refuse
        # to start rather than fail every live session later. Warnings are printed and do not stop the server.
        BaseCommand().check()
    except SystemCheckError as error:
        parser.exit(1, f"{error}\n")
    config = uvicorn.Config(
        "apsara.asgi:application",
        host=args.host,
        port=args.port,
        forwarded_allow_ips=args.forwarded_allow_ips,
        access_log=not args.no_access_log,
        log_level=args.log_level,
        # After the drain, what is still open (a typed reply streaming) gets a second more, then is cut.
        timeout_graceful_shutdown=1,
        **uvicorn_options(),
    )
    DrainingServer(config).run()


if __name__ == "__main__":
    main()
