"""Issue 10, 1a: a signed gateway event moves at most what the payment authorised. Through
the handler: an over-amount (or non-positive, or other-currency) settlement is answered 200,
credits nothing, leaves the payment `processing`, is logged as an error without its body and
counted; the genuine event still settles the payment afterwards."""

from __future__ import annotations

import logging

import pytest

from cashew.observability import metrics
from cashew.payments import store
from tests.integration.conftest import balance
from tests.integration.test_gateway_webhooks import _deliver, _event, _processing_payment


@pytest.mark.parametrize(
    ("amount", "currency"), [(100_000_000, None), (701, None), (0, None), (700, "EUR")]
)
def test_a_settlement_the_payment_does_not_explain_moves_nothing(
    stack, new_user, caplog, monkeypatch, amount, currency
):
    # Given a processing card payment of 700
    payer, payee = new_user(), new_user()
    payment, stored = _processing_payment(stack, payer, payee, amount=700)
    counted: list[str] = []
    add_metric = metrics.add_metric
    monkeypatch.setattr(
        metrics, "add_metric", lambda **kw: (counted.append(kw["name"]), add_metric(**kw))[1]
    )
    caplog.clear()
    # When the gateway's signed event says it captured something else
    forged = _event(payment["id"], stored.charge_id, amount=amount)
    forged["data"]["amount_captured"] = amount
    if currency:
        forged["data"]["currency"] = currency
    answer = _deliver(stack, forged)
    # Then it is accepted and nothing moved: no credit, the payment still processing
    assert answer.status == 200
    assert balance(stack, payee) == 0
    kept = store.get(payment["id"]).payment
    assert (kept.status, kept.amount_captured) == ("processing", 0)
    # ...it was logged as an error (ids, never the body) and counted
    errors = [r for r in caplog.records if r.getMessage().startswith("webhook refused")]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert errors[0].__dict__["payment_id"] == payment["id"]
    assert all(stored.charge_id not in r.getMessage() for r in caplog.records)
    assert counted.count("WebhookAmountRefused") == 1
    # And the genuine event still settles it for the authorised amount
    assert _deliver(stack, _event(payment["id"], stored.charge_id, amount=700)).status == 200
    assert balance(stack, payee) == 700
    assert store.get(payment["id"]).payment.status == "succeeded"
