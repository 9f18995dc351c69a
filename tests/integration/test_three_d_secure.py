"""3-D Secure end to end in-process (issue 14): the sandbox's 3-D Secure card answers
`requires_action` with a challenge page; the page (local.challenges, as `make dev` serves
it) sends the sandbox's signed webhook, and the gateway webhook function settles the
payment once. `abandon` fails what no one authenticated."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from cashew.gateways.base import sign_webhook
from cashew.gateways.sandbox import SandboxGateway
from cashew.payments import actions, store
from local.challenges import Challenges
from local.events import api_event
from tests.integration.conftest import add_card, balance, pay, top_up
from tests.support.lambda_runtime import reply

THREE_DS = "4000000000003063"


def _deliver(stack: Any, event: dict[str, Any], secret: str | None = None) -> int:
    body = json.dumps(event, separators=(",", ":"))
    header = sign_webhook(body.encode(), secret or stack.gateway_webhook_secret(), int(time.time()))
    sent = api_event(
        "payments/gateway_webhook.json", raw_body=body, headers={"Gateway-Signature": header}
    )
    return reply(stack.invoke("GatewayWebhookFunction", sent)).status


@pytest.fixture
def challenges(stack: Any) -> Challenges:
    """The challenge pages of this stack, sending their webhooks to its webhook function."""
    delivered: list[int] = []
    return Challenges(
        stack.gateway_webhook_secret, lambda event: delivered.append(_deliver(stack, event))
    )


def _complete(challenges: Challenges, payment: dict[str, Any], result: str) -> int:
    url = payment["next_action"]["url"]
    path = url.split("127.0.0.1:3000", 1)[1]
    reference = path.rsplit("/", 1)[1]
    event = {"path": path, "pathParameters": {"reference": reference}, "body": f"result={result}"}
    return int(challenges.complete(event)["statusCode"])


def _card_payment(stack: Any, payer: Any, payee: Any, amount: int, **extra: Any) -> Any:
    method = add_card(stack, payer, THREE_DS)
    return pay(
        stack,
        payer,
        payee.id,
        amount,
        source={"type": "card", "payment_method_id": method},
        **extra,
    )


def _requires_action(payment: dict[str, Any]) -> None:
    assert payment["status"] == "requires_action"
    assert payment["amount_captured"] == 0
    assert payment["next_action"]["type"] == "redirect_to_url"
    assert payment["next_action"]["url"].startswith("http://127.0.0.1:3000/_sandbox/v1/challenges/")
    assert payment["id"] not in payment["next_action"]["url"]


def test_a_3ds_top_up_requires_action_and_credits_once_when_it_passes(stack, new_user, challenges):
    # Given a user with the 3-D Secure card
    user = new_user()
    method = add_card(stack, user, THREE_DS)
    key = str(uuid.uuid4())
    # When they top up
    created = top_up(stack, user, method, 2_500, key=key)
    # Then it is 201 requires_action with the challenge's URL, and nothing is credited
    assert created.status == 201
    _requires_action(created.body)
    assert balance(stack, user) == 0
    # ... a replay of the request answers the same payment with the same next_action
    again = top_up(stack, user, method, 2_500, key=key)
    assert (again.status, again.body) == (201, created.body)
    # When the card holder passes the challenge
    assert _complete(challenges, created.body, "pass") == 200
    # Then the top-up succeeded, credited once, with no action left
    settled = store.get(created.body["id"]).payment
    assert (settled.status, settled.amount_captured, settled.next_action) == (
        "succeeded", 2_500, None,
    )  # fmt: skip
    assert balance(stack, user) == 2_500
    # ... and a second completion, or the same webhook again, moves nothing
    assert _complete(challenges, created.body, "pass") == 409
    challenge = SandboxGateway(secret=stack.gateway_webhook_secret()).read_challenge(
        created.body["next_action"]["url"].rsplit("/", 1)[1]
    )
    assert challenge is not None
    assert _deliver(stack, SandboxGateway.challenge_event(challenge, True)) == 200
    assert _deliver(stack, SandboxGateway.challenge_event(challenge, False)) == 200
    assert store.get(created.body["id"]).payment.status == "succeeded"
    assert balance(stack, user) == 2_500
    # ... and the replay of the request still answers as the request did (its record)
    assert top_up(stack, user, method, 2_500, key=key).body == created.body


def test_a_3ds_card_payment_credits_the_payee_when_it_passes(stack, new_user, challenges):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 900)
    assert created.status == 201
    _requires_action(created.body)
    assert balance(stack, payee) == 0
    assert _complete(challenges, created.body, "pass") == 200
    got = stack.call(
        "GetPaymentFunction", "payments/get_payment.json", authorizer=payer.authorizer,
        path={"id": created.body["id"]},
    )  # fmt: skip
    assert (got.body["status"], got.body["next_action"]) == ("succeeded", None)
    assert balance(stack, payee) == 900


def test_a_failed_challenge_fails_the_payment_and_moves_nothing(stack, new_user, challenges):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 800)
    assert _complete(challenges, created.body, "fail") == 200
    failed = store.get(created.body["id"]).payment
    assert (failed.status, failed.failure_code, failed.next_action) == (
        "failed", "authentication_failed", None,
    )  # fmt: skip
    assert failed.failure_message
    assert balance(stack, payee) == 0
    # a pass sent afterwards (under another event id) finds the payment moved on
    challenge = SandboxGateway(secret=stack.gateway_webhook_secret()).read_challenge(
        created.body["next_action"]["url"].rsplit("/", 1)[1]
    )
    assert challenge is not None
    late = SandboxGateway.challenge_event(challenge, True) | {"id": "evt_sbx_late"}
    assert _deliver(stack, late) == 200
    assert store.get(created.body["id"]).payment.status == "failed"
    assert balance(stack, payee) == 0


def test_capture_false_and_a_pass_is_an_authorisation(stack, new_user, challenges):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 600, capture=False)
    _requires_action(created.body)
    assert _complete(challenges, created.body, "pass") == 200
    authorised = store.get(created.body["id"]).payment
    assert (authorised.status, authorised.amount_captured, authorised.next_action) == (
        "requires_capture", 0, None,
    )  # fmt: skip
    assert balance(stack, payee) == 0
    captured = stack.call(
        "CapturePaymentFunction", "payments/capture_payment.json", authorizer=payee.authorizer,
        path={"id": created.body["id"]}, body={}, headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert (captured.status, captured.body["status"]) == (200, "succeeded")
    assert balance(stack, payee) == 600


def test_a_payment_awaiting_authentication_cannot_be_captured_or_canceled(stack, new_user):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 600, capture=False)
    for function, sample, who in (
        ("CapturePaymentFunction", "payments/capture_payment.json", payee),
        ("CancelPaymentFunction", "payments/cancel_payment.json", payer),
    ):
        answer = stack.call(
            function, sample, authorizer=who.authorizer, path={"id": created.body["id"]},
            body={}, headers={"Idempotency-Key": str(uuid.uuid4())},
        )  # fmt: skip
        assert answer.status == 409, answer.body
    assert store.get(created.body["id"]).payment.status == "requires_action"


def test_a_forged_webhook_is_refused_and_changes_nothing(stack, new_user):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 700)
    # a pass for this charge, built by someone without the stack's secret
    forger = SandboxGateway(secret="whsec_" + "f" * 40)
    stored = store.get(created.body["id"])
    assert stored is not None and stored.charge_id is not None
    event = {
        "id": "evt_sbx_forged", "type": "charge.succeeded",
        "data": {"charge_id": stored.charge_id, "payment_id": created.body["id"],
                 "status": "succeeded", "failure_code": None, "amount_captured": 700},
    }  # fmt: skip
    assert _deliver(stack, event, secret="whsec_" + "f" * 40) == 400
    # ... and a challenge reference of its own making is unknown to the stack's page
    assert forger.read_challenge(created.body["next_action"]["url"].rsplit("/", 1)[1]) is None
    assert store.get(created.body["id"]).payment.status == "requires_action"
    assert balance(stack, payee) == 0


def test_abandon_fails_it_once_and_a_late_pass_moves_nothing(stack, new_user, challenges):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 500)
    # When reconciliation abandons the authentication
    assert actions.abandon(created.body["id"]) is True
    # Then the payment failed as a failed challenge fails it, and only once
    failed = store.get(created.body["id"]).payment
    assert (failed.status, failed.failure_code, failed.next_action) == (
        "failed", "authentication_failed", None,
    )  # fmt: skip
    assert actions.abandon(created.body["id"]) is False
    # ... and the card holder passing the challenge afterwards moves no money
    assert _complete(challenges, created.body, "pass") == 200
    assert store.get(created.body["id"]).payment.status == "failed"
    assert balance(stack, payee) == 0


def test_abandon_leaves_anything_not_awaiting_authentication(stack, new_user, challenges):
    payer, payee = new_user(), new_user()
    created = _card_payment(stack, payer, payee, 400)
    assert _complete(challenges, created.body, "pass") == 200
    assert actions.abandon(created.body["id"]) is False
    assert store.get(created.body["id"]).payment.status == "succeeded"
    assert balance(stack, payee) == 400
    assert actions.abandon("pay_01ZZZZZZZZZZZZZZZZZZZZZZZZ") is False


def test_requires_action_is_no_outcome_and_what_it_ends_as_is_logged_once(
    stack, new_user, challenges
):
    stack.skip_changes()
    user = new_user()
    method = add_card(stack, user, THREE_DS)
    created = top_up(stack, user, method, 1_200).body
    stack.settle()
    assert _entries(stack, user, created["id"]) == []
    assert _complete(challenges, created, "pass") == 200
    stack.settle()
    assert _entries(stack, user, created["id"]) == [("top_up", "succeeded", 1_200)]


def _entries(stack: Any, user: Any, payment_id: str) -> list[tuple[str, str, int]]:
    listed = stack.call(
        "ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=user.authorizer, query={"limit": "100"},
    )  # fmt: skip
    assert listed.status == 200
    return [
        (e["type"], e["status"], e["amount"])
        for e in listed.body["data"]
        if e["payment_id"] == payment_id
    ]


@pytest.mark.parametrize("round_", range(3))
def test_a_pass_an_abandon_and_a_retry_racing_settle_it_once(stack, new_user, round_):
    # Given a top-up awaiting authentication
    user = new_user()
    method = add_card(stack, user, THREE_DS)
    key = str(uuid.uuid4())
    created = top_up(stack, user, method, 1_000, key=key).body
    challenge = SandboxGateway(secret=stack.gateway_webhook_secret()).read_challenge(
        created["next_action"]["url"].rsplit("/", 1)[1]
    )
    assert challenge is not None
    passed = SandboxGateway.challenge_event(challenge, True)
    answers: dict[str, Any] = {}

    def webhook() -> None:
        answers["webhook"] = _deliver(stack, passed)

    def reconcile() -> None:
        answers["abandon"] = actions.abandon(created["id"])

    def retry() -> None:
        answers["retry"] = top_up(stack, user, method, 1_000, key=key).body

    # When the webhook, a reconciliation run and the client's retry race
    threads = [threading.Thread(target=f) for f in (webhook, reconcile, retry)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then the payment settled once, and the money follows what it settled as
    settled = store.get(created["id"]).payment
    assert answers["webhook"] == 200
    assert answers["retry"] == created  # the request's recorded answer
    if answers["abandon"]:
        assert (settled.status, settled.failure_code) == ("failed", "authentication_failed")
        assert balance(stack, user) == 0
    else:
        assert settled.status == "succeeded"
        assert balance(stack, user) == 1_000
    # ... and neither a second run nor the webhook again changes it
    assert actions.abandon(created["id"]) is False
    assert _deliver(stack, passed) == 200
    assert store.get(created["id"]).payment.status == settled.status
    assert balance(stack, user) == (1_000 if settled.status == "succeeded" else 0)
