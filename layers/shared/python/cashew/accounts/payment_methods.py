"""Payment methods: cards tokenised by the gateway, kept only as an encrypted token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.accounts import cards, store
from cashew.accounts.models import AddPaymentMethodRequest, CardResponse, PaymentMethodResponse
from cashew.errors import InvalidRequestError
from cashew.identity import Caller
from cashew.observability import metrics
from cashew.payments.gateways import get_gateway


def _method_response(method: dict[str, Any]) -> PaymentMethodResponse:
    return PaymentMethodResponse(
        id=method["id"],
        card=CardResponse(
            brand=method["brand"],
            last4=method["last4"],
            exp_month=method["exp_month"],
            exp_year=method["exp_year"],
            fingerprint=method["fingerprint"],
        ),
        billing_name=method.get("billing_name"),
        created_at=method["created_at"],
    )


def add_payment_method(caller: Caller, request: AddPaymentMethodRequest) -> PaymentMethodResponse:
    card = request.card
    number = card.number.get_secret_value()
    if cards.is_expired(card.exp_month, card.exp_year):
        raise InvalidRequestError(
            "card has expired", errors=[{"field": "card.exp_year", "message": "card has expired"}]
        )
    tokenised = get_gateway().tokenise(
        number, card.exp_month, card.exp_year, card.cvc.get_secret_value()
    )
    method_id = ids.new_id("pm")
    sealed = cards.seal(tokenised.token, caller.user_id, method_id)
    method = {
        "id": method_id,
        "type": "card",
        "brand": cards.brand(number),
        "last4": number[-4:],
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": cards.fingerprint(number),
        "billing_name": request.billing_name,
        "gateway_risk_flag": tokenised.risk_flag,
        "token_ciphertext": sealed.ciphertext,
        "token_nonce": sealed.nonce,
        "token_data_key": sealed.data_key,
        "created_at": clock.utcnow_str(),
    }
    store.put_payment_method(caller.user_id, method)
    metrics.add_metric(name="PaymentMethodAdded", unit=MetricUnit.Count, value=1)
    return _method_response(method)
