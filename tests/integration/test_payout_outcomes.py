"""A payout `paid` or `failed` is an outcome like the others: its owner's entry in the log
(`type: "payout"`), an event on the bus (`payout.paid` / `payout.failed`) and an email with
the entry's receipt; a pending payout is none of these until it settles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.ses.models import ses_backends

from cashew.ledger import face as ledger
from local.cfn import ACCOUNT_ID, REGION
from local.consumers import sqs_event
from tests.integration.conftest import add_card, take_messages
from tests.integration.test_payouts import deliver, funded, payout, payout_webhook


@pytest.fixture(autouse=True)
def _function_env(stack, monkeypatch):
    """SendEmailsFunction's own variables, as tests/integration/test_emails.py sets them."""
    from cashew.config import get_settings

    monkeypatch.setenv("CASHEW_NOTIFICATIONS_TABLE", stack.resources["NotificationsTable"]["Ref"])
    monkeypatch.delenv("CASHEW_EMAIL_QUEUE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    take_messages(stack, "EmailQueue")


def _events(stack) -> list[dict[str, Any]]:
    """The bus's events now on EmailQueue (taken), as the email consumer gets them."""
    return take_messages(stack, "EmailQueue")


def _send(stack, messages: list[dict[str, Any]]) -> Any:
    event = sqs_event(messages, stack.resources["EmailQueue"]["Arn"])
    for record in event["Records"]:
        record["receiptHandle"] = "gone"
    return stack.invocation("SendEmailsFunction", event)


def _mail_to(address: str) -> list[Any]:
    return [m for m in ses_backends[ACCOUNT_ID][REGION].sent_messages if address in m.destinations]


@pytest.mark.parametrize(
    ("number", "status", "moved"),
    [("4242424242424242", "paid", -3_000), ("4000000000000002", "failed", 0)],
)
def test_a_settled_payout_is_logged_published_and_emailed_to_its_owner(
    stack, new_user, number, status, moved
):
    # Given a funded user who pays 30.00 out to a card
    stack.skip_changes()
    user, _ = funded(stack, new_user)
    stack.settle()
    _events(stack)
    card = add_card(stack, user, number)
    made = payout(stack, user, 3_000, card).body
    assert made["status"] == status
    # When the stream is published and the log written
    stack.settle()
    # Then the owner's chain holds one payout entry of it, and its balance change is the move
    entry = ledger.entry_for_outcome(user.id, f"{made['id']}:{status}")
    assert entry is not None
    assert (entry.type, entry.status, entry.direction, entry.funds) == (
        "payout", status, "debit", "balance",
    )  # fmt: skip
    assert entry.balance_change == moved
    # ... the bus carried payout.<status> with the payout object
    messages = [m for m in _events(stack) if made["id"] in m["Body"]]
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == [f"payout.{status}"]
    detail = json.loads(messages[0]["Body"])["detail"]
    assert {k: v for k, v in detail.items() if k != "outcome_id"} == made
    # ... and the owner is emailed once, with the entry's receipt
    before = len(_mail_to(user.email))
    assert _send(stack, messages).error is None
    assert _send(stack, messages).error is None  # redelivered: nothing twice
    mails = _mail_to(user.email)[before:]
    assert len(mails) == 1
    raw = str(mails[0].raw_data)
    assert ("paid out" if status == "paid" else "payout of $30.00 failed") in raw
    assert entry.id in raw


def test_a_pending_payout_is_no_outcome_until_its_webhook_settles_it(stack, new_user):
    stack.skip_changes()
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, "4000000000003220")
    made = payout(stack, user, 3_000, card).body
    stack.settle()
    assert ledger.entry_for_outcome(user.id, f"{made['id']}:pending") is None
    body, signature = payout_webhook(stack, made["id"])
    assert deliver(stack, body, signature).status == 200
    stack.settle()
    entry = ledger.entry_for_outcome(user.id, f"{made['id']}:paid")
    assert entry is not None and entry.balance_change == -3_000


def test_a_muted_owner_gets_no_payout_email(stack, new_user):
    stack.skip_changes()
    user, card = funded(stack, new_user)
    muted = stack.call(
        "UpdateMeFunction",
        "accounts/update_me.json",
        body={"settings": {"notify_email": False}},
        authorizer=user.authorizer,
    )
    assert muted.status == 200, muted.body
    stack.settle()
    _events(stack)
    made = payout(stack, user, 1_000, card).body
    stack.settle()
    messages = [m for m in _events(stack) if made["id"] in m["Body"]]
    before = len(_mail_to(user.email))
    assert _send(stack, messages).error is None
    assert len(_mail_to(user.email)) == before
