"""What a card charge's in-progress record keeps so that reconciliation can resume it
(cashew.payments.resume): the operation and the validated body, in the sparse ResumeIndex
only while in progress; and the charge rebuilt from it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cashew.payments import create, idempotency
from cashew.payments.idempotency import RESUMABLE, IdempotencyRecord, Kept
from cashew.payments.models import CardSource, PaymentRequest, TopUpRequest

ALICE = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
BOB = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"
METHOD = "pm_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
TOP_UP = {"amount": 1500, "currency": "USD", "payment_method_id": METHOD}
PAYMENT = {
    "amount": 900, "currency": "EUR", "payee_id": BOB, "description": "x" * 500,
    "source": {"type": "card", "payment_method_id": None}, "capture": False,
}  # fmt: skip


def _record(status: str, request: str | None) -> IdempotencyRecord:
    return IdempotencyRecord(
        pk=f"{ALICE}#k", status=status, request_hash="h", payment_id="pay_1",
        created_at="2026-12-01T12:00:00.000Z", expires_at=1, lease_until=2,
        kept=Kept(10, ["new_card"], METHOD, request),
    )  # fmt: skip


def test_an_in_progress_card_charge_keeps_its_request_and_is_in_the_resume_index() -> None:
    charge, _ = create.card_request(ALICE, create.TOP_UPS, TopUpRequest.model_validate(TOP_UP))
    item = _record("in_progress", charge.kept).to_item()
    assert json.loads(item["kept_request"]) == {"operation": "POST /v1/top-ups", "body": TOP_UP}
    assert (item["open_status"], item["open_since"]) == (RESUMABLE, item["created_at"])
    assert IdempotencyRecord.from_item(item).kept == Kept(10, ["new_card"], METHOD, charge.kept)


def test_a_record_keeping_no_request_or_completed_is_not_in_the_index() -> None:
    for record in (_record("in_progress", None), _record("completed", '{"x":1}')):
        assert not {"kept_request", "open_status", "open_since"} & set(record.to_item())


def test_the_completing_write_takes_the_record_out_of_the_index() -> None:
    write = idempotency.complete_item(idempotency.Scope(ALICE, "k", "h"), 201, "{}")
    expression = write["Update"]["UpdateExpression"]
    assert expression.endswith("REMOVE open_status, open_since, kept_request")


@pytest.mark.parametrize(
    ("operation", "asked", "field"),
    [
        (create.TOP_UPS, TopUpRequest.model_validate(TOP_UP), "payment_method_id"),
        (create.PAYMENTS, PaymentRequest.model_validate(PAYMENT), "source.payment_method_id"),
    ],
)
def test_the_kept_request_rebuilds_the_same_charge_and_hash(
    operation: str, asked: TopUpRequest | PaymentRequest, field: str
) -> None:
    charge, named = create.card_request(ALICE, operation, asked)
    kept_operation, kept = create.kept_request(charge.kept)
    assert (kept_operation, kept) == (operation, asked)
    again, _ = create.card_request(ALICE, kept_operation, kept)
    assert again == charge and named == field
    body = asked.model_dump(mode="json")
    assert idempotency.scope(ALICE, "k", kept_operation, kept.model_dump(mode="json")) == (
        idempotency.scope(ALICE, "k", operation, body)
    )
    assert len(charge.kept.encode()) < 1_024  # the record stays small (500-char description)


def test_the_rebuilt_charges_are_what_was_asked() -> None:
    top_up, _ = create.card_request(ALICE, create.TOP_UPS, TopUpRequest.model_validate(TOP_UP))
    assert (top_up.kind, top_up.payee_id, top_up.amount, top_up.currency) == (
        "top_up", ALICE, 1500, "USD"
    )  # fmt: skip
    assert top_up.capture and top_up.method_id == METHOD
    payment, _ = create.card_request(ALICE, create.PAYMENTS, PaymentRequest.model_validate(PAYMENT))
    assert (payment.kind, payment.payee_id, payment.capture, payment.method_id) == (
        "payment", BOB, False, None
    )  # fmt: skip


def test_only_card_charges_are_rebuilt() -> None:
    balance = PaymentRequest.model_validate({**PAYMENT, "source": {"type": "balance"}})
    with pytest.raises(ValueError, match="not a card charge"):
        create.card_request(ALICE, create.PAYMENTS, balance)
    with pytest.raises(ValueError, match="not a card charge"):
        create.card_request(ALICE, create.TOP_UPS, balance)
    with pytest.raises(ValueError, match="not a card charge"):
        create.kept_request('{"operation":"POST /v1/payouts","body":{}}')
    # A kept body is validated again as strictly as the client's: no extra field passes
    card = json.dumps({"operation": create.TOP_UPS, "body": {**TOP_UP, "number": "4242"}})
    with pytest.raises(ValidationError):
        create.kept_request(card)


def test_the_kept_bodies_hold_no_card_data() -> None:
    # The request models are strict (extra fields refused) and name no card field
    fields = set(TopUpRequest.model_fields) | set(PaymentRequest.model_fields)
    fields |= set(CardSource.model_fields)
    assert fields == {
        "amount", "currency", "payment_method_id", "payee_id", "source", "description",
        "capture", "type",
    }  # fmt: skip
