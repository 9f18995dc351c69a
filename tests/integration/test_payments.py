"""Top-ups and balance payments with their events/ samples against the embedded endpoint."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cashew import dynamo
from cashew.accounts import store as accounts_store
from cashew.errors import IdempotencyInProgressError
from cashew.gateways import get_gateway
from cashew.gateways.base import GatewayOutcomeUnknownError
from cashew.identity import Caller
from cashew.payments import create, idempotency, responses
from cashew.payments.models import PaymentRequest, TopUpRequest
from tests.integration.conftest import add_card, balance, pay, top_up


def test_top_up_with_an_approved_card_credits_the_balance(stack, new_user):
    user = new_user()
    method = add_card(stack, user)
    reply = top_up(stack, user, method, 10_000)
    assert reply.status == 201
    assert reply.body["type"] == "top_up"
    assert reply.body["status"] == "succeeded"
    assert reply.body["amount_captured"] == 10_000
    assert balance(stack, user) == 10_000


@pytest.mark.parametrize(
    ("number", "failure_code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000119", "gateway_error"),
    ],
)
def test_failed_card_top_up_is_a_failed_payment_and_credits_nothing(
    stack, new_user, number, failure_code
):
    user = new_user()
    method = add_card(stack, user, number)
    reply = top_up(stack, user, method, 5_000)
    assert reply.status == 201
    assert reply.body["status"] == "failed"
    assert reply.body["failure_code"] == failure_code
    assert balance(stack, user) == 0


def test_top_up_replay_same_key_returns_the_first_response_once(stack, new_user):
    user = new_user()
    method = add_card(stack, user)
    key = str(uuid.uuid4())
    first = top_up(stack, user, method, 1_000, key)
    again = top_up(stack, user, method, 1_000, key)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert balance(stack, user) == 1_000


def test_same_key_different_body_is_422_and_no_second_effect(stack, new_user):
    user = new_user()
    method = add_card(stack, user)
    key = str(uuid.uuid4())
    assert top_up(stack, user, method, 1_000, key).status == 201
    reused = top_up(stack, user, method, 2_000, key)
    assert reused.status == 422
    assert reused.code == "idempotency_key_reused"
    assert balance(stack, user) == 1_000


def test_keys_are_scoped_to_the_caller(stack, new_user):
    alice, bob = new_user(), new_user()
    key = str(uuid.uuid4())
    assert top_up(stack, alice, add_card(stack, alice), 700, key).status == 201
    second = top_up(stack, bob, add_card(stack, bob), 700, key)
    assert second.status == 201 and "Idempotent-Replayed" not in second.headers
    assert balance(stack, bob) == 700


def test_money_posts_require_an_idempotency_key(stack, new_user):
    user = new_user()
    reply = stack.call(
        "CreatePaymentFunction",
        "payments/create_payment.json",
        body={"amount": 1, "currency": "USD", "payee_id": user.id, "source": {"type": "balance"}},
        authorizer=user.authorizer,
        headers={"Idempotency-Key": ""},
    )
    assert reply.status == 400
    assert reply.code == "idempotency_key_missing"


def test_balance_payment_moves_money_from_payer_to_payee(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 10_000)
    reply = pay(stack, payer, payee.id, 2_500, description="Dinner")
    assert reply.status == 201
    assert reply.body["status"] == "succeeded"
    assert reply.body["payer_id"] == payer.id and reply.body["payee_id"] == payee.id
    assert reply.body["source"] == {"type": "balance"}
    assert reply.body["description"] == "Dinner"
    assert balance(stack, payer) == 7_500
    assert balance(stack, payee) == 2_500


def test_payment_above_the_balance_fails_and_moves_nothing(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    reply = pay(stack, payer, payee.id, 1_001)
    assert reply.status == 201
    assert reply.body["status"] == "failed"
    assert reply.body["failure_code"] == "insufficient_funds"
    assert balance(stack, payer) == 1_000
    assert balance(stack, payee) == 0


def test_payment_failure_is_replayed_for_the_same_key(stack, new_user):
    payer, payee = new_user(), new_user()
    key = str(uuid.uuid4())
    first = pay(stack, payer, payee.id, 100, key)
    # money arrives, but the same key still answers with the recorded failure
    top_up(stack, payer, add_card(stack, payer), 1_000)
    again = pay(stack, payer, payee.id, 100, key)
    assert first.body["status"] == "failed"
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert balance(stack, payer) == 1_000


@pytest.mark.parametrize(
    ("payee", "status", "code"),
    [("self", 422, "validation_error"), ("usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ", 404, "not_found")],
)
def test_bad_payees(stack, new_user, payee, status, code):
    payer = new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    reply = pay(stack, payer, payer.id if payee == "self" else payee, 100)
    assert reply.status == status
    assert reply.code == code
    assert balance(stack, payer) == 1_000


@pytest.mark.parametrize("amount", [10.0, "10", 1e3, 0, -5, 100_000_001, True, None])
def test_amount_must_be_a_positive_integer_in_minor_units(stack, new_user, amount):
    payer, payee = new_user(), new_user()
    reply = pay(stack, payer, payee.id, amount)
    assert reply.status == 422
    assert reply.body["errors"][0]["field"] == "amount"


def test_payment_with_unknown_card_method_is_404(stack, new_user):
    payer, payee, other = new_user(), new_user(), new_user()
    others_card = add_card(stack, other)
    reply = pay(
        stack, payer, payee.id, 100, source={"type": "card", "payment_method_id": others_card}
    )
    assert reply.status == 404


def test_concurrent_balance_payments_never_overdraw(stack, new_user):
    # Given a payer with 1000 and the no-double-spend race of Jepsen's bank test
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    caller = Caller(payer.id, payer.session_id, "user")
    request = PaymentRequest.model_validate(
        {"amount": 100, "currency": "USD", "payee_id": payee.id, "source": {"type": "balance"}}
    )
    # When 15 payments of 100 race, each with its own key
    with ThreadPoolExecutor(max_workers=15) as pool:
        results = list(
            pool.map(lambda i: create.create_payment(caller, request, f"race-{i}"), range(15))
        )
    # Then exactly 10 succeed and the balance is exactly 0
    statuses = sorted(r.model.model_dump_json().count('"status":"succeeded"') for r in results)
    assert statuses.count(1) == 10
    assert balance(stack, payer) == 0
    assert balance(stack, payee) == 1_000


def test_same_key_in_parallel_has_one_effect(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    caller = Caller(payer.id, payer.session_id, "user")
    request = PaymentRequest.model_validate(
        {"amount": 300, "currency": "USD", "payee_id": payee.id, "source": {"type": "balance"}}
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda _: create.create_payment(caller, request, "same-key"), range(8))
        )
    assert len({r.model.model_dump_json() for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert balance(stack, payer) == 700
    assert balance(stack, payee) == 300


def test_top_up_interrupted_after_the_record_is_resumed_by_asking_the_gateway(stack, new_user):
    # Given a top-up whose first attempt died after writing its in-progress record
    # (and possibly after charging the card): the outcome is unknown
    user = new_user()
    method = add_card(stack, user)
    request = TopUpRequest.model_validate(
        {"amount": 4_200, "currency": "USD", "payment_method_id": method}
    )
    scope = idempotency.scope(
        user.id, "crashed", "POST /v1/top-ups", request.model_dump(mode="json")
    )
    assert idempotency.begin(scope, "pay_01JCRASHEDCRASHEDCRASHED00") is None
    caller = Caller(user.id, user.session_id, "user")
    # While its lease runs, the first attempt may still be running: a retry is told so
    with pytest.raises(IdempotencyInProgressError):
        create.top_up(caller, request, "crashed")
    assert balance(stack, user) == 0
    # When the lease has passed (the first attempt's function has certainly stopped) and
    # the client retries with the same key
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_IDEMPOTENCY_TABLE"],
        Key={"pk": {"S": scope.pk}},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )
    retried = create.top_up(caller, request, "crashed")
    # Then the gateway is asked again with the same key, and the money moves exactly once,
    # under the payment id the first attempt reserved
    assert responses.status_code(retried) == 201 and not retried.replayed
    assert '"id":"pay_01JCRASHEDCRASHEDCRASHED00"' in retried.model.model_dump_json()
    assert balance(stack, user) == 4_200
    again = create.top_up(caller, request, "crashed")
    assert again.replayed and again.model.model_dump_json() == retried.model.model_dump_json()
    assert balance(stack, user) == 4_200


def test_a_resumed_top_up_that_named_no_card_asks_about_the_card_it_charged(stack, new_user):
    # Given a top-up naming no card, interrupted after its in-progress record (it charged the
    # default of its time, the first card), and a second card made the default since
    user = new_user()
    first, second = add_card(stack, user), add_card(stack, user)
    request = TopUpRequest.model_validate({"amount": 1_500, "currency": "USD"})
    scope = idempotency.scope(
        user.id, "crashed-default", "POST /v1/top-ups", request.model_dump(mode="json")
    )
    kept = idempotency.Kept(0, [], first)
    assert idempotency.begin(scope, "pay_01JCRASHEDDEFAULTCRASHED00", kept=kept) is None
    assert accounts_store.set_default_method(user.id, second)
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_IDEMPOTENCY_TABLE"],
        Key={"pk": {"S": scope.pk}},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )
    # When the client retries with the same key
    retried = create.top_up(Caller(user.id, user.session_id, "user"), request, "crashed-default")
    # Then the gateway is asked again about the first card, and the payment says so
    assert responses.status_code(retried) == 201 and not retried.replayed
    assert retried.model.source == {"type": "card", "payment_method_id": first}
    assert balance(stack, user) == 1_500


def test_same_top_up_key_in_parallel_charges_and_credits_once(stack, new_user):
    user = new_user()
    method = add_card(stack, user)
    caller = Caller(user.id, user.session_id, "user")
    request = TopUpRequest.model_validate(
        {"amount": 900, "currency": "USD", "payment_method_id": method}
    )

    def attempt(_: int) -> idempotency.Outcome[Any] | IdempotencyInProgressError:
        try:
            return create.top_up(caller, request, "parallel")
        except IdempotencyInProgressError as busy:  # the first one is still running
            return busy

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(6)))
    answered = [r for r in results if isinstance(r, idempotency.Outcome)]
    assert answered
    assert len({r.model.model_dump_json() for r in answered}) == 1
    assert sum(not r.replayed for r in answered) == 1
    assert balance(stack, user) == 900


def test_card_payment_to_an_unknown_payee_is_404_and_charges_nothing(stack, new_user, monkeypatch):
    payer = new_user()
    method = add_card(stack, payer)
    charges = []
    gateway = get_gateway()
    monkeypatch.setattr(type(gateway), "authorise", lambda *a, **k: charges.append(a) or None)
    reply = pay(
        stack, payer, "usr_00000000000000000000000000", 700,
        source={"type": "card", "payment_method_id": method},
    )  # fmt: skip
    assert reply.status == 404
    assert reply.code == "not_found"
    assert charges == []


class _UnknownOutcomeGateway:
    """Charges the card, then loses the answer the first time: the outcome is unknown."""

    def __init__(self, real) -> None:
        self.real = real
        self.calls = 0

    def authorise(self, *args, **kwargs):
        self.calls += 1
        charge = self.real.authorise(*args, **kwargs)
        if self.calls <= 3:  # every attempt of the first request times out after sending
            raise GatewayOutcomeUnknownError("read timeout")
        return charge


def test_an_unknown_gateway_outcome_is_never_recorded_as_failed(stack, new_user, monkeypatch):
    # Given a gateway whose answers to the first request are lost after it charged the card
    user = new_user()
    method = add_card(stack, user)
    gateway = _UnknownOutcomeGateway(get_gateway())
    monkeypatch.setattr("cashew.payments.create.get_gateway", lambda: gateway)
    key = str(uuid.uuid4())
    # When the top-up is attempted, Then the client is told to retry, and nothing is final
    first = top_up(stack, user, method, 800, key)
    assert first.status == 409
    assert first.code == "idempotency_in_progress"
    assert balance(stack, user) == 0
    # And when it retries with the same key, the gateway is asked again and settles it
    again = top_up(stack, user, method, 800, key)
    assert again.status == 201 and again.body["status"] == "succeeded"
    assert balance(stack, user) == 800


def test_persistent_throttling_of_a_money_transaction_is_429(stack, new_user, monkeypatch):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)

    def throttled(items):
        raise dynamo.TransactionCanceled(
            ["None", "None", "ThrottlingError", "None", "None"], [None] * 5
        )

    monkeypatch.setattr(dynamo, "transact_write", throttled)
    reply = pay(stack, payer, payee.id, 100)
    assert reply.status == 429
    assert reply.code == "rate_limited"
    assert reply.headers["Retry-After"] == "1"
    monkeypatch.undo()
    assert balance(stack, payer) == 1_000
