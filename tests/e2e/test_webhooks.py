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


def _wait_for(stack: Stack, admin: str, endpoint: str, status: str, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while True:
        reply = stack.request(
            "GET", f"/v1/admin/webhook-endpoints/{endpoint}/deliveries", admin,
            params={"status": status},
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        rows = reply.json()["data"]
        if rows or time.monotonic() > deadline:
            return list(rows)
        time.sleep(0.5)


def test_an_endpoint_is_listed_changed_retried_and_deleted_by_an_admin(
    stack: Stack, new_user, receiver: Receiver
):
    admin = _admin_token(stack)
    # Given an endpoint for refunds only on a receiver that fails everything for now
    receiver.fail_first = 10**6
    created = stack.request(
        "POST", "/v1/admin/webhook-endpoints", admin,
        json={"url": receiver.url, "events": ["refund.succeeded"]},
    ).json()  # fmt: skip
    endpoint = created["id"]
    # Then the list shows it, without its secret
    listed = stack.request("GET", "/v1/admin/webhook-endpoints", admin, params={"limit": "100"})
    assert listed.status_code == 200, listed.text
    mine = [e for e in listed.json()["data"] if e["id"] == endpoint]
    assert len(mine) == 1 and "secret" not in mine[0]
    # When it is changed to payments too, and a payment is made
    patched = stack.request(
        "PATCH", f"/v1/admin/webhook-endpoints/{endpoint}", admin,
        json={"events": ["payment.succeeded", "refund.succeeded"], "description": "ops"},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert (patched.json()["events"], patched.json()["description"]) == (
        ["payment.succeeded", "refund.succeeded"], "ops",
    )  # fmt: skip
    payer = new_user("Retry Payer")
    topped = top_up(stack, payer, add_card(stack, payer), 2_000).json()["id"]
    # Then its delivery fails every attempt of the (shortened) schedule and is `failed`
    [failed] = _wait_for(stack, admin, endpoint, "failed")
    assert (failed["attempts"], failed["last_response_status"]) == (5, 503)
    # And once the receiver is back, a retry delivers it: 202, then one success
    receiver.fail_first = 0
    retried = stack.request("POST", f"/v1/admin/webhook-deliveries/{failed['id']}/retry", admin)
    assert retried.status_code == 202, retried.text
    [succeeded] = _wait_for(stack, admin, endpoint, "succeeded")
    assert succeeded["id"] == failed["id"] and succeeded["attempts"] == 6
    ok = [json.loads(r.body) for r in receiver.requests if r is receiver.requests[-1]]
    assert ok[0]["data"]["object"]["id"] == topped and ok[0]["id"] == failed["event_id"]
    # ... and a disabled endpoint is shown so; deleted, it is gone (404) and gets nothing
    disabled = stack.request(
        "PATCH", f"/v1/admin/webhook-endpoints/{endpoint}", admin, json={"status": "disabled"}
    )
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert (
        stack.request("DELETE", f"/v1/admin/webhook-endpoints/{endpoint}", admin).status_code == 204
    )
    gone = stack.request("GET", f"/v1/admin/webhook-endpoints/{endpoint}", admin)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
