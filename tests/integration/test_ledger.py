"""The log consumer with its events/ sample: outcomes become chained, deduplicated entries."""

from __future__ import annotations

import copy
import json
import uuid

from cashew.ledger import chain
from local.events import sample


def _outcome_event(**changes):
    event = copy.deepcopy(sample("ledger/consume_outcomes.json"))
    record = event["Records"][0]
    body = json.loads(record["body"])
    body.update(changes)
    record["body"] = json.dumps(body)
    record["messageId"] = str(uuid.uuid4())
    return event, body


def _entries(stack, user_id):
    reply = stack.call(
        "ListTransactionsFunction",
        "ledger/list_transactions.json",
        authorizer={"user_id": user_id, "session_id": "ses_x", "role": "user"},
        query={"limit": "100"},
    )
    assert reply.status == 200
    return reply.body["data"]


def _ids():
    payer = f"usr_{uuid.uuid4().hex[:26].upper()}"
    payee = f"usr_{uuid.uuid4().hex[:26].upper()}"
    payment = f"pay_{uuid.uuid4().hex[:26].upper()}"
    return payer, payee, payment


def test_a_succeeded_payment_appends_one_entry_per_user(stack):
    payer, payee, payment = _ids()
    event, _ = _outcome_event(
        payer_id=payer, payee_id=payee, payment_id=payment, outcome_id=f"{payment}:succeeded"
    )
    result = stack.invoke("LogConsumerFunction", event)
    assert result == {"batchItemFailures": []}
    [debit] = _entries(stack, payer)
    [credit] = _entries(stack, payee)
    assert (debit["direction"], credit["direction"]) == ("debit", "credit")
    assert debit["payment_id"] == credit["payment_id"] == payment
    assert debit["seq"] == 1 and debit["prev_hash"] == chain.GENESIS
    fields = {k: v for k, v in debit.items() if k != "hash"}
    assert debit["hash"] == chain.entry_hash(fields)


def test_redelivery_adds_nothing_and_the_chain_links(stack):
    payer, payee, payment = _ids()
    first, _ = _outcome_event(
        payer_id=payer, payee_id=payee, payment_id=payment, outcome_id=f"{payment}:succeeded"
    )
    second_payment = payment[:-1] + "Z"
    second, _ = _outcome_event(
        payer_id=payer,
        payee_id=payee,
        payment_id=second_payment,
        outcome_id=f"{second_payment}:failed",
        status="failed",
        failure_code="insufficient_funds",
    )
    for event in (first, first, second, first, second):
        assert stack.invoke("LogConsumerFunction", event) == {"batchItemFailures": []}
    newest, oldest = _entries(stack, payer)
    assert (oldest["seq"], newest["seq"]) == (1, 2)
    assert newest["prev_hash"] == oldest["hash"]
    assert newest["status"] == "failed" and newest["failure_code"] == "insufficient_funds"
    assert len(_entries(stack, payee)) == 1  # the failed payment never reached the payee


def test_a_poison_message_fails_alone(stack):
    payer, payee, payment = _ids()
    good, _ = _outcome_event(
        payer_id=payer, payee_id=payee, payment_id=payment, outcome_id=f"{payment}:succeeded"
    )
    poison = copy.deepcopy(good["Records"][0])
    poison["messageId"] = "poison-1"
    poison["body"] = '{"not": "an outcome"}'
    good["Records"].append(poison)
    result = stack.invoke("LogConsumerFunction", good)
    assert result == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert len(_entries(stack, payer)) == 1


def test_transactions_paginate_newest_first(stack):
    payer, payee, _ = _ids()
    for n in range(5):
        payment = f"pay_{uuid.uuid4().hex[:26].upper()}"
        event, _ = _outcome_event(
            payer_id=payer,
            payee_id=payee,
            payment_id=payment,
            outcome_id=f"{payment}:succeeded",
            amount=n + 1,
        )
        stack.invoke("LogConsumerFunction", event)
    authorizer = {"user_id": payer, "session_id": "ses_x", "role": "user"}
    seen, cursor, first_cursor = [], None, None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = stack.call(
            "ListTransactionsFunction",
            "ledger/list_transactions.json",
            authorizer=authorizer,
            query=query,
        )
        seen += [e["seq"] for e in page.body["data"]]
        first_cursor = first_cursor or page.body["next_cursor"]
        if not page.body["has_more"]:
            assert page.body["next_cursor"] is None
            break
        cursor = page.body["next_cursor"]
    assert seen == [5, 4, 3, 2, 1]
    bad = stack.call(
        "ListTransactionsFunction",
        "ledger/list_transactions.json",
        authorizer=authorizer,
        query={"cursor": "!!"},
    )
    assert bad.status == 422
    # ... and the payer's cursor is no cursor for the payee
    theirs = stack.call(
        "ListTransactionsFunction",
        "ledger/list_transactions.json",
        authorizer={**authorizer, "user_id": payee},
        query={"limit": "2", "cursor": first_cursor},
    )
    assert theirs.status == 422


def test_limit_out_of_range_is_422_naming_the_parameter(stack):
    authorizer = {
        "user_id": "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
        "session_id": "ses_x",
        "role": "user",
    }
    for limit in ("0", "101", "ten"):
        reply = stack.call(
            "ListTransactionsFunction",
            "ledger/list_transactions.json",
            authorizer=authorizer,
            query={"limit": limit},
        )
        assert reply.status == 422, limit
        assert reply.body["errors"][0]["field"] == "limit"
