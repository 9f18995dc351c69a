"""The Stripe adapter's payouts through the official SDK, against a local HTTP server that
answers like Stripe (form-encoded requests, JSON objects and errors, idempotent replays per
key): a Transfer to the connected account, then an instant Payout from it to its debit
card, both under keys derived from ours. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cashew.gateways.base import (
    GatewayOutcomeUnknownError,
    GatewayPayout,
    PayoutEvent,
    with_retries,
)
from cashew.gateways.stripe_gateway import StripeGateway
from tests.integration.test_stripe_gateway import NOW, stripe_signature

API_KEY = "sk_test_cashew"
WEBHOOK_SECRET = "whsec_stripe_test"
DESTINATION = "acct_1Connected:card_1Debit"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeStripe:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    payout_status: str = "paid"
    failure_code: str | None = None
    fail_first_payout: bool = False  # a 500 the first time a payout key is seen


def _answer(fake: FakeStripe, path: str, form: dict[str, str], n: int) -> tuple[int, Any]:
    metadata = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
    if path == "/v1/transfers":
        return 200, {"id": f"tr_{n}", "object": "transfer", "amount": int(form["amount"]),
                     "currency": form["currency"], "destination": form["destination"],
                     "metadata": metadata}  # fmt: skip
    if path == "/v1/payouts":
        if fake.fail_first_payout:
            fake.fail_first_payout = False
            return 500, {"error": {"type": "api_error", "message": "lost"}}
        return 200, {"id": f"po_{n}", "object": "payout", "amount": int(form["amount"]),
                     "currency": form["currency"], "destination": form["destination"],
                     "method": form.get("method"), "status": fake.payout_status,
                     "failure_code": fake.failure_code, "metadata": metadata}  # fmt: skip
    if path.startswith("/v1/transfers/") and path.endswith("/reversals"):  # a failed payout's
        return 200, {"id": f"trr_{n}", "object": "transfer_reversal",
                     "amount": int(form["amount"]), "transfer": path.split("/")[3]}  # fmt: skip
    return 404, {"error": {"type": "invalid_request_error", "message": "no such path"}}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {
                k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()
            }
            path = urllib.parse.urlsplit(self.path).path
            fake.seen.append(Seen(path, dict(self.headers.items()), form))
            key = self.headers.get("Idempotency-Key")
            if key and key in fake.replies:
                status, reply = fake.replies[key]
            else:
                status, reply = _answer(fake, path, form, len(fake.seen))
                if key and status != 500:
                    fake.replies[key] = (status, reply)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def fake(server: FakeStripe) -> FakeStripe:
    server.seen.clear()
    server.replies.clear()
    server.payout_status, server.failure_code, server.fail_first_payout = "paid", None, False
    return server


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway(API_KEY, WEBHOOK_SECRET, api_base=fake.url, timeout=2)


def _pay(gateway: StripeGateway, key: str = "key-1") -> GatewayPayout:
    return gateway.payout(DESTINATION, 2_500, "USD", idempotency_key=key,
                          metadata={"payout_id": "po_ours"})  # fmt: skip


def test_a_payout_transfers_to_the_connected_account_then_pays_its_debit_card(gateway, fake):
    answer = _pay(gateway)
    assert answer.status == "paid" and answer.id is not None and answer.id.startswith("po_")
    transfer, payout = fake.seen
    assert transfer.path == "/v1/transfers" and payout.path == "/v1/payouts"
    assert transfer.form["destination"] == "acct_1Connected"
    assert (transfer.form["amount"], transfer.form["currency"]) == ("2500", "usd")
    assert transfer.headers["Idempotency-Key"] == "key-1:transfer"
    assert "Stripe-Account" not in transfer.headers  # the platform's balance pays it
    assert payout.headers["Stripe-Account"] == "acct_1Connected"
    assert payout.headers["Idempotency-Key"] == "key-1:payout"
    assert (payout.form["destination"], payout.form["method"]) == ("card_1Debit", "instant")
    assert payout.form["metadata[payout_id]"] == "po_ours"


def test_asking_again_with_the_same_key_replays_and_moves_nothing_twice(gateway, fake):
    first, again = _pay(gateway), _pay(gateway)
    assert first == again
    assert len(fake.replies) == 2  # one transfer, one payout: the second call was replayed


def test_an_in_transit_payout_is_pending_and_a_failed_one_maps_its_code(gateway, fake):
    fake.payout_status = "in_transit"
    assert _pay(gateway, "k-transit").status == "pending"
    fake.payout_status, fake.failure_code = "failed", "insufficient_funds"
    failed = _pay(gateway, "k-failed")
    assert (failed.status, failed.failure_code) == ("failed", "insufficient_funds")


def test_a_5xx_on_the_payout_is_unknown_and_settled_by_asking_again(gateway, fake):
    fake.fail_first_payout = True
    with pytest.raises(GatewayOutcomeUnknownError):
        _pay(gateway, "k-5xx")
    settled = with_retries(lambda: _pay(gateway, "k-5xx"), attempts=2, failure=None)
    assert settled is not None and settled.status == "paid"
    transfers = [s for s in fake.seen if s.path == "/v1/transfers"]
    assert {s.headers["Idempotency-Key"] for s in transfers} == {"k-5xx:transfer"}


def test_a_platform_payment_method_cannot_receive_a_payout_and_nothing_is_sent(gateway, fake):
    answer = gateway.payout("pm_123", 2_500, "USD", idempotency_key="k", metadata={})
    assert (answer.status, answer.failure_code, answer.id) == ("failed", "card_declined", None)
    assert fake.seen == []


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("payout.paid", "paid", None), ("payout.failed", "failed", "card_declined"),
])  # fmt: skip
def test_connect_payout_events_are_verified_and_mapped(gateway, kind, status, code):
    payout = {"id": "po_1", "object": "payout", "amount": 2_500, "currency": "usd",
              "status": status, "failure_code": "declined" if code else None,
              "metadata": {"payout_id": "po_ours"}}  # fmt: skip
    event_body = {"id": "evt_1", "object": "event", "account": "acct_1Connected",
                  "api_version": "2025-01-27.acacia", "created": NOW,
                  "data": {"object": payout}, "livemode": False, "type": kind}  # fmt: skip
    body = json.dumps(event_body).encode()
    event = gateway.parse_webhook(body, stripe_signature(body, NOW), NOW)
    assert isinstance(event, PayoutEvent)
    assert (event.id, event.gateway_payout_id, event.payout_id) == ("evt_1", "po_1", "po_ours")
    assert (event.status, event.failure_code, event.amount, event.currency) == (
        status, code, 2_500, "USD",
    )  # fmt: skip
