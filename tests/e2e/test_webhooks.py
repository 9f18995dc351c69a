"""Webhooks to services over HTTP against the local stack, with a real receiver on loopback
that fails its first two attempts: register as an admin, pay, receive each event signed,
once, with gapless sequences; the deliveries list shows the attempts; others get 403."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from cashew.webhooks import signing
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Stack,
    add_card,
    launch,
    top_up,
)
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own whose retries come after a second, not after 30 s."""
    log_path = tmp_path_factory.mktemp("hooks") / "dev.log"
    with launch(log_path, CASHEW_WEBHOOK_RETRY_SCHEDULE="1,1,1,1") as launched:
        if launched.exit_code is not None:
            pytest.fail(f"the local stack did not come up:\n{log_path.read_text()[-4000:]}")
        yield launched.stack
        launched.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(fail_first=2).start()
    yield running
    running.stop()


def _admin_token(stack: Stack) -> str:
    reply = stack.request(
        "POST", "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def test_an_admin_registers_an_endpoint_and_receives_every_payment_signed_and_in_sequence(
    stack: Stack, new_user, receiver: Receiver
):
    admin = _admin_token(stack)
    # Given an endpoint for payment.succeeded on a loopback receiver
    created = stack.request(
        "POST", "/v1/admin/webhook-endpoints", admin,
        json={"url": receiver.url, "events": ["payment.succeeded"], "description": "e2e"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    endpoint, secret = created.json()["id"], created.json()["secret"]
    # When a user tops up and pays another twice
    payer, payee = new_user("Hook Payer"), new_user("Hook Payee")
    paid = [top_up(stack, payer, add_card(stack, payer), 10_000).json()["id"]]  # one too
    for amount in (700, 800):
        reply = stack.request(
            "POST", "/v1/payments", payer.token, headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"amount": amount, "currency": "USD", "payee_id": payee.id,
                  "source": {"type": "balance"}},
        )  # fmt: skip
        assert reply.status_code == 201, reply.text
        paid.append(reply.json()["id"])
    # Then each payment arrives once, after the receiver's two failures, signed, in sequence
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ok = {r.headers["Cashew-Event-Id"] for r in receiver.requests[2:]}
        if len(ok) >= 3:
            break
        time.sleep(0.5)
    delivered = receiver.requests[2:]
    bodies = [json.loads(r.body) for r in delivered]
    assert sorted(b["data"]["object"]["id"] for b in bodies) == sorted(paid), stack.logs()[-3000:]
    assert sorted(b["sequence"] for b in bodies) == [1, 2, 3]
    for request in receiver.requests:
        header = request.headers["Cashew-Signature"]
        assert signing.verify(secret, header, request.body, int(time.time()), tolerance=120)
        assert request.headers["Cashew-Event-Id"] == json.loads(request.body)["id"]
        assert secret.encode() not in request.body
    listed = stack.request("GET", f"/v1/admin/webhook-endpoints/{endpoint}/deliveries", admin)
    assert listed.status_code == 200, listed.text
    rows = listed.json()["data"]
    assert {r["status"] for r in rows} == {"succeeded"}
    assert sum(r["attempts"] for r in rows) == 5
    assert sorted(r["sequence"] for r in rows) == [1, 2, 3]
    got = stack.request("GET", f"/v1/admin/webhook-endpoints/{endpoint}", admin).json()
    assert "secret" not in got and got["status"] == "enabled"
    # and a user who is not an admin gets 403 on the admin paths
    for method, path in (
        ("GET", "/v1/admin/webhook-endpoints"),
        ("GET", f"/v1/admin/webhook-endpoints/{endpoint}/deliveries"),
        ("POST", f"/v1/admin/webhook-endpoints/{endpoint}/rotate-secret"),
    ):
        refused = stack.request(method, path, payer.token)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_the_local_stack_refuses_private_ranges_and_the_metadata_address(stack: Stack):
    admin = _admin_token(stack)
    for url in ("http://169.254.169.254/meta-data/", "http://10.0.0.1/", "https://192.168.1.1/"):
        reply = stack.request(
            "POST", "/v1/admin/webhook-endpoints", admin, json={"url": url, "events": ["*"]}
        )
        assert reply.status_code == 422, reply.text
        assert reply.json()["errors"][0]["field"] == "url"
