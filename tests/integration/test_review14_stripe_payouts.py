"""Review of issue 14: a Stripe payout that fails after its Transfer went through must take
the Transfer back (a reversal to the platform's balance) before Cashew credits the balance
back, or the money exists twice: in the user's Cashew balance and in their connected
account. Against the local fake Stripe of test_stripe_payouts (nothing leaves 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import pytest

from cashew.gateways.base import GatewayOutcomeUnknownError, GatewayUnavailableError
from tests.integration import test_stripe_payouts as stripe_fake
from tests.integration.test_stripe_payouts import _pay, fake, gateway, server

__all__ = ["fake", "gateway", "server"]  # the fixtures, used by name

_ORIGINAL = stripe_fake._answer


def _with_reversals(refuse_payout: bool = False, reversal_status: int = 200) -> Any:
    """The fake's answers, with transfer reversals (and, if asked, a payout Stripe refuses)."""

    def answer(fake: Any, path: str, form: dict[str, str], n: int) -> tuple[int, Any]:
        if path.startswith("/v1/transfers/") and path.endswith("/reversals"):
            if reversal_status != 200:
                return reversal_status, {"error": {"type": "api_error", "message": "lost"}}
            transfer = path.split("/")[3]
            return 200, {"id": f"trr_{n}", "object": "transfer_reversal",
                         "amount": int(form["amount"]), "transfer": transfer}  # fmt: skip
        if path == "/v1/payouts" and refuse_payout:
            refusal = {"type": "invalid_request_error", "code": "instant_payouts_unsupported",
                       "message": "this card cannot receive instant payouts"}  # fmt: skip
            return 400, {"error": refusal}
        return _ORIGINAL(fake, path, form, n)

    return answer


def _reversals(fake: Any) -> list[Any]:
    return [s for s in fake.seen if s.path.endswith("/reversals")]


def test_a_payout_that_fails_reverses_its_transfer(gateway, fake, monkeypatch):
    monkeypatch.setattr(stripe_fake, "_answer", _with_reversals())
    fake.payout_status, fake.failure_code = "failed", "could_not_process"
    answer = _pay(gateway, "k-rev")
    assert (answer.status, answer.failure_code) == ("failed", "card_declined")
    [transfer] = [s for s in fake.seen if s.path == "/v1/transfers"]
    [reversal] = _reversals(fake)
    assert reversal.path == f"/v1/transfers/tr_{fake.seen.index(transfer) + 1}/reversals"
    assert reversal.form["amount"] == "2500"
    assert reversal.headers["Idempotency-Key"] == "k-rev:reversal"
    # asking again replays every call: still one reversal at Stripe (one per key)
    assert _pay(gateway, "k-rev") == answer
    assert len({s.headers["Idempotency-Key"] for s in _reversals(fake)}) == 1


def test_a_payout_stripe_refuses_reverses_its_transfer_before_the_error(gateway, fake, monkeypatch):
    monkeypatch.setattr(stripe_fake, "_answer", _with_reversals(refuse_payout=True))
    with pytest.raises(GatewayUnavailableError):  # Cashew then fails it and credits back
        _pay(gateway, "k-refused")
    assert [s.form["amount"] for s in _reversals(fake)] == ["2500"]


def test_a_reversal_without_an_answer_leaves_the_payout_unknown(gateway, fake, monkeypatch):
    monkeypatch.setattr(stripe_fake, "_answer", _with_reversals(reversal_status=500))
    fake.payout_status = "failed"
    with pytest.raises(GatewayOutcomeUnknownError):  # stays pending: asked again later
        _pay(gateway, "k-lost")
    assert len(_reversals(fake)) == 1
