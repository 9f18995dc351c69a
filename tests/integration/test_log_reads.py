"""Reading the log: a user's filtered history, one entry, and the verification of a chain,
including chains tampered with in a copy of the table (PROPERTIES 34)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cashew import aws, dynamo
from cashew.config import get_settings
from cashew.ledger import chain, service
from local.cfn import load_template
from local.events import sample
from tests.integration.conftest import Stack


@pytest.fixture(scope="module")
def stack(own_stack: Stack) -> Stack:
    return own_stack  # the audit these tests run reads every account


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:26].upper()}"


def as_user(user_id: str, role: str = "user") -> dict[str, str]:
    return {"user_id": user_id, "session_id": "ses_x", "role": role}


def deliver(stack, **outcome: Any) -> dict[str, Any]:
    """One outcome through the log consumer, as the queue delivers it."""
    event = copy.deepcopy(sample("ledger/consume_outcomes.json"))
    body = json.loads(event["Records"][0]["body"])
    payment = outcome.pop("payment_id", new_id("pay"))
    body.update(payment_id=payment, outcome_id=f"{payment}:{outcome.get('status', 'succeeded')}")
    body.update(outcome)
    event["Records"][0]["body"] = json.dumps(body)
    event["Records"][0]["messageId"] = str(uuid.uuid4())
    assert stack.invoke("LogConsumerFunction", event) == {"batchItemFailures": []}
    return body


def history(stack, user_id: str, **query: str) -> dict[str, Any]:
    reply = stack.call(
        "ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=as_user(user_id), query={"limit": "100", **query},
    )  # fmt: skip
    assert reply.status == 200, reply.body
    return reply.body


@pytest.fixture
def five(stack):
    """A payer with five outcomes on five days: top-up, payment, failed payment, card
    payment, refund."""
    payer, payee = new_id("usr"), new_id("usr")
    parties = {"payer_id": payer, "payee_id": payee}
    deliver(stack, **{**parties, "payee_id": payer}, type="top_up", source="card",
            amount=10_000, occurred_at="2026-11-01T10:00:00.000Z")  # fmt: skip
    paid = deliver(stack, **parties, type="payment", amount=2_500,
                   occurred_at="2026-11-02T10:00:00.000Z")  # fmt: skip
    deliver(stack, **parties, type="payment", status="failed", failure_code="card_declined",
            source="card", amount=700, occurred_at="2026-11-03T10:00:00.000Z")  # fmt: skip
    deliver(stack, **parties, type="payment", source="card", amount=900,
            occurred_at="2026-11-04T10:00:00.000Z")  # fmt: skip
    deliver(stack, **parties, type="refund", payment_id=paid["payment_id"], amount=500,
            outcome_id=f"{new_id('re')}:succeeded",
            occurred_at="2026-11-05T10:00:00.000Z")  # fmt: skip
    return payer, payee


def kinds(body: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(e["type"], e["status"], e["amount"]) for e in body["data"]]


def test_history_filters_by_type_status_and_time_newest_first(stack, five):
    payer, _ = five
    assert kinds(history(stack, payer)) == [
        ("refund", "succeeded", 500),
        ("payment", "succeeded", 900),
        ("payment", "failed", 700),
        ("payment", "succeeded", 2_500),
        ("top_up", "succeeded", 10_000),
    ]
    assert kinds(history(stack, payer, type="payment", status="succeeded")) == [
        ("payment", "succeeded", 900),
        ("payment", "succeeded", 2_500),
    ]
    assert kinds(history(stack, payer, status="failed")) == [("payment", "failed", 700)]
    window = {"from": "2026-11-02T10:00:00Z", "to": "2026-11-04T10:00:00Z"}  # inclusive
    assert [e["amount"] for e in history(stack, payer, **window)["data"]] == [900, 700, 2_500]
    other_zone = {"from": "2026-11-02T12:00:00+02:00", "to": "2026-11-02T12:00:00+02:00"}
    assert [e["amount"] for e in history(stack, payer, **other_zone)["data"]] == [2_500]


def test_filtered_pages_follow_the_cursor(stack, five, monkeypatch):
    payer, _ = five
    # pages of one
    seen, cursor = [], None
    while True:
        body = history(
            stack, payer, type="payment", limit="1", **({"cursor": cursor} if cursor else {})
        )
        seen += [e["amount"] for e in body["data"]]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == [900, 700, 2_500]
    # a filter that matches little stops after examining MAX_EXAMINED entries: the page may be
    # short (or empty) but the cursor goes on
    monkeypatch.setattr(service, "MAX_EXAMINED", 2)
    first = history(stack, payer, type="top_up")
    assert first["data"] == [] and first["has_more"]
    second = history(stack, payer, type="top_up", cursor=first["next_cursor"])
    third = history(stack, payer, type="top_up", cursor=second["next_cursor"])
    assert kinds(second) + kinds(third) == [("top_up", "succeeded", 10_000)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"type": "loan"}, "type"),
        ({"status": "maybe"}, "status"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-02T10:00:00"}, "from"),  # no zone
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-05T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from"),
        ({"cursor": "eyJwayI6ICJ4In0="}, "cursor"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from"),  # before year 1 in UTC
        ({"to": "9999-12-31T23:59:59-01:00"}, "to"),  # after year 9999 in UTC
        ({"from": "1999-12-31T23:59:59Z"}, "from"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(stack, query, field):
    reply = stack.call("ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=as_user(new_id("usr")), query=query)  # fmt: skip
    assert reply.status == 422, reply.body
    assert reply.body["code"] == "validation_error"
    assert reply.body["errors"][0]["field"] == field


def test_an_entry_is_read_by_its_owner_and_admins_only(stack, five):
    payer, payee = five
    newest = history(stack, payer)["data"][0]

    def get(entry_id: str, authorizer: dict[str, str]):
        return stack.call("GetTransactionFunction", "ledger/get_transaction.json",
            authorizer=authorizer, path={"id": entry_id})  # fmt: skip

    mine = get(newest["id"], as_user(payer))
    assert mine.status == 200 and mine.body == newest
    assert get(newest["id"], as_user(payee)).status == 404  # the payee has an entry of its own
    assert get(newest["id"], as_user(new_id("usr"), "admin")).status == 200
    for unknown in (new_id("txn"), "txn_nope", "x" * 64):
        reply = get(unknown, as_user(payer))
        assert (reply.status, reply.body["code"]) == (404, "not_found")


def test_verify_reports_the_chain_of_the_caller(stack, five):
    payer, payee = five
    reply = stack.call("VerifyChainFunction", "ledger/verify_chain.json", authorizer=as_user(payer))
    assert reply.status == 200
    newest = history(stack, payer)["data"][0]
    assert reply.body == {
        "valid": True, "entries": 5, "head_hash": newest["hash"],
        "first_bad_seq": None, "problem": None,
    }  # fmt: skip
    empty = stack.call("VerifyChainFunction", "ledger/verify_chain.json",
        authorizer=as_user(new_id("usr"))).body  # fmt: skip
    assert (empty["valid"], empty["entries"], empty["head_hash"]) == (True, 0, chain.GENESIS)
    # every hash the API shows can be checked by the client itself
    for entry in history(stack, payee)["data"]:
        assert entry["hash"] == chain.entry_hash(entry)


# ------------------------------------------------------------------------ tampering


@contextlib.contextmanager
def log_copy(stack, user_id: str) -> Iterator[str]:
    """A copy of the log table (schema from the template) holding the user's chain; while
    the block runs, the functions read the copy."""
    properties = load_template()["Resources"]["TransactionLogTable"]["Properties"]
    name = f"log-copy-{uuid.uuid4().hex[:8]}"
    client = stack.clients("dynamodb")
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )  # fmt: skip
    items = client.query(
        TableName=get_settings().log_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user_id}"}},
    )["Items"]
    for item in items:
        client.put_item(TableName=name, Item=item)
    saved = os.environ["CASHEW_LOG_TABLE"]
    os.environ["CASHEW_LOG_TABLE"] = name
    get_settings.cache_clear()
    try:
        yield name
    finally:
        os.environ["CASHEW_LOG_TABLE"] = saved
        get_settings.cache_clear()
        client.delete_table(TableName=name)


def _key(user_id: str, seq: int) -> dict[str, Any]:
    return dynamo.serialize({"pk": f"USER#{user_id}", "sk": f"SEQ#{seq:012d}"})


def _item(table: str, user_id: str, seq: int) -> dict[str, Any]:
    return aws.dynamodb().get_item(TableName=table, Key=_key(user_id, seq))["Item"]


def edit(table: str, user_id: str, seq: int) -> None:
    item = _item(table, user_id, seq)
    item["amount"] = {"N": "1"}
    aws.dynamodb().put_item(TableName=table, Item=item)


def edit_and_rehash(table: str, user_id: str, seq: int) -> None:
    """An edit that also recomputes the entry's own hash: only its links give it away."""
    item = dynamo.deserialize(_item(table, user_id, seq))
    item["direction"] = "credit" if item["direction"] == "debit" else "debit"
    fields = {k: v for k, v in item.items() if k not in ("pk", "sk", "day")}
    item["hash"] = chain.entry_hash(fields)
    aws.dynamodb().put_item(TableName=table, Item=dynamo.serialize(item))


def unreadable(table: str, user_id: str, seq: int) -> None:
    """A number no entry can hold, and a set: reported, not a 500."""
    item = _item(table, user_id, seq)
    item["amount"] = {"N": "10.5"}
    item["tags"] = {"SS": ["x"]}
    aws.dynamodb().put_item(TableName=table, Item=item)


def delete(table: str, user_id: str, seq: int) -> None:
    aws.dynamodb().delete_item(TableName=table, Key=_key(user_id, seq))


def swap_with_next(table: str, user_id: str, seq: int) -> None:
    """Entries `seq` and `seq + 1` trade places."""
    first, second = _item(table, user_id, seq), _item(table, user_id, seq + 1)
    first["sk"], second["sk"] = second["sk"], first["sk"]
    aws.dynamodb().put_item(TableName=table, Item=first)
    aws.dynamodb().put_item(TableName=table, Item=second)


TAMPERING = [
    (how, seq)
    for how in (edit, edit_and_rehash, unreadable, delete, swap_with_next)
    for seq in range(1, 6)
    if not (how is swap_with_next and seq == 5)
]


@pytest.mark.parametrize(
    ("how", "seq"), TAMPERING, ids=[f"{how.__name__}-{seq}" for how, seq in TAMPERING]
)
def test_verify_names_the_first_tampered_entry(stack, five, how, seq):
    payer, _ = five
    with log_copy(stack, payer) as table:
        # Given the payer's five entries, tampered with in a copy of the table
        how(table, payer, seq)
        # When the payer verifies their chain, and an admin audits the log
        verdict = stack.call("VerifyChainFunction", "ledger/verify_chain.json",
            authorizer=as_user(payer)).body  # fmt: skip
        audit = stack.call("AuditVerifyFunction", "ledger/audit_verify.json",
            authorizer=as_user(new_id("usr"), "admin")).body  # fmt: skip
    # Then both name the first bad seq
    assert (verdict["valid"], verdict["first_bad_seq"]) == (False, seq), verdict
    assert not audit["chains_valid"]
    [found] = [d for d in audit["discrepancies"] if d["kind"] == "chain"]
    assert (found["user_id"], found["first_bad_seq"]) == (payer, seq)


def test_an_untouched_copy_verifies(stack, five):
    payer, _ = five
    with log_copy(stack, payer):
        verdict = stack.call("VerifyChainFunction", "ledger/verify_chain.json",
            authorizer=as_user(payer)).body  # fmt: skip
    assert verdict["valid"] and verdict["entries"] == 5
