"""Attacks on webhook sending against moto: an admin's retry racing an attempt in flight,
a receiver answering slowly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cashew.webhooks import dispatch, endpoints, store
from tests.integration.conftest import Stack, User
from tests.integration.test_webhooks import (  # noqa: F401 - loopback is a fixture
    _deliveries,
    _drain,
    _event,
    _register,
    _route,
    loopback,
)


class _Hooked:
    """A loopback receiver answering 200, calling `during` (once) while the first request
    waits for its answer."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.during: Callable[[], None] | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bodies.append(body)
                hook, receiver.during = receiver.during, None
                if hook is not None:
                    hook()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooked() -> Iterator[_Hooked]:
    running = _Hooked()
    yield running
    running.stop()


@pytest.mark.usefixtures("loopback")
def test_an_admin_retry_during_an_attempt_in_flight_sends_no_second_success(
    stack: Stack, new_admin: Callable[[], User], hooked: _Hooked
):
    # Given an endpoint and one routed delivery
    admin = new_admin()
    created = _register(stack, admin, hooked.url)
    assert created.status == 201, created.body
    endpoint = created.body["id"]
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    _route(stack, _event())
    [row] = _deliveries(stack, admin, endpoint)
    delivery_id = row["id"]

    # When, while its first attempt waits for the receiver's answer, an admin retries it
    # and another sender takes the retry's message
    outcomes: list[str] = []

    def retry_meanwhile() -> None:
        endpoints.retry(delivery_id)
        outcomes.append(dispatch.send(delivery_id))

    hooked.during = retry_meanwhile
    outcomes.append(dispatch.send(delivery_id))

    # Then the receiver got the event once, and the delivery is one success of one attempt
    assert len(hooked.bodies) == 1, outcomes
    stored = store.get_delivery(delivery_id)
    assert stored is not None
    assert stored.delivery.status == "succeeded" and stored.delivery.attempts == 1
