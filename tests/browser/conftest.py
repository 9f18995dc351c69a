"""Browser tests: Playwright driving Debian's headless Chromium against a local stack.

The stack serves the web client at its own origin (`client.url`); the same build is also
served from a second origin the stack allows (`client.other_url`, in CASHEW_CORS_ORIGINS)
and from a third it does not (`client.foreign_url`), both told the API's URL by their
config.json, as a team hosting the client on its own origin would. Chromium is never
downloaded: without it (`CASHEW_CHROMIUM`, default /usr/bin/chromium) every test here is
skipped, with the reason, and `make tests` says so in one line. Each page's screenshot is
kept in artifacts/screenshots/ (CI keeps the folder as the run's artefacts).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Stack, _free_port, launch

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "web" / "dist"
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = Path(os.environ.get("CASHEW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(
        reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does) to run them"
    )
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


class _StaticClient(SimpleHTTPRequestHandler):
    """web/dist as a static host serves it, with a config.json naming the API's URL."""

    config: bytes = b"{}"

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _static_client(port: int, api_url: str) -> Iterator[str]:
    handler = type("Handler", (_StaticClient,), {"config": json.dumps({"api": api_url}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(handler, directory=str(DIST)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Client:
    stack: Stack
    url: str  # the stack's origin, serving the client at `/`
    other_url: str  # the same client on an origin the stack allows (CORS)
    foreign_url: str  # the same client on an origin the stack does not allow


@pytest.fixture(scope="session")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    if not (DIST / "index.html").exists():
        pytest.fail("web/dist is not built: `make web` builds it (make test does)")
    other_port, foreign_port = _free_port(), _free_port()
    log_path = tmp_path_factory.mktemp("browser-stack") / "dev.log"
    with launch(log_path, CASHEW_CORS_ORIGINS=f"http://127.0.0.1:{other_port}") as launched:
        if launched.exit_code is not None:
            pytest.fail(f"the local stack did not come up:\n{log_path.read_text()[-4000:]}")
        stack = launched.stack
        with (
            _static_client(other_port, stack.url) as other_url,
            _static_client(foreign_port, stack.url) as foreign_url,
        ):
            yield Client(stack, stack.url, other_url, foreign_url)
        launched.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


# Chromium logs every 4xx/5xx answer to a fetch as a console error; the client shows those
# itself (its problem view), so they are not failures. A CORS refusal is expected only in
# the test that provokes it (it asks for `page_errors` and clears them).
_EXPECTED_CONSOLE = ("Failed to load resource: the server responded with a status of",)


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Any, page_errors: list[str]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    new_page.on("pageerror", lambda error: page_errors.append(f"uncaught: {error}"))
    new_page.on(
        "console",
        lambda message: (
            page_errors.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith(_EXPECTED_CONSOLE)
            else None
        ),
    )
    yield new_page
    context.close()
    assert not page_errors, "the page reported errors:\n" + "\n".join(page_errors)


@pytest.fixture
def shot() -> Callable[..., Path]:
    def take(page: Any, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def inbox(client: Client, address: str) -> list[dict[str, Any]]:
    """The emails the embedded SES accepted for `address`, newest first."""
    answer = requests.get(f"{client.url}/_local/mail.json", params={"to": address}, timeout=10)
    answer.raise_for_status()
    return list(answer.json()["data"])
