"""The payments module's stored records: each converts to its item and back, and reads the
items as the code before typed records wrote them, to the same fields."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cashew import dynamo
from cashew.payments import idempotency, store
from cashew.payments.idempotency import IdempotencyRecord, Kept, Replay
from cashew.payments.models import (
    PaymentResponse,
    PaymentStatus,
    PaymentType,
    RefundResponse,
    RefundStatus,
    Risk,
    RiskLevel,
)
from cashew.payments.store import StoredPayment, StoredRefund, Unreadable, WebhookMarker
from tests.unit.test_ledger_reports import payment_record
from tests.unit.test_outcomes import _refund

PAYER, PAYEE = "usr_01J0000000000000000000PAYR", "usr_01J0000000000000000000PAYE"
text = st.text(max_size=12)
amounts = st.integers(min_value=0, max_value=10**12)
times = st.sampled_from(["2026-11-30T10:00:00.000Z", "2026-12-01T00:00:00.123Z"])

risks = st.builds(
    Risk,
    score=st.integers(min_value=0, max_value=100),
    level=st.sampled_from(get_args(RiskLevel)),
    rules=st.none() | st.lists(text, max_size=3),
)
payments = st.builds(
    PaymentResponse,
    id=text.map(lambda s: f"pay_{s}"),
    type=st.sampled_from(get_args(PaymentType)),
    status=st.sampled_from(get_args(PaymentStatus)),
    amount=amounts,
    currency=st.sampled_from(["USD", "EUR"]),
    payer_id=text,
    payee_id=text,
    source=st.dictionaries(text, text, max_size=3),
    amount_captured=amounts,
    amount_refunded=amounts,
    failure_code=st.none() | text,
    failure_message=st.none() | text,
    risk=risks,
    description=st.none() | text,
    created_at=times,
    updated_at=times,
)
stored_payments = st.builds(
    StoredPayment, payment=payments, charge_id=st.none() | text, fired_rules=st.lists(text)
)
refunds = st.builds(
    RefundResponse,
    id=text.map(lambda s: f"re_{s}"),
    payment_id=text,
    amount=amounts,
    currency=st.sampled_from(["USD", "EUR"]),
    status=st.sampled_from(get_args(RefundStatus)),
    reason=st.none() | text,
    created_at=times,
)
stored_refunds = st.builds(
    StoredRefund,
    refund=refunds,
    gateway_refund_id=st.none() | text,
    payment_payer_id=st.none() | text,
    payment_payee_id=st.none() | text,
    payment_source=st.none() | st.sampled_from(["card", "balance"]),
)
markers = st.builds(
    WebhookMarker, event_id=text, expires_at=st.integers(min_value=0, max_value=2**40)
)
idempotency_records = st.builds(
    IdempotencyRecord,
    pk=text,
    status=st.sampled_from(["in_progress", "completed"]),
    request_hash=text,
    payment_id=text,
    created_at=times,
    expires_at=st.integers(min_value=0, max_value=2**40),
    lease_until=st.none() | st.integers(min_value=0, max_value=2**40),
    response=st.none() | st.builds(Replay, status_code=st.sampled_from([200, 201]), body=text),
    kept=st.none()
    | st.builds(Kept, risk_score=st.integers(0, 100), fired_rules=st.lists(text, max_size=3)),
)


def _as_stored(item: dict[str, Any]) -> dict[str, Any]:
    """The item as DynamoDB gives it back."""
    return dynamo.deserialize(dynamo.serialize(item))


# --- every record converts to its item and back --------------------------------------------


@given(stored_payments)
def test_a_payment_converts_to_its_item_and_back(record: StoredPayment) -> None:
    assert StoredPayment.from_item(_as_stored(record.to_item())) == record


@given(stored_refunds)
def test_a_refund_converts_to_its_item_and_back(record: StoredRefund) -> None:
    assert StoredRefund.from_item(_as_stored(record.to_item())) == record


@given(markers)
def test_a_webhook_marker_converts_to_its_item_and_back(record: WebhookMarker) -> None:
    assert WebhookMarker.from_item(_as_stored(record.to_item())) == record


@given(idempotency_records)
def test_an_idempotency_record_converts_to_its_item_and_back(record: IdempotencyRecord) -> None:
    assert IdempotencyRecord.from_item(_as_stored(record.to_item())) == record


# --- items as the code before typed records wrote and read them ----------------------------


def _old_payment_item(payment: PaymentResponse, fired: list[str], charge: str | None) -> dict:
    """The item `store.put_item` wrote before records had their own conversion."""
    return {"pk": payment.id, **payment.model_dump(mode="json"), "fired_rules": fired,
            "charge_id": charge}  # fmt: skip


def _old_stored(item: dict[str, Any]) -> tuple[PaymentResponse, str | None, list[str]]:
    """What `store.stored(item)` read from a payment item before records."""
    record_only = ("pk", "charge_id", "fired_rules")
    payment = PaymentResponse.model_validate(
        {k: v for k, v in item.items() if k not in record_only}, strict=False
    )
    return payment, item.get("charge_id"), list(item.get("fired_rules") or [])


@pytest.mark.parametrize(
    "item",
    [
        payment_record(1, PAYER, PAYEE, 1_000),
        payment_record(
            2,
            PAYER,
            PAYEE,
            700,
            status="failed",
            amount_captured=0,
            failure_code="card_declined",
            failure_message="declined",
            charge_id=None,
            fired_rules=["velocity"],
        ),
        {k: v for k, v in payment_record(3, PAYER, PAYEE, 5).items() if k != "fired_rules"},
    ],
)
def test_a_stored_payment_item_reads_to_the_same_fields_as_before(item: dict[str, Any]) -> None:
    record = StoredPayment.from_item(_as_stored(item))
    assert (record.payment, record.charge_id, record.fired_rules) == _old_stored(item)


@given(stored_payments)
def test_a_payment_is_written_as_the_same_item_as_before(record: StoredPayment) -> None:
    put = store.put_item(record.payment, record.fired_rules, record.charge_id)["Put"]
    old = _old_payment_item(record.payment, record.fired_rules, record.charge_id)
    written = dynamo.deserialize(put["Item"])
    # plus ReconcileIndex's keys, exactly while the payment is open
    index = {k: written.pop(k) for k in ("open_status", "open_since") if k in written}
    assert written == _as_stored(old)
    key = store.open_key("payment", record.payment.status)
    assert index == ({"open_status": key, "open_since": record.payment.updated_at} if key else {})


def test_a_stored_refund_item_reads_to_the_same_fields_as_before() -> None:
    item = {**_refund("succeeded"), "gateway_refund_id": "re_gw_1", "reason": "duplicate"}
    record = StoredRefund.from_item(_as_stored(item))
    record_only = ("pk", "gateway_refund_id", "payment_payer_id", "payment_payee_id",
                   "payment_source")  # fmt: skip
    assert record.refund == RefundResponse.model_validate(
        {k: v for k, v in item.items() if k not in record_only}
    )
    assert (record.gateway_refund_id, record.payment_payer_id, record.payment_payee_id) == (
        "re_gw_1", PAYER, PAYEE,
    )  # fmt: skip
    assert record.payment_source == "card"


def test_a_refund_is_written_as_the_same_item_as_before() -> None:
    record = StoredRefund.from_item(_refund("pending"))
    payment = store.StoredPayment.from_item(
        payment_record(1, PAYER, PAYEE, 300, source="card")
    ).payment
    put = store.put_refund_item(record.refund, payment, None)["Put"]
    old = {"pk": record.refund.id, **record.refund.model_dump(mode="json"),
           "gateway_refund_id": None, "payment_payer_id": PAYER, "payment_payee_id": PAYEE,
           "payment_source": "card"}  # fmt: skip
    # plus ReconcileIndex's keys: a pending refund is open
    index = {"open_status": "refund#pending", "open_since": record.refund.created_at}
    assert dynamo.deserialize(put["Item"]) == {**old, **index}


def test_a_webhook_marker_is_written_as_before() -> None:
    put = store.webhook_seen_item("evt_1", 1_800_000_000)["Put"]
    assert dynamo.deserialize(put["Item"]) == {"pk": "WEBHOOK#evt_1", "expires_at": 1_800_000_000}
    assert WebhookMarker.from_item(dynamo.deserialize(put["Item"])) == WebhookMarker(
        "evt_1", 1_800_000_000
    )


def test_idempotency_items_as_the_protocol_writes_them_read_back() -> None:
    s = idempotency.scope(PAYER, "k", "POST /v1/top-ups", {"amount": 1})
    put = idempotency.completed_item(s, "pay_1", 201, '{"id":"pay_1"}')["Put"]
    done = dynamo.deserialize(put["Item"])
    assert set(done) == {"pk", "status", "request_hash", "payment_id", "status_code",
                         "response_body", "created_at", "expires_at"}  # fmt: skip
    record = IdempotencyRecord.from_item(done)
    assert idempotency.check(s, record) == Replay(201, '{"id":"pay_1"}')
    assert (record.payment_id, record.lease_until, record.kept) == ("pay_1", None, None)
    # an in-progress record as `begin` wrote it, with the screening a card charge keeps
    in_progress = {"pk": s.pk, "status": "in_progress", "request_hash": s.request_hash,
                   "payment_id": "pay_2", "created_at": "2026-11-30T10:00:00.000Z",
                   "expires_at": 1_800_000_000, "lease_until": 1_700_000_000,
                   "risk_score": 40, "fired_rules": ["new_card"]}  # fmt: skip
    record = IdempotencyRecord.from_item(_as_stored(in_progress))
    assert idempotency.check(s, record) is None
    assert (record.lease_until, record.kept) == (1_700_000_000, Kept(40, ["new_card"]))
    assert record.to_item() == in_progress


# --- items that are not records ------------------------------------------------------------


def test_an_item_that_is_no_payment_as_stored_is_unreadable_with_its_key_and_time() -> None:
    broken = {"pk": "pay_01J00000000000000000BROKEN", "status": "succeeded",
              "updated_at": "2026-11-30T10:00:00.000Z"}  # fmt: skip
    found = store.record(broken)
    assert isinstance(found, Unreadable)
    assert (found.pk, found.changed_at) == (broken["pk"], "2026-11-30T10:00:00.000Z")
    assert isinstance(found.error, ValidationError)  # what the publisher's set-aside names
    with pytest.raises(ValidationError):
        store.from_image(broken)
    assert isinstance(store.record({"pk": "re_1", "amount": "x"}), Unreadable)


def test_a_stream_image_is_a_record_only_for_a_payment_or_refund() -> None:
    assert isinstance(store.from_image(payment_record(1, PAYER, PAYEE, 5)), StoredPayment)
    assert isinstance(store.from_image(_refund("pending")), StoredRefund)
    assert store.from_image({"pk": "WEBHOOK#evt_1", "expires_at": 1}) is None
