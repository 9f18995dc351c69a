"""Disputes: opened by the payer of a succeeded payment, resolved by an admin; `won` refunds
the payer through the payments module, and every step reaches both users' logs."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cashew import dynamo
from cashew.config import get_settings
from cashew.disputes import store as disputes_store
from cashew.payments import idempotency
from tests.integration.conftest import Died, add_card, balance, pay, top_up


def entries(stack, user, **query: str) -> list[dict[str, Any]]:
    reply = stack.call(
        "ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=user.authorizer, query={"limit": "100", **query},
    )  # fmt: skip
    assert reply.status == 200, reply.body
    return list(reply.body["data"])


def paid_entry(stack, payer, payment_id: str) -> dict[str, Any]:
    [entry] = [
        e for e in entries(stack, payer)
        if e["payment_id"] == payment_id and e["type"] == "payment" and e["status"] == "succeeded"
    ]  # fmt: skip
    return entry


def stored_item(dispute_id: str) -> dict[str, Any] | None:
    """The dispute's item as the table holds it."""
    return dynamo.get_item(get_settings().disputes_table, {"pk": dispute_id})


def open_dispute(stack, user, transaction_id: str, **body: Any):
    return stack.call(
        "OpenDisputeFunction", "disputes/open_dispute.json", authorizer=user.authorizer,
        path={"id": transaction_id}, body={"reason": "product_not_received", **body},
    )  # fmt: skip


def resolve(stack, admin, dispute_id: str, outcome: str, **body: Any):
    return stack.call(
        "ResolveDisputeFunction", "disputes/resolve_dispute.json", authorizer=admin.authorizer,
        path={"id": dispute_id}, body={"outcome": outcome, **body},
    )  # fmt: skip


@pytest.fixture
def paid(stack, new_user):
    """A payer who paid a payee 600 from a balance of 1000, settled into the log."""
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    payment = pay(stack, payer, payee.id, 600).body
    assert payment["status"] == "succeeded"
    stack.settle()
    return payer, payee, payment, paid_entry(stack, payer, payment["id"])


def test_the_payer_opens_one_dispute_per_payment_and_both_parties_see_it(stack, paid):
    payer, payee, payment, entry = paid
    # When the payer disputes the payment's entry
    opened = open_dispute(stack, payer, entry["id"], details="never arrived")
    # Then it is open, and names the transaction and the payment
    assert opened.status == 201, opened.body
    assert opened.body["status"] == "open"
    assert (opened.body["transaction_id"], opened.body["payment_id"]) == (
        entry["id"],
        payment["id"],
    )
    assert (opened.body["amount"], opened.body["currency"]) == (600, "USD")
    # ... a second dispute of the same payment is refused while it is open
    again = open_dispute(stack, payer, entry["id"], reason="duplicate")
    assert (again.status, again.body["code"]) == (409, "conflict")
    # ... the payer sees it as payer, the payee as payee
    mine = stack.call("ListDisputesFunction", "disputes/list_disputes.json",
        authorizer=payer.authorizer, query={}).body  # fmt: skip
    theirs = stack.call("ListDisputesFunction", "disputes/list_disputes.json",
        authorizer=payee.authorizer, query={"role": "payee"}).body  # fmt: skip
    assert [d["id"] for d in mine["data"]] == [opened.body["id"]]
    assert [d["id"] for d in theirs["data"]] == [opened.body["id"]]
    assert "note" not in mine["data"][0] and "resolved_by" not in mine["data"][0]
    # ... and the opening is in both logs, moving no money
    stack.settle()
    assert [
        (e["direction"], e["status"], e["amount"]) for e in entries(stack, payer, type="dispute")
    ] == [("credit", "open", 600)]
    assert [(e["direction"], e["status"]) for e in entries(stack, payee, type="dispute")] == [
        ("debit", "open")
    ]
    assert (balance(stack, payer), balance(stack, payee)) == (400, 600)


def test_only_the_payer_of_a_succeeded_payment_can_dispute_it(stack, paid, new_user):
    payer, payee, payment, entry = paid
    [credit] = [e for e in entries(stack, payee) if e["payment_id"] == payment["id"]]
    stranger = new_user()
    # the payee's own entry of the payment
    assert open_dispute(stack, payee, credit["id"]).status == 409
    # someone else's entry, or no entry at all: not found, as if it did not exist
    assert open_dispute(stack, stranger, entry["id"]).status == 404
    assert open_dispute(stack, payer, "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1").status == 404
    assert open_dispute(stack, payer, "not-an-id").status == 404
    # the top-up is not a payment
    [topped] = entries(stack, payer, type="top_up")
    assert open_dispute(stack, payer, topped["id"]).status == 409
    # bad bodies are 422 with the field named
    bad_reason = open_dispute(stack, payer, entry["id"], reason="bored")
    assert bad_reason.status == 422 and bad_reason.body["errors"][0]["field"] == "reason"
    extra = open_dispute(stack, payer, entry["id"], status="won")
    assert extra.status == 422 and extra.body["errors"][0]["field"] == "status"


def test_a_failed_payment_cannot_be_disputed(stack, new_user):
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    failed = pay(stack, payer, payee.id, 100).body  # no money: insufficient_funds
    assert failed["status"] == "failed"
    stack.settle()
    [entry] = entries(stack, payer)
    assert open_dispute(stack, payer, entry["id"]).status == 409


def test_a_won_dispute_refunds_the_payer_once_and_is_logged(stack, paid, new_admin):
    payer, payee, payment, entry = paid
    admin = new_admin()
    dispute = open_dispute(stack, payer, entry["id"]).body
    # When an admin resolves it as won
    won = resolve(stack, admin, dispute["id"], "won", note="carrier lost it")
    # Then the payer has their money back from the payee
    assert won.status == 200, won.body
    assert won.body["status"] == "won" and won.body["refund_id"].startswith("re_")
    assert (won.body["resolved_by"], won.body["note"]) == (admin.id, "carrier lost it")
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)
    # ... resolving it again the same way changes nothing; the other way is a conflict
    again = resolve(stack, admin, dispute["id"], "won")
    assert (again.status, again.body["refund_id"]) == (200, won.body["refund_id"])
    assert resolve(stack, admin, dispute["id"], "lost").status == 409
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)
    # ... the refund and the outcome are both in both logs
    stack.settle()
    payer_log = [(e["type"], e["status"], e["direction"]) for e in entries(stack, payer)]
    assert ("refund", "succeeded", "credit") in payer_log
    assert ("dispute", "won", "credit") in payer_log
    payee_log = [(e["type"], e["status"], e["direction"]) for e in entries(stack, payee)]
    assert ("refund", "succeeded", "debit") in payee_log
    assert ("dispute", "won", "debit") in payee_log
    refunds = stack.call("ListRefundsFunction", "payments/list_refunds.json",
        authorizer=payee.authorizer, path={"id": payment["id"]}).body["data"]  # fmt: skip
    assert [(r["id"], r["reason"]) for r in refunds] == [(won.body["refund_id"], "dispute_won")]
    # ... made under the disputes' own idempotency scope, keyed by the dispute, as a refund
    # request of the whole remaining amount (what a retried resolution replays)
    path = f"POST /v1/payments/{payment['id']}/refunds"
    scope = idempotency.scope(
        "disputes", dispute["id"], path, {"amount": None, "reason": "dispute_won"}
    )
    table = stack.env["CASHEW_IDEMPOTENCY_TABLE"]
    key = {"pk": {"S": scope.pk}}
    record = dynamo.deserialize(
        stack.clients("dynamodb").get_item(TableName=table, Key=key)["Item"]
    )
    assert (record["pk"], record["status"], record["status_code"]) == (
        f"disputes#{dispute['id']}",
        "completed",
        201,
    )
    assert record["request_hash"] == scope.request_hash
    assert json.loads(record["response_body"])["id"] == won.body["refund_id"]
    # ... and the payment, refunded in full, cannot be disputed again
    assert open_dispute(stack, payer, entry["id"]).status == 409


def test_a_lost_dispute_moves_no_money_and_frees_the_payment(stack, paid, new_admin):
    payer, payee, _, entry = paid
    admin = new_admin()
    dispute = open_dispute(stack, payer, entry["id"]).body
    lost = resolve(stack, admin, dispute["id"], "lost")
    assert lost.status == 200 and lost.body["status"] == "lost" and lost.body["refund_id"] is None
    assert (balance(stack, payer), balance(stack, payee)) == (400, 600)
    stack.settle()
    assert [e["status"] for e in entries(stack, payer, type="dispute")] == ["lost", "open"]
    # the payer may dispute again once the first is closed
    assert open_dispute(stack, payer, entry["id"], reason="other").status == 201


def test_a_payee_without_the_money_leaves_the_dispute_open(stack, paid, new_user, new_admin):
    payer, payee, _, entry = paid
    admin, other = new_admin(), new_user()
    dispute = open_dispute(stack, payer, entry["id"]).body
    # Given the payee spent what they were paid
    assert pay(stack, payee, other.id, 600).body["status"] == "succeeded"
    # When the dispute is resolved as won
    refused = resolve(stack, admin, dispute["id"], "won")
    # Then nothing moved and the dispute is still open, free to be resolved either way
    assert refused.status == 409 and "stays open" in refused.body["detail"]
    assert (balance(stack, payer), balance(stack, payee)) == (400, 0)
    item = stored_item(dispute["id"])
    assert item["status"] == "open" and "pending_outcome" not in item
    assert resolve(stack, admin, dispute["id"], "lost").status == 200


def test_a_won_card_payment_is_refunded_to_the_card(stack, new_user, new_admin):
    stack.skip_changes()
    payer, payee, admin = new_user(), new_user(), new_admin()
    card = add_card(stack, payer)
    payment = pay(stack, payer, payee.id, 700,
        source={"type": "card", "payment_method_id": card}).body  # fmt: skip
    stack.settle()
    entry = paid_entry(stack, payer, payment["id"])
    assert entry["funds"] == "card"
    dispute = open_dispute(stack, payer, entry["id"]).body
    won = resolve(stack, admin, dispute["id"], "won")
    assert won.status == 200, won.body
    # the payee pays it back; the payer's balance is untouched (the card is credited)
    assert (balance(stack, payer), balance(stack, payee)) == (0, 0)
    stack.settle()
    [refund] = entries(stack, payer, type="refund")
    assert (refund["direction"], refund["funds"], refund["amount"]) == ("credit", "card", 700)
    # ... the payee's balance paid it when the refund was taken, before the card got it
    [taken] = entries(stack, payee, type="refund")
    assert (taken["direction"], taken["funds"], taken["status"]) == ("debit", "balance", "pending")


def test_an_interrupted_won_resolution_is_completed_by_a_retry_without_a_second_refund(
    stack, paid, new_admin, monkeypatch
):
    payer, payee, payment, entry = paid
    first_admin, second_admin = new_admin(), new_admin()
    dispute = open_dispute(stack, payer, entry["id"]).body
    # Given a resolution whose function dies after the refund, before closing the dispute
    real = disputes_store.resolve

    def die(*_: Any, **__: Any) -> None:
        raise Died

    monkeypatch.setattr(disputes_store, "resolve", die)
    with pytest.raises(Died):
        resolve(stack, first_admin, dispute["id"], "won")
    monkeypatch.setattr(disputes_store, "resolve", real)
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)
    # ... a `lost` cannot close it meanwhile
    assert resolve(stack, second_admin, dispute["id"], "lost").status == 409
    # When another admin resolves it as won
    won = resolve(stack, second_admin, dispute["id"], "won")
    # Then it is won with the one refund the first attempt made
    assert won.status == 200 and won.body["status"] == "won"
    refunds = stack.call("ListRefundsFunction", "payments/list_refunds.json",
        authorizer=payee.authorizer, path={"id": payment["id"]}).body["data"]  # fmt: skip
    assert [r["id"] for r in refunds] == [won.body["refund_id"]]
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)


def test_racing_resolutions_resolve_once(stack, paid, new_admin):
    payer, payee, payment, entry = paid
    admins = [new_admin() for _ in range(2)]
    dispute = open_dispute(stack, payer, entry["id"]).body
    # When eight resolutions race, half won and half lost
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(
            lambda n: resolve(stack, admins[n % 2], dispute["id"], ("won", "lost")[n % 2]),
            range(8),
        ))  # fmt: skip
    # Then the dispute ended one way, every answer agrees with it or is a conflict, and money
    # moved exactly as that outcome says
    final = stored_item(dispute["id"])
    assert final["status"] in ("won", "lost")
    for reply in replies:
        assert reply.status in (200, 409), reply.body
        if reply.status == 200:
            assert reply.body["status"] == final["status"]
    refunds = stack.call("ListRefundsFunction", "payments/list_refunds.json",
        authorizer=payee.authorizer, path={"id": payment["id"]}).body["data"]  # fmt: skip
    if final["status"] == "won":
        assert len(refunds) == 1 and (balance(stack, payer), balance(stack, payee)) == (1_000, 0)
    else:
        assert refunds == [] and (balance(stack, payer), balance(stack, payee)) == (400, 600)


def test_admins_list_disputes_by_status(stack, paid, new_admin):
    payer, _, _, entry = paid
    admin = new_admin()
    dispute = open_dispute(stack, payer, entry["id"]).body

    def listed(**query: str) -> list[str]:
        reply = stack.call("AdminListDisputesFunction", "disputes/admin_list_disputes.json",
            authorizer=admin.authorizer, query={"limit": "100", **query})  # fmt: skip
        assert reply.status == 200, reply.body
        return [d["id"] for d in reply.body["data"]]

    assert dispute["id"] in listed(status="open") and dispute["id"] in listed()
    resolve(stack, admin, dispute["id"], "lost", note="no evidence")
    assert dispute["id"] not in listed(status="open")
    assert dispute["id"] in listed(status="lost")
    bad = stack.call("AdminListDisputesFunction", "disputes/admin_list_disputes.json",
        authorizer=admin.authorizer, query={"status": "closed"})  # fmt: skip
    assert bad.status == 422


def test_resolving_an_unknown_dispute_is_404(stack, new_admin):
    admin = new_admin()
    assert resolve(stack, admin, "dsp_01JCQ3K2K4M6N8P0Q2R4S6T8V2", "won").status == 404
    assert resolve(stack, admin, f"dsp_{uuid.uuid4().hex}", "lost").status == 404


def test_only_the_attempt_holding_a_claim_can_release_it(stack, paid, new_admin):
    payer, _, _, entry = paid
    admin = new_admin()
    dispute = open_dispute(stack, payer, entry["id"]).body
    # Given a won resolution claimed by attempt A, then again by attempt B (A's retry)
    disputes_store.claim(dispute["id"], "won", "attempt-a")
    disputes_store.claim(dispute["id"], "won", "attempt-b")
    # When A gives up (its refund was refused) and releases what it thinks is its claim
    disputes_store.release(dispute["id"], "attempt-a")
    # Then B's claim holds: no `lost` can close the dispute while B refunds the payer
    assert stored_item(dispute["id"])["pending_outcome"] == "won"
    assert resolve(stack, admin, dispute["id"], "lost").status == 409
    disputes_store.release(dispute["id"], "attempt-b")
    assert "pending_outcome" not in stored_item(dispute["id"])
