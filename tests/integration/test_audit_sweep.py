"""Issue 16, goal 4: the audit job sweeps the users a page at a time, checkpointing after
each page, so that it holds one page of users and what is wrong, not the log. On a stack of
its own, with real users, real payments and refunds; its findings agree with the audit that
reads everything at once (`GET /v1/admin/audit/verify`), and it finds what was tampered
with, across many invocations."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from cashew import dynamo
from cashew.jobs import service as jobs
from tests.integration.conftest import Stack, User, add_card, pay, top_up
from tests.integration.test_admin_jobs import _job_functions_env, download, start, work
from tests.integration.test_admin_log import ADMIN
from tests.integration.test_log_reads import deliver
from tests.integration.test_tampered_records import payment_item, refund_item

__all__ = ["_job_functions_env"]  # an autouse fixture: the jobs' queue and bucket


@pytest.fixture(scope="module")
def stack(own_stack: Stack) -> Stack:
    """The audit reads every account: a stack of this module's own."""
    return own_stack


@pytest.fixture(autouse=True)
def _small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of a few items and batches of two users: many checkpoints, even here."""
    monkeypatch.setattr(jobs, "AUDIT_PAGE", 3)
    monkeypatch.setattr(jobs, "AUDIT_SEGMENTS", 4)
    monkeypatch.setattr(jobs, "AUDIT_BATCH", 2)


def _trade(stack: Stack, new_user: Callable[..., User]) -> list[User]:
    """Three users: A tops up 1,000 by card and pays B 300, B pays C 100 and refunds A 50
    of A's payment; everything published and logged."""
    a, b, c = new_user("A"), new_user("B"), new_user("C")
    assert top_up(stack, a, add_card(stack, a), 1_000).status == 201
    paid = pay(stack, a, b.id, 300)
    assert paid.status == 201, paid.body
    assert pay(stack, b, c.id, 100).status == 201
    refund = stack.call(
        "CreateRefundFunction", "payments/create_refund.json", body={"amount": 50},
        authorizer=b.authorizer, path={"id": paid.body["id"]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert refund.status == 201, refund.body
    stack.settle()
    return [a, b, c]


def _swept(stack: Stack) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The audit job, run to its end: the job after each invocation, and its file."""
    job = start(stack, {"type": "audit"})
    assert job.status == 202, job.body
    seen = work(stack, job.body["id"], limit=500)
    body, _ = download(seen[-1]["download_url"])
    return seen, json.loads(body)


def _at_once(stack: Stack) -> dict[str, Any]:
    reply = stack.call("AuditVerifyFunction", "ledger/audit_verify.json", authorizer=ADMIN)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def _found(audit: dict[str, Any]) -> set[tuple[str, str | None, str | None]]:
    """What an audit found, as (kind, user, problem), in the sweep's words: the sweep names
    a log credit no payment explains `no_record` (the audit at once: `no_payment`), and
    proves conservation user by user (the audit at once sums every balance: `conservation`)."""
    words = {"no_payment": "no_record"}
    return {
        (d["kind"], d["user_id"], words.get(d["problem"], d["problem"]))
        for d in audit["discrepancies"]
        if d["kind"] != "conservation"
    }


def test_the_sweep_goes_on_across_invocations_and_agrees_with_the_audit_at_once(stack, new_user):
    # Given users who topped up, paid, were paid and refunded
    users = _trade(stack, new_user)
    # When an admin runs the audit as a job, in pages of three items
    seen, swept = _swept(stack)
    # Then it took many invocations, each a checkpoint further, and succeeded
    progress = [s["progress"] for s in seen]
    assert len(seen) > 4 and progress == sorted(progress)
    assert [s["status"] for s in seen[:-1]] == ["running"] * (len(seen) - 1)
    assert (seen[-1]["status"], progress[-1]) == ("succeeded", 100)
    # And it found what the audit at once finds: every chain and every entry, nothing wrong
    at_once = _at_once(stack)
    for field in ("chains_valid", "balances_match", "card_money_explained", "chains", "entries"):
        assert swept[field] == at_once[field], field
    assert _found(swept) == _found(at_once)
    assert not {d["user_id"] for d in swept["discrepancies"]} & {u.id for u in users}
    assert swept["chains"] >= 3 and swept["entries"] >= 7
    assert seen[-1]["result"]["discrepancies"] == len(swept["discrepancies"])


def test_the_sweep_finds_an_edited_balance_and_a_credit_no_record_explains(stack, new_user):
    # Given B's balance raised by 500, and a credit of 700 put into C's log and balance
    _, b, c = _trade(stack, new_user)
    accounts = stack.env["CASHEW_ACCOUNTS_TABLE"]
    raise_by = "ADD available :amount"
    dynamo.update_item(accounts, {"pk": f"USER#{b.id}", "sk": "BALANCE#USD"}, raise_by,
                       {":amount": 500})  # fmt: skip
    deliver(stack, payer_id=c.id, payee_id=c.id, type="top_up", source="card", amount=700)
    dynamo.update_item(accounts, {"pk": f"USER#{c.id}", "sk": "BALANCE#USD"}, raise_by,
                       {":amount": 700})  # fmt: skip
    # When the audit job runs
    _, swept = _swept(stack)
    # Then it names both, as the audit at once does, and no more of these users
    found = _found(swept)
    assert {("balance", b.id, None), ("unexplained_money", c.id, "no_record")} <= found
    assert {f for f in found if f[1] in (b.id, c.id)} == {
        ("balance", b.id, None),
        ("unexplained_money", c.id, "no_record"),
    }
    assert not swept["balances_match"] and not swept["card_money_explained"]
    assert found == _found(_at_once(stack))
    drift = next(d for d in swept["discrepancies"] if d["user_id"] == b.id)
    assert drift["balance"] - drift["log_balance"] == 500


def test_a_balance_no_user_has_is_audited_too(stack):
    # Given a balance item of 700 under a user id no profile has
    ghost = f"usr_{uuid.uuid4().hex[:26].upper()}"
    dynamo.put_item(stack.env["CASHEW_ACCOUNTS_TABLE"],
                    {"pk": f"USER#{ghost}", "sk": "BALANCE#USD", "currency": "USD",
                     "available": 700})  # fmt: skip
    # When the audit job runs
    _, swept = _swept(stack)
    # Then the balance is drift: no entry, no outcome on its way explains it
    [drift] = [d for d in swept["discrepancies"] if d["user_id"] == ghost]
    assert (drift["kind"], drift["balance"], drift["log_balance"]) == ("balance", 700, 0)


def test_a_payment_from_a_payer_who_does_not_exist_is_unexplained(stack, new_user):
    # Given a succeeded balance payment of 500 to B, written as paid by a user id no one has
    b = new_user("B")
    ghost = f"usr_{uuid.uuid4().hex[:26].upper()}"
    forged = payment_item(ghost, b.id)
    stack.clients("dynamodb").put_item(TableName=stack.env["CASHEW_PAYMENTS_TABLE"], Item=forged)
    stack.skip_changes()  # the forgery is in the table, never published
    # When the audit job runs
    _, swept = _swept(stack)
    # Then the payer is named: no audit of theirs will ever explain where the 500 came from
    unknown = [d for d in swept["discrepancies"] if d["problem"] == "unknown_party"]
    assert [(d["user_id"], d["payment_id"]) for d in unknown] == [(ghost, forged["pk"]["S"])]
    assert not swept["card_money_explained"]


def _ghost() -> str:
    return f"usr_{uuid.uuid4().hex[:26].upper()}"


def _put(stack: Stack, table: str, item: dict[str, Any]) -> None:
    dynamo.put_item(stack.env[table], item)
    stack.skip_changes()  # in the table, never published: as an edit by hand is


def test_a_payout_of_someone_who_does_not_exist_is_drift(stack):
    # Given a paid payout of 900 whose owner has no profile, no balance and no chain
    from cashew.payouts.models import PayoutResponse
    from cashew.payouts.store import StoredPayout

    ghost, now = _ghost(), "2026-12-01T09:00:00.000Z"
    payout = PayoutResponse(
        id=f"po_{uuid.uuid4().hex[:26].upper()}", amount=900, currency="USD",
        payment_method_id="pm_X", status="paid", failure_code=None, failure_message=None,
        risk={"score": 0, "level": "normal"}, created_at=now, updated_at=now,
    )  # fmt: skip
    _put(stack, "CASHEW_PAYMENTS_TABLE", StoredPayout(payout, ghost, "sandbox").to_item())
    # When the audit job runs, then the money paid out is named: no balance paid it
    _, swept = _swept(stack)
    drift = [d for d in swept["discrepancies"] if d["user_id"] == ghost]
    assert drift and {d["kind"] for d in drift} <= {"balance", "missing_from_log"}
    assert not swept["balances_match"]


def test_a_user_whose_profile_and_balance_were_deleted_is_still_audited(stack, new_user):
    # Given A, who topped up 1,000, paid B 300 and got 50 back: then A's profile and balance
    # deleted
    a, _, _ = _trade(stack, new_user)
    accounts = stack.env["CASHEW_ACCOUNTS_TABLE"]
    for sk in ("PROFILE", "BALANCE#USD"):
        dynamo.delete_item(accounts, {"pk": f"USER#{a.id}", "sk": sk})
    # When the audit job runs, then A's chain is found, and what it holds is missing
    _, swept = _swept(stack)
    found = [d for d in swept["discrepancies"] if d["user_id"] == a.id]
    [drift] = [d for d in found if d["kind"] == "balance"]
    assert (drift["balance"], drift["log_balance"]) == (0, 1_000 - 300 + 50)
    assert ("unexplained_money", "unknown_party") in {(d["kind"], d["problem"]) for d in found}


def test_a_refund_its_payment_does_not_count_is_unexplained(stack, new_user):
    # Given a succeeded refund of 100 of B's payment to C, which says it refunded nothing
    c = _trade(stack, new_user)[2]
    client, table = stack.clients("dynamodb"), stack.env["CASHEW_PAYMENTS_TABLE"]
    [raw] = client.query(
        TableName=table, IndexName="PayeeIndex", KeyConditionExpression="payee_id = :c",
        ExpressionAttributeValues={":c": {"S": c.id}},
    )["Items"]  # fmt: skip
    refund = refund_item(client.get_item(TableName=table, Key={"pk": raw["pk"]})["Item"])
    client.put_item(TableName=table, Item=refund)
    stack.skip_changes()
    # When the audit job runs, then the refund is named
    _, swept = _swept(stack)
    named = [d for d in swept["discrepancies"] if d["problem"] == "refund_not_counted"]
    assert [(d["outcome_id"], d["amount"]) for d in named] == [(refund["pk"]["S"], 100)]


def test_a_top_up_not_paid_by_card_is_unexplained(stack, new_user):
    # Given A's top-up of 1,000 edited to say it was paid from the balance
    a, _, _ = _trade(stack, new_user)
    client, table = stack.clients("dynamodb"), stack.env["CASHEW_PAYMENTS_TABLE"]
    [raw] = [
        i for i in client.query(
            TableName=table, IndexName="PayerIndex", KeyConditionExpression="payer_id = :a",
            ExpressionAttributeValues={":a": {"S": a.id}},
        )["Items"] if i["type"]["S"] == "top_up"
    ]  # fmt: skip
    client.update_item(TableName=table, Key={"pk": raw["pk"]},
                       UpdateExpression="SET #s.#t = :balance",
                       ExpressionAttributeNames={"#s": "source", "#t": "type"},
                       ExpressionAttributeValues={":balance": {"S": "balance"}})  # fmt: skip
    stack.skip_changes()
    # When the audit job runs, then the top-up explains no money
    _, swept = _swept(stack)
    named = [d for d in swept["discrepancies"] if d["problem"] == "top_up_not_by_card"]
    assert [(d["user_id"], d["payment_id"]) for d in named] == [(a.id, raw["pk"]["S"])]


def test_a_chain_no_profile_balance_or_record_names_is_audited_too(stack):
    # Given a credit of 400 in the log of a user id nothing else names (no profile, no
    # balance, no record): money the log says someone holds, which no balance does
    ghost = _ghost()
    deliver(stack, payer_id=ghost, payee_id=ghost, type="top_up", source="card", amount=400)
    # When the audit job runs, then the chain is found by the sweep of the log
    _, swept = _swept(stack)
    found = {(d["kind"], d["problem"]) for d in swept["discrepancies"] if d["user_id"] == ghost}
    assert found == {("balance", None), ("unexplained_money", "no_record")}
