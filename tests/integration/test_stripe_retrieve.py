"""The Stripe adapter's `retrieve_charge` (reconciliation asks it about processing charges)
through the official SDK, against a local HTTP server answering GET
/v1/payment_intents/{id} as Stripe does. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cashew.gateways.base import GatewayOutcomeUnknownError, GatewayUnavailableError
from cashew.gateways.stripe_gateway import StripeGateway

INTENTS: dict[str, tuple[int, dict[str, Any]]] = {
    "pi_done": (200, {"status": "succeeded", "amount": 700, "amount_received": 650}),
    "pi_auth": (200, {"status": "requires_capture", "amount": 700, "amount_received": 0}),
    "pi_wait": (200, {"status": "processing", "amount": 700, "amount_received": 0}),
    "pi_declined": (
        200,
        {
            "status": "requires_payment_method",
            "amount": 700,
            "amount_received": 0,
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"},
        },
    ),
    "pi_down": (500, {"error": {"type": "api_error", "message": "boom"}}),
    "pi_gone": (
        404,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such payment_intent",
            }
        },
    ),
}


@pytest.fixture(scope="module")
def stripe_url() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(("GET", self.path))
            pi_id = self.path.rsplit("/", 1)[-1]
            status, body = INTENTS.get(pi_id, (404, {"error": {"type": "invalid_request_error"}}))
            if status == 200:
                body = {"id": pi_id, "object": "payment_intent", "currency": "usd", **body}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # asking must never act
            seen.append(("POST", self.path))
            self.send_response(405)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


@pytest.fixture
def gateway(stripe_url: tuple[str, list[tuple[str, str]]]) -> StripeGateway:
    return StripeGateway("sk_test_cashew", "whsec_x", api_base=stripe_url[0], timeout=2)


@pytest.mark.parametrize(
    ("pi_id", "status", "captured", "code"),
    [
        ("pi_done", "succeeded", 650, None),
        ("pi_auth", "requires_capture", 0, None),
        ("pi_wait", "processing", None, None),
        ("pi_declined", "failed", None, "insufficient_funds"),
    ],
)
def test_retrieve_charge_gets_the_payment_intent_and_maps_it(
    gateway: StripeGateway, stripe_url: Any, pi_id: str, status: str, captured: Any, code: Any
) -> None:
    charge = gateway.retrieve_charge(pi_id)
    assert (charge.id, charge.status, charge.amount_captured) == (pi_id, status, captured)
    assert charge.failure_code == code
    assert stripe_url[1][-1] == ("GET", f"/v1/payment_intents/{pi_id}")
    assert all(method == "GET" for method, _ in stripe_url[1])


def test_a_stripe_server_error_is_an_unknown_answer_and_a_missing_intent_unavailable(
    gateway: StripeGateway,
) -> None:
    with pytest.raises(GatewayOutcomeUnknownError):
        gateway.retrieve_charge("pi_down")
    with pytest.raises(GatewayUnavailableError):
        gateway.retrieve_charge("pi_gone")
