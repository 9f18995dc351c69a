"""Payment methods: cards tokenised by the gateway, kept only as an encrypted token.

Reads and deletes are scoped to the caller: every key is under the caller's own pk, so
another user's payment method is simply not found (404), and responses are built from an
explicit model that has no token field.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew import cursor as cursor_codec
from cashew.accounts import store
from cashew.accounts.models import (
    AddPaymentMethodRequest,
    CardResponse,
    PaymentMethodList,
    PaymentMethodResponse,
)
from cashew.accounts.store import PaymentMethod
from cashew.errors import InvalidRequestError, NotFoundError
from cashew.identity import Caller
from cashew.observability import logger, metrics


def _method_response(method: PaymentMethod) -> PaymentMethodResponse:
    return PaymentMethodResponse(
        id=method.id,
        card=CardResponse(
            brand=method.brand,
            last4=method.last4,
            exp_month=method.exp_month,
            exp_year=method.exp_year,
            fingerprint=method.fingerprint,
        ),
        billing_name=method.billing_name,
        created_at=method.created_at,
    )


def add_payment_method(caller: Caller, request: AddPaymentMethodRequest) -> PaymentMethodResponse:
    # Card encryption and the gateway are imported here, by the one operation that uses
    # them: listing, reading and deleting payment methods do not pay for them at cold start.
    from cashew.accounts import cards  # noqa: PLC0415
    from cashew.gateways import get_gateway  # noqa: PLC0415

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
    method = PaymentMethod(
        user_id=caller.user_id,
        id=method_id,
        brand=cards.brand(number),
        last4=number[-4:],
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=cards.fingerprint(number),
        billing_name=request.billing_name,
        gateway_risk_flag=tokenised.risk_flag,
        token_ciphertext=sealed.ciphertext,
        token_nonce=sealed.nonce,
        token_data_key=sealed.data_key,
        created_at=clock.utcnow_str(),
    )
    store.put_payment_method(method)
    metrics.add_metric(name="PaymentMethodAdded", unit=MetricUnit.Count, value=1)
    return _method_response(method)


def _is_method_id(value: str) -> bool:
    return ids.PATTERNS["pm"].fullmatch(value) is not None


def list_payment_methods(caller: Caller, limit: int, cursor: str | None) -> PaymentMethodList:
    """The caller's payment methods, newest first, `limit` per page."""
    after = cursor_codec.decode(cursor, {"id": ids.PATTERNS["pm"]})["id"] if cursor else None
    methods, has_more = store.list_payment_methods(caller.user_id, limit, after)
    return PaymentMethodList(
        data=[_method_response(method) for method in methods],
        has_more=has_more,
        next_cursor=cursor_codec.encode({"id": methods[-1].id}) if has_more else None,
    )


def get_payment_method(caller: Caller, method_id: str) -> PaymentMethodResponse:
    """One of the caller's payment methods. Anything else, a malformed id or another user's
    method included, is 404: whether it exists is not leaked."""
    method = None
    if _is_method_id(method_id):
        method = store.get_payment_method(caller.user_id, method_id)
    if method is None:
        raise NotFoundError("payment method not found")
    return _method_response(method)


def delete_payment_method(caller: Caller, method_id: str) -> None:
    """Delete one of the caller's payment methods (conditional on it existing); 404 as for
    get_payment_method, and for a method already deleted."""
    if not _is_method_id(method_id) or not store.delete_payment_method(caller.user_id, method_id):
        raise NotFoundError("payment method not found")
    logger.info("payment method deleted", extra={"payment_method_id": method_id})
    metrics.add_metric(name="PaymentMethodDeleted", unit=MetricUnit.Count, value=1)
