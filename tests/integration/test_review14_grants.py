"""Review of issue 14: CreatePayoutFunction's grant on the payments table is for payout items
(`po_...`) only. Unconditioned, a flaw in it could put, read or update any payment, refund
or webhook dedupe marker (a payment's status, a marker that swallows a genuine webhook)."""

from __future__ import annotations

from typing import Any

from cashew import aws
from cashew.config import get_settings
from local.cfn import load_template
from tests.integration.conftest import add_card, top_up
from tests.integration.test_payouts import deliver, payout, payout_webhook

PAYMENTS_TABLE = {"Fn::GetAtt": ["PaymentsTable", "Arn"]}


def _payments_statements(function_id: str) -> list[dict[str, Any]]:
    policies = load_template()["Resources"][function_id]["Properties"]["Policies"]
    return [s for p in policies for s in p["Statement"] if s["Resource"] == PAYMENTS_TABLE]


def test_the_payout_function_reaches_payout_items_only(stack, new_user):
    # Given its grants on the payments table: every one conditioned to po_ partition keys
    [statement] = _payments_statements("CreatePayoutFunction")
    condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
    assert condition.get("dynamodb:LeadingKeys") == ["po_*"], statement
    # And what it does there (paid, declined and credited back, pending then settled by the
    # webhook, refused for too little money) only ever touches po_ items
    keys: list[str] = []
    table = get_settings().payments_table

    def spy(params: dict[str, Any], model: Any, **_: Any) -> None:
        for item in params.get("TransactItems", []):
            for write in item.values():
                if write.get("TableName") == table:
                    keys.append((write.get("Key") or write.get("Item"))["pk"]["S"])
        if params.get("TableName") == table and model.name != "Query":
            keys.append((params.get("Key") or params.get("Item"))["pk"]["S"])

    user = new_user()
    card = add_card(stack, user)
    top_up(stack, user, card, 5_000)
    try:
        aws.reset()  # new clients, which the spy sees
        aws.session().events.register("before-parameter-build", spy)
        replies = [
            payout(stack, user, 1_000, card),
            payout(stack, user, 1_000, add_card(stack, user, "4000000000000002")),
            payout(stack, user, 9_000, card),
            pending := payout(stack, user, 1_000, add_card(stack, user, "4000000000003220")),
        ]
    finally:
        aws.reset()
    assert [r.body["status"] for r in replies] == ["paid", "failed", "failed", "pending"]
    assert keys and all(k.startswith("po_") for k in keys), keys
    body, signature = payout_webhook(stack, pending.body["id"])
    assert deliver(stack, body, signature).status == 200
