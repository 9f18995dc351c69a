"""Items edited by hand (or by a bug) so that they hold a number no record can hold (10.5:
every number Cashew stores is an integer): the audit names them and goes on, the republisher
leaves what it cannot read for a person and goes on. Neither may fail as a whole (a 500, a
crashed run) on one bad item, or one edit would hide every other discrepancy, or hold back
every lost outcome. Each case runs on copies of the tables (schemas from the template)
holding only the items it puts there, so nothing else the shared stack holds takes part."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cashew import clock, dynamo, republish
from cashew.config import get_settings
from cashew.payments import face as payments
from cashew.payments.models import PaymentResponse, RefundResponse
from cashew.payments.store import StoredPayment, StoredRefund
from local.cfn import load_template
from tests.integration.test_admin_log import ADMIN

# The tables the audit and the republisher read, and the variables that name them.
TABLES = {
    "AccountsTable": "CASHEW_ACCOUNTS_TABLE",
    "PaymentsTable": "CASHEW_PAYMENTS_TABLE",
    "TransactionLogTable": "CASHEW_LOG_TABLE",
    "DisputesTable": "CASHEW_DISPUTES_TABLE",
}
NOT_AN_INTEGER = {"N": "10.5"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:26].upper()}"


@contextlib.contextmanager
def tables_holding(stack, items: dict[str, list[dict[str, Any]]]) -> Iterator[dict[str, str]]:
    """Fresh copies of the audit's tables, each holding only the raw (wire format) items
    given for it; while the block runs, the functions read the copies. Yields the copies'
    names by resource."""
    client = stack.clients("dynamodb")
    resources = load_template()["Resources"]
    names = {resource: f"tampered-{uuid.uuid4().hex[:8]}" for resource in TABLES}
    for resource, name in names.items():
        properties = resources[resource]["Properties"]
        indexes = properties.get("GlobalSecondaryIndexes")
        client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        )  # fmt: skip
        for item in items.get(resource, []):
            client.put_item(TableName=name, Item=item)
    saved = {variable: os.environ[variable] for variable in TABLES.values()}
    os.environ.update({TABLES[resource]: name for resource, name in names.items()})
    get_settings.cache_clear()
    try:
        yield names
    finally:
        os.environ.update(saved)
        get_settings.cache_clear()
        for name in names.values():
            client.delete_table(TableName=name)


def payment_item(payer: str, payee: str, **raw: dict[str, str]) -> dict[str, Any]:
    """A succeeded balance payment of 500 as the store writes it (wire format), with the
    `raw` attributes put over it."""
    now = clock.utcnow_str()
    payment = PaymentResponse.model_validate({
        "id": new_id("pay"), "type": "payment", "status": "succeeded", "amount": 500,
        "currency": "USD", "payer_id": payer, "payee_id": payee, "source": {"type": "balance"},
        "amount_captured": 500, "amount_refunded": 100, "failure_code": None,
        "failure_message": None, "risk": {"score": 0, "level": "normal"}, "description": None,
        "created_at": now, "updated_at": now,
    })  # fmt: skip
    return {**dynamo.serialize(StoredPayment(payment, None, []).to_item()), **raw}


def refund_item(payment: dict[str, Any], **raw: dict[str, str]) -> dict[str, Any]:
    """A succeeded balance refund of 100 of `payment` (wire format), with `raw` over it."""
    stored = StoredPayment.from_item(dynamo.deserialize(payment))
    refund = RefundResponse(
        id=new_id("re"), payment_id=stored.payment.id, amount=100, currency="USD",
        status="succeeded", reason=None, created_at=clock.utcnow_str(),
    )  # fmt: skip
    item = StoredRefund(refund, None, stored.payment.payer_id, stored.payment.payee_id, "balance")
    return {**dynamo.serialize(item.to_item()), **raw}


def balance_item(user_id: str, available: dict[str, str]) -> dict[str, Any]:
    return {
        "pk": {"S": f"USER#{user_id}"},
        "sk": {"S": "BALANCE#USD"},
        "currency": {"S": "USD"},
        "available": available,
    }


def audit(stack) -> tuple[int, Any]:
    reply = stack.call("AuditVerifyFunction", "ledger/audit_verify.json", authorizer=ADMIN)
    return reply.status, reply.body


@pytest.mark.parametrize("edited", ["payment", "refund"])
def test_a_payment_or_refund_holding_no_integer_is_named_by_the_audit_not_a_500(stack, edited):
    # Given a payment and its refund, one of them edited to hold 10.5 where an integer goes,
    # and the payee's balance, which no entry explains
    payer, payee = new_id("usr"), new_id("usr")
    payment = payment_item(payer, payee)
    refund = refund_item(payment)
    if edited == "payment":
        payment = {**payment, "amount_refunded": NOT_AN_INTEGER}
    else:
        refund = {**refund, "amount": NOT_AN_INTEGER}
    bad = (payment if edited == "payment" else refund)["pk"]["S"]
    with tables_holding(stack, {
        "PaymentsTable": [payment, refund],
        "AccountsTable": [balance_item(payee, {"N": "400"})],
    }):  # fmt: skip
        # When an admin audits, and the re-check reads the payee's payments again
        status, report = audit(stack)
        again = {r.pk: r for r in payments.records_of(payee)}
    # Then the audit answers, naming the item it cannot read, and still finds the balance
    # that nothing in the log explains
    assert status == 200, report
    assert {"kind": "record", "payment_id": bad, "problem": "unreadable"} in [
        {k: v for k, v in d.items() if v is not None} for d in report["discrepancies"]
    ]
    assert not report["balances_match"]
    assert payee in [d["user_id"] for d in report["discrepancies"] if d["kind"] == "balance"]
    # and what the re-check reads names the same item, its others as they are
    assert isinstance(again[bad], payments.Unreadable)
    assert len(again) == 2


def test_a_balance_holding_no_integer_is_named_by_the_audit_not_a_500(stack):
    # Given a balance edited to hold 10.5, next to a balance of someone else
    edited, other = new_id("usr"), new_id("usr")
    with tables_holding(stack, {
        "AccountsTable": [balance_item(edited, NOT_AN_INTEGER), balance_item(other, {"N": "7"})],
    }):  # fmt: skip
        # When an admin audits
        status, report = audit(stack)
    # Then the audit answers: the edited balance is named as one it cannot read, and the
    # other balance is still checked (nothing in the log explains it)
    assert status == 200, report
    found = {(d["kind"], d["user_id"], d["problem"]) for d in report["discrepancies"]}
    assert ("balance", edited, "unreadable") in found
    assert ("balance", other, None) in found
    assert not report["balances_match"]


def failure_record(table: str) -> dict[str, Any]:
    """Lambda's on-failure record of a batch of `table`'s stream, a minute ago."""
    now = datetime.now(UTC)
    stamp = lambda at: at.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {
        "DDBStreamBatchInfo": {
            "approximateArrivalOfFirstRecord": stamp(now - timedelta(minutes=1)),
            "approximateArrivalOfLastRecord": stamp(now),
            "streamArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/x",
        }
    }


def set_aside(table: str, pk: str) -> dict[str, Any]:
    """The publisher's set-aside record of a change of the item `pk` of `table`."""
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/x"
    return {"reason": "ValueError: x", "record": {
        "eventSourceARN": arn, "dynamodb": {"Keys": {"pk": {"S": pk}}},
    }}  # fmt: skip


def dispute_item(**raw: dict[str, str]) -> dict[str, Any]:
    now = clock.utcnow_str()
    item = {
        "pk": new_id("dsp"), "kind": "dispute", "transaction_id": new_id("txn"),
        "payment_id": new_id("pay"), "payer_id": new_id("usr"), "payee_id": new_id("usr"),
        "status": "open", "reason": "fraudulent", "details": None, "amount": 500,
        "currency": "USD", "source": "balance", "created_at": now, "updated_at": now,
    }  # fmt: skip
    return {**dynamo.serialize({**item, "id": item["pk"]}), **raw}


@pytest.mark.parametrize("resource", ["PaymentsTable", "DisputesTable"])
def test_the_republisher_leaves_an_item_holding_no_integer_for_a_person(stack, resource):
    # Given a payment (or a dispute) changed a minute ago, edited to hold 10.5
    if resource == "PaymentsTable":
        item = payment_item(new_id("usr"), new_id("usr"), amount_captured=NOT_AN_INTEGER)
    else:
        item = dispute_item(amount=NOT_AN_INTEGER)
    with tables_holding(stack, {resource: [item]}) as names:
        # When failure messages describe its stream's window, and its set-aside change
        window = republish.changes_of(json.loads(json.dumps(failure_record(names[resource]))))
        stored = republish.changes_of(set_aside(names[resource], item["pk"]["S"]))
    # Then neither can be acted on: they stay on the queue for a person (None), and the
    # run goes on with the next message rather than failing
    assert (window, stored) == (None, None)
