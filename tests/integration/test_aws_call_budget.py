"""The AWS call budget of a balance payment: one GetItem (the payer's recent attempts, which
fraud screening reads) and one TransactWriteItems (its outcome is published from the payments
table's stream, not by the request).

Calls are counted as `make bench` counts them (bench.harness.CallCounter): a botocore
`before-call` hook on `cashew.aws.session()`, installed after a `cashew.aws.reset()` and so
before any client of the layer exists. The handlers run in-process against the `stack`
fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

from bench.harness import Driver, counting

BUDGET = 2


def test_warm_balance_payment_success_makes_one_read_and_one_transaction(stack):
    # Given a payer with money and a payee, and every client of the layer made from a hooked
    # session
    driver = Driver(stack)
    payer, payee = driver.new_account(), driver.new_account()
    driver.top_up(payer, driver.add_card(payer), 10_000)
    with counting() as counter:
        # ... and CreatePaymentFunction warm: it has made a payment already
        driver.pay(payer, payee.id, 100)
        request = driver.payment_request(payer, payee.id, 250)

        # When the payer pays again, with a new idempotency key
        with counter.window() as calls:
            raw = stack.invoke(request.function_id, request.event)

    # Then the payment succeeded with two AWS calls: the payer's history, the transaction
    payment = request.complete(raw)
    assert payment["status"] == "succeeded"
    assert payment["amount_captured"] == 250
    assert len(calls) <= BUDGET, f"a warm balance payment made {len(calls)} AWS calls: {calls}"
    assert sorted(calls) == ["DynamoDB.GetItem", "DynamoDB.TransactWriteItems"]


def test_the_verified_email_gate_adds_one_consistent_read_to_a_money_post(stack, monkeypatch):
    """CASHEW_REQUIRE_VERIFIED_EMAIL=true: the payment reads the payer's `email_verified`
    (one strongly consistent GetItem, projected to that attribute) before anything else;
    off, the budget above holds (no read added)."""
    from cashew import dynamo
    from cashew.config import get_settings

    driver = Driver(stack)
    payer, payee = driver.new_account(), driver.new_account()
    driver.top_up(payer, driver.add_card(payer), 10_000)
    dynamo.update_item(
        stack.env["CASHEW_ACCOUNTS_TABLE"],
        {"pk": f"USER#{payer.id}", "sk": "PROFILE"},
        "SET email_verified = :true",
        {":true": True},
    )
    monkeypatch.setenv("CASHEW_REQUIRE_VERIFIED_EMAIL", "true")
    get_settings.cache_clear()
    try:
        with counting() as counter:
            driver.pay(payer, payee.id, 100)
            request = driver.payment_request(payer, payee.id, 250)
            with counter.window() as calls:
                raw = stack.invoke(request.function_id, request.event)
    finally:
        monkeypatch.delenv("CASHEW_REQUIRE_VERIFIED_EMAIL")
        get_settings.cache_clear()
    assert request.complete(raw)["status"] == "succeeded"
    assert sorted(calls) == ["DynamoDB.GetItem", "DynamoDB.GetItem", "DynamoDB.TransactWriteItems"]
