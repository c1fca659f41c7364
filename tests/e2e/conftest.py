"""Browser tests: Playwright (sync API) drives Debian's Chromium against a real daphne server.

The server runs daphne in a thread of this process, so it shares the test database (SQLite's shared in-memory
test database, or PostgreSQL) and the settings that point it at the test's Gemini simulator (``gemini_sim``).
pytest-django's ``live_server`` is WSGI and threaded, and would not stream server-sent events the way daphne does in
production.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.db import OperationalError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("APSARA_SCREENSHOT_DIR", "/tmp/apsara-e2e"))


class DaphneThread:
    """Daphne serving the project's ASGI app (plus static files) on a free loopback port, in a thread."""

    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, name="daphne-e2e", daemon=True)

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error or not self.url:
            raise RuntimeError(f"daphne did not start: {self._error!r}")

    def _run(self) -> None:
        try:
            from channels.routing import ProtocolTypeRouter
            from daphne.server import Server  # installs the asyncio Twisted reactor
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            from apsara.asgi import application

            app = ProtocolTypeRouter(
                {
                    # Production serves /static/ from the front server; here daphne serves it itself.
                    "http": ASGIStaticFilesHandler(application.application_mapping["http"]),
                    "websocket": application.application_mapping["websocket"],
                }
            )
            self._server = Server(
                application=app,
                endpoints=["tcp:port=0:interface=127.0.0.1"],
                signal_handlers=False,  # not the main thread
                ready_callable=self._poll_port,
                verbosity=0,
            )
            self._server.run()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def _poll_port(self) -> None:
        reactor = _reactor()

        def check() -> None:
            if self._server is not None and self._server.listening_addresses:
                host, port = self._server.listening_addresses[0]
                self.url = f"http://{host}:{port}"
                self._ready.set()
            else:
                reactor.callLater(0.05, check)

        reactor.callLater(0, check)

    def stop(self) -> None:
        if self._thread.is_alive():
            reactor = _reactor()
            reactor.callFromThread(reactor.stop)
            self._thread.join(10)


def _reactor() -> Any:
    """Return Twisted's global reactor (daphne installed the asyncio one); its stubs do not type the module."""
    from twisted.internet import reactor

    return reactor


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker) -> Iterator[DaphneThread]:
    """Run one daphne server for the whole session (Twisted's reactor cannot be restarted)."""
    with django_db_blocker.unblock():
        server = DaphneThread()
        server.start()
        yield server
        server.stop()


@pytest.fixture
def server_url(browser: object, asgi_server: DaphneThread, transactional_db: None) -> str:
    """Base URL of the live server; the test's data is committed so the server's threads see it."""
    return asgi_server.url


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[object]:
    """Playwright (sync API) for this package; every Chromium the tests launch comes from it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-packages.sh (make test does).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread (in a greenlet), so Django's
    # async-safety check would refuse the ORM calls the tests make between browser steps. Lift it only
    # while this package's browser is open; other packages keep the check.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def launch_chromium(playwright: Any, extra_args: list[str] | None = None) -> Any:
    """Launch Debian's Chromium, headless, with the package's flags plus `extra_args`."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + list(extra_args or [])
    )


@pytest.fixture(scope="package")
def browser(playwright_driver: Any) -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright; Playwright never downloads a browser."""
    chromium = launch_chromium(playwright_driver)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser, server_url: str) -> Iterator[object]:
    """A fresh browser context (cookies, storage) and page per test, with the server as base URL."""
    context = browser.new_context(base_url=server_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def gemini_sim_options() -> dict[str, Any]:
    """Pace the browser tests' simulator as Gemini does (its defaults): a person hears replies in real time."""
    return {}


@pytest.fixture(autouse=True)
def _gemini(gemini_sim: Any) -> Any:
    """Every browser test's server talks to a simulator of the test's own (the server thread reads the settings)."""
    return gemini_sim


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where browser tests save screenshots for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def send_prompt(page: Any, text: str, *, press_enter: bool = True) -> None:
    """Type a prompt into the chat once chat.js is ready (before that Enter is a newline), then send it."""
    page.wait_for_selector("#chat[data-ready=true]")
    page.fill("#prompt", text)
    if press_enter:
        page.keyboard.press("Enter")
    else:
        page.locator("#send").click()


T = TypeVar("T")


def while_server_writes(query: Callable[[], T], *, seconds: float = 10.0) -> T:
    """Run a read from the test thread while the server thread may be writing.

    On SQLite the test database is in memory with a shared cache, where a read that meets another connection's
    write fails at once ("database table is locked") instead of waiting; retry for a while. PostgreSQL never does.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return query()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
