"""The payout operation's steps (cashew.payouts.create) with in-memory fakes, the settling
write (cashew.payouts.settle), and the sandbox's payout table (API.md "Gateway")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cashew.accounts.store import PaymentMethod
from cashew.accounts.velocity import History
from cashew.gateways.base import (
    GATEWAY_ERROR_PAYOUT,
    GatewayPayout,
    GatewayUnavailableError,
    PayoutEvent,
    with_retries,
)
from cashew.gateways.sandbox import SandboxGateway
from cashew.identity import Caller
from cashew.payments import idempotency
from cashew.payouts import create, settle
from cashew.payouts.models import PayoutRequest

USER = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
METHOD = "pm_01JCQ3G0H2J4K6M8N0P2Q4R6S8"
SECRET = "whsec_" + "s" * 40


def method(status: str = "active", risky: bool = False) -> PaymentMethod:
    return PaymentMethod(
        user_id=USER, id=METHOD, brand="visa", last4="4242", exp_month=12, exp_year=2099,
        fingerprint="f", billing_name=None, gateway_risk_flag=risky, token_ciphertext=b"c",
        token_nonce=b"n", token_data_key=b"k", created_at="2020-01-01T00:00:00.000Z",
        status=status,
    )  # fmt: skip


def operation(
    monkeypatch: pytest.MonkeyPatch, *, balance: int, amount: int = 3_000, **card: Any
) -> create.PayoutOperation:
    monkeypatch.setattr(create.velocity, "read", lambda user: History(user, 0, (), 10**12))
    held = create.accounts.Held(balance, {})
    monkeypatch.setattr(create.accounts, "held", lambda user, currency, at_least=None: held)
    monkeypatch.setattr(create.idempotency, "get", lambda scope: None)  # a new key
    scope = idempotency.scope(USER, "k", "POST /v1/payouts", {"amount": amount})
    request = PayoutRequest(amount=amount, currency="USD")
    caller = Caller(user_id=USER, role="user", session_id="ses_x")
    return create.PayoutOperation(caller, scope, method(**card), request)


def test_admission_debits_with_the_record_the_attempt_and_the_pending_payout(monkeypatch):
    op = operation(monkeypatch, balance=10_000)
    admission = op.admit()
    assert not admission.at_once and admission.along is not None
    assert admission.along.names == ("history", "payout", "debit")
    assert admission.kept is not None and admission.kept.payment_method_id == METHOD
    assert op.stored.payout.status == "pending" and op.stored.payout.id == admission.work_id


def test_too_little_balance_is_answered_at_once_failed_and_moves_nothing(monkeypatch):
    op = operation(monkeypatch, balance=2_999)
    admission = op.admit()
    assert admission.at_once and admission.along is not None
    assert admission.along.names == ("history",)  # the attempt counts, as a balance payment's
    commit = op.commit(None)
    assert (commit.model.status, commit.model.failure_code) == ("failed", "insufficient_funds")
    assert commit.items.names == ("payout",)  # the failed payout only: no debit, no credit


def test_a_retry_whose_debit_left_too_little_resumes_its_record_not_a_failure(monkeypatch):
    # Given a key whose first request debited the balance and whose outcome is unknown
    op = operation(monkeypatch, balance=0)
    monkeypatch.setattr(create.idempotency, "get", lambda scope: object())
    # Then the retry is admitted to find that record, not answered insufficient_funds
    admission = op.admit()
    assert not admission.at_once and admission.along is None and op.failure is None


def test_a_blocked_payout_is_failed_at_once_and_records_no_attempt(monkeypatch):
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT", "1000")
    from cashew.config import get_settings

    get_settings.cache_clear()
    op = operation(monkeypatch, balance=10_000)
    admission = op.admit()
    assert admission.at_once and admission.along is None
    commit = op.commit(None)
    assert (commit.model.status, commit.model.failure_code) == ("failed", "fraud_suspected")
    assert commit.model.risk.level == "blocked"


def test_an_unusable_method_writes_nothing_but_the_record_and_is_refused(monkeypatch):
    op = operation(monkeypatch, balance=10_000, status="expired")
    admission = op.admit()
    assert admission.along is None and not admission.at_once
    with pytest.raises(idempotency.Refused) as refused:
        op.prepare(admission.work_id, None)
    assert refused.value.args[0].code == "payment_method_unusable"


@pytest.mark.parametrize(
    ("answer", "status", "names"),
    [
        (GatewayPayout("po_sbx_1", "paid"), "paid", ("payout",)),
        (GatewayPayout("po_sbx_1", "failed", "card_declined"), "failed", ("payout", "credit")),
        (GATEWAY_ERROR_PAYOUT, "failed", ("payout", "credit")),
        (GatewayPayout("po_sbx_1", "pending"), "pending", ("payout",)),
    ],
)
def test_the_gateways_answer_is_committed_with_the_credit_back_only_on_failure(
    monkeypatch, answer, status, names
):
    op = operation(monkeypatch, balance=10_000)
    op.admit()
    op.prepare(op.payout_id, None)
    commit = op.commit(answer)
    assert commit.model.status == status
    assert commit.items.names == names
    if status == "pending":  # unchanged but for the gateway's id, kept while still pending
        assert commit.model == op.stored.payout


def test_the_settling_write_is_conditional_on_the_payout_being_pending(monkeypatch):
    op = operation(monkeypatch, balance=10_000)
    op.admit()
    after, tx = settle.settlement(op.stored, GatewayPayout("po_sbx_1", "failed", "expired_card"))
    assert after.payout.failure_code == "expired_card"
    payout, credit = (item["Update"] for item in tx._items.values())
    assert payout["ConditionExpression"] == "#status = :pending"
    assert payout["ExpressionAttributeValues"][":to"] == {"S": "failed"}
    assert credit["ExpressionAttributeValues"][":amount"] == {"N": "3000"}
    assert "ConditionExpression" not in credit  # a credit back never fails


# --- the sandbox's payouts ------------------------------------------------------------------

TABLE = [
    ("4242424242424242", "paid", None),
    ("5555555555554444", "paid", None),
    ("4000000000000002", "failed", "card_declined"),
    ("4000000000009995", "failed", "insufficient_funds"),
    ("4000000000000069", "failed", "expired_card"),
    ("4000000000003220", "pending", None),
    ("4000000000003063", "paid", None),
    ("4100000000000019", "paid", None),
]


@pytest.mark.parametrize(("number", "status", "code"), TABLE)
def test_the_sandbox_pays_out_as_the_cards_charges_behave(number, status, code):
    gateway = SandboxGateway(secret=SECRET)
    token = gateway.tokenise(number, 12, 2030, "123").token
    answer = gateway.payout(token, 500, "USD", idempotency_key="k1", metadata={"payout_id": "po"})
    assert (answer.status, answer.failure_code) == (status, code)
    again = gateway.payout(token, 500, "USD", idempotency_key="k1", metadata={"payout_id": "po"})
    assert again == answer and answer.id is not None and answer.id.startswith("po_sbx_")


def test_the_error_card_is_unavailable_and_ends_as_gateway_error_after_bounded_retries():
    gateway = SandboxGateway(secret=SECRET)
    token = gateway.tokenise("4000000000000119", 12, 2030, "123").token
    calls: list[int] = []

    def call() -> GatewayPayout:
        calls.append(1)
        return gateway.payout(token, 500, "USD", idempotency_key="k", metadata={})

    with pytest.raises(GatewayUnavailableError):
        call()
    answer = with_retries(call, attempts=3, failure=GATEWAY_ERROR_PAYOUT, base_delay=0)
    assert answer == GATEWAY_ERROR_PAYOUT and len(calls) == 4


def test_the_processing_cards_payout_schedules_its_signed_paid_event():
    sent: list[dict[str, Any]] = []
    gateway = SandboxGateway(
        webhook_url="http://127.0.0.1:1/_sandbox/schedule", secret=SECRET,
        transport=lambda url, body, timeout: sent.append(json.loads(body)),
    )  # fmt: skip
    token = gateway.tokenise("4000000000003220", 12, 2030, "123").token
    answer = gateway.payout(token, 700, "EUR", idempotency_key="k", metadata={"payout_id": "po_1"})
    assert answer.status == "pending" and len(sent) == 1
    event = sent[0]["event"]
    body = json.dumps(event).encode()
    from cashew.gateways.base import sign_webhook

    parsed = gateway.parse_webhook(body, sign_webhook(body, SECRET, 1_000), 1_000)
    assert parsed == PayoutEvent(
        id=event["id"], gateway_payout_id=str(answer.id), payout_id="po_1", status="paid",
        failure_code=None, amount=700, currency="EUR",
    )  # fmt: skip
