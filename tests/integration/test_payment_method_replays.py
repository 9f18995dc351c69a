"""Attacks on payment methods (review of issue 12): a retry with the same Idempotency-Key is
the same request, and gets the same answer, whatever happened to the cards since. A client
whose top-up timed out, and who then deleted the card, must learn that it was charged."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import add_card, call_with_id, pay, top_up
from tests.integration.test_payment_method_charges import top_up_default


def delete_card(stack, user, method_id: str) -> None:
    reply = call_with_id(
        stack, "DeletePaymentMethodFunction", "accounts/delete_payment_method.json", method_id,
        authorizer=user.authorizer,
    )  # fmt: skip
    assert reply.status == 204, reply.body


def test_a_default_charge_replays_after_the_user_deleted_every_card(stack, new_user):
    # Given a top-up that charged the default (the only card), naming no method
    user = new_user()
    card = add_card(stack, user)
    key = str(uuid.uuid4())
    first = top_up_default(stack, user, 1_500, key)
    assert (first.status, first.body["status"]) == (201, "succeeded")
    # When the card is deleted (so the user has no default) and the request is retried
    delete_card(stack, user, card)
    again = top_up_default(stack, user, 1_500, key)
    # Then the retry replays the recorded answer, not a 422 "no default"
    assert (again.status, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.body
    assert again.body == first.body


@pytest.mark.parametrize("charge", ["top_up", "card_payment"])
def test_a_named_card_charge_replays_after_that_card_was_deleted(stack, new_user, charge):
    # Given a charge of a named card
    user, payee = new_user(), new_user()
    card = add_card(stack, user)
    key = str(uuid.uuid4())

    def send():
        if charge == "top_up":
            return top_up(stack, user, card, 700, key)
        source = {"type": "card", "payment_method_id": card}
        return pay(stack, user, payee.id, 700, source=source, key=key)

    first = send()
    assert (first.status, first.body["status"]) == (201, "succeeded")
    # When the card is deleted and the request retried
    delete_card(stack, user, card)
    again = send()
    # Then it replays (a 404 would tell the client nothing was charged)
    assert (again.status, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.body
    assert again.body == first.body
