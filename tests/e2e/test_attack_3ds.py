"""Attacks on 3-D Secure over HTTP (issue 14): the challenge page cannot be found from a
payment id, forged or edited, completed twice or with a made-up result, and reflects
nothing unescaped; a forged webhook cannot settle a payment that awaits authentication."""

from __future__ import annotations

import json
import time
import uuid

from cashew.gateways.base import sign_webhook
from tests.e2e.conftest import add_card, balance

THREE_DS = "4000000000003063"
CHALLENGES = "/_sandbox/v1/challenges/"


def _awaiting(stack, new_user):
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer, THREE_DS)
    reply = stack.request(
        "POST", "/v1/payments", payer.token, headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 2_000, "currency": "USD", "payee_id": payee.id,
              "source": {"type": "card", "payment_method_id": method}},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    assert payment["status"] == "requires_action"
    return payer, payee, payment


def _status(stack, user, payment_id: str) -> str:
    return str(stack.request("GET", f"/v1/payments/{payment_id}", user.token).json()["status"])


def test_guessed_forged_and_edited_references_are_404(stack, new_user):
    payer, payee, payment = _awaiting(stack, new_user)
    url = payment["next_action"]["url"]
    body, mac = url.rsplit("/", 1)[1].split(".")
    flipped = ("0" if mac[0] != "0" else "1") + mac[1:]
    for reference in (payment["id"], f"{body}.{flipped}", f"A{body[1:]}.{mac}", "x", "a.b"):
        for method, data in (("GET", None), ("POST", {"result": "pass"})):
            answer = stack.http.request(
                method, f"{stack.url}{CHALLENGES}{reference}", data=data, timeout=10
            )
            assert answer.status_code == 404, (reference, method)
    time.sleep(1)
    assert _status(stack, payer, payment["id"]) == "requires_action"
    assert balance(stack, payee) == 0


def test_a_bad_result_is_400_and_leaves_the_challenge_open(stack, new_user):
    payer, payee, payment = _awaiting(stack, new_user)
    url = payment["next_action"]["url"]
    for data in (
        {"result": "PASS"},
        {"result": ""},
        {"outcome": "pass"},
        None,
        "result=pass&result=fail",
    ):
        answer = stack.http.post(url, data=data, timeout=10)
        assert answer.status_code == 400, data
    assert stack.http.post(url, json={"result": "pass"}, timeout=10).status_code == 400
    time.sleep(1)
    assert _status(stack, payer, payment["id"]) == "requires_action"
    assert stack.http.get(url, timeout=10).status_code == 200  # still open
    assert balance(stack, payee) == 0


def test_nothing_sent_in_the_url_is_reflected_unescaped(stack, new_user):
    markup = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    for path in (f"{CHALLENGES}{markup}", f"{CHALLENGES}{markup}.{'0' * 32}"):
        answer = stack.http.get(f"{stack.url}{path}", timeout=10)
        assert answer.status_code == 404
        assert "<script>" not in answer.text
    _, _, payment = _awaiting(stack, new_user)
    page = stack.http.get(payment["next_action"]["url"] + "?x=<script>", timeout=10)
    assert page.status_code == 200
    assert "<script>" not in page.text


def test_a_forged_webhook_does_not_settle_a_payment_awaiting_authentication(stack, new_user):
    payer, payee, payment = _awaiting(stack, new_user)
    event = {
        "id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": "charge.succeeded",
        "data": {"charge_id": "ch_sbx_" + "0" * 24, "payment_id": payment["id"],
                 "status": "succeeded", "failure_code": None, "amount_captured": 2_000},
    }  # fmt: skip
    body = json.dumps(event).encode()
    forged = stack.http.post(
        f"{stack.url}/v1/webhooks/gateway", data=body, timeout=10,
        headers={"Content-Type": "application/json",
                 "Gateway-Signature": sign_webhook(body, "whsec_" + "f" * 40, int(time.time()))},
    )  # fmt: skip
    assert forged.status_code == 400
    assert _status(stack, payer, payment["id"]) == "requires_action"
    assert balance(stack, payee) == 0
