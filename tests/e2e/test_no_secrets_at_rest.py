"""No card number, CVC, password, refresh token or access token in any table or log line."""

from __future__ import annotations

import secrets
import uuid

from tests.e2e.conftest import add_card, top_up, wait_for_entries
from tests.support.secrets_seen import all_items, standing_alone


def test_secrets_are_never_stored_or_logged(stack, new_user):
    # Given a user with a distinctive password, card and CVC, who logs in, adds cards
    # (accepted and rejected), tops up and pays
    password = "pw-" + secrets.token_urlsafe(18)
    payer, payee = new_user(password=password), new_user()
    # A CVC with a leading zero: no count, port, pid or duration in a log line is written
    # that way, so a match is the CVC itself
    card, cvc, rejected_cvc = "5555555555554444", "0731", "0482"
    method = add_card(stack, payer, card, cvc)
    stack.request(
        "POST",
        "/v1/users/me/payment-methods",
        payer.token,
        json={
            "card": {
                "number": "4000000000000002",
                "exp_month": 13,
                "exp_year": 2030,
                "cvc": rejected_cvc,
            }
        },
    )
    top_up(stack, payer, method, 5_000)
    paid = stack.request(
        "POST",
        "/v1/payments",
        payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "amount": 100,
            "currency": "USD",
            "payee_id": payee.id,
            "source": {"type": "balance"},
        },
    )
    assert paid.status_code == 201
    wait_for_entries(stack, payee.token, type="payment")
    refresh_secret = payer.refresh_token.split(".", 1)[1]
    signature = payer.token.rsplit(".", 1)[1]
    forbidden = {
        "card number": card,
        "rejected card number": "4000000000000002",
        "cvc": cvc,
        "rejected cvc": rejected_cvc,
        "password": password,
        "refresh token": refresh_secret,
        "access token": signature,
    }
    # When every DynamoDB item and every captured log line are read
    stored = all_items(stack.aws_url)
    logs = stack.logs()
    # Then none of them appears anywhere
    assert stored, "the scan found no items: the test would prove nothing"
    for name, value in forbidden.items():
        alone = standing_alone(value)
        assert not alone.search(stored), f"{name} stored in DynamoDB"
        if stack.log_path is not None:
            assert not alone.search(logs), f"{name} found in the logs"
    if stack.log_path is not None:
        assert '"cvc"' not in logs
        assert len(logs) > 1000, "the captured logs are empty: the test would prove nothing"
