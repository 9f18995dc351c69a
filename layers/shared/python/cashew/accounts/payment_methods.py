"""Payment methods: cards tokenised by the gateway, kept only as an encrypted token.

Reads and deletes are scoped to the caller: every key is under the caller's own pk, so
another user's payment method is simply not found (404), and responses are built from an
explicit model that has no token field.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import SecretStr

from cashew import clock, ids
from cashew import cursor as cursor_codec
from cashew.accounts import store
from cashew.accounts.models import (
    AddPaymentMethodRequest,
    CardInput,
    CardResponse,
    PaymentMethodList,
    PaymentMethodResponse,
    UpdatePaymentMethodRequest,
)
from cashew.accounts.store import PaymentMethod
from cashew.config import get_settings
from cashew.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PaymentMethodUnusableError,
)
from cashew.identity import Caller
from cashew.observability import logger, metrics

_DELETE_ROUNDS = 4  # reads of the default again when it changed during a delete


def _method_response(method: PaymentMethod, default: bool) -> PaymentMethodResponse:
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
        status=method.current_status(),
        default=default,
        last_used_at=method.last_used_at,
        created_at=method.created_at,
    )


def add_payment_method(caller: Caller, request: AddPaymentMethodRequest) -> PaymentMethodResponse:
    """A card by number (tokenised at the gateway here) or by a gateway token the client got
    from the gateway itself; either way only the gateway's charging token is kept, sealed,
    and a marker of it, so that a token is attached once."""
    # Card encryption and the gateway are imported here, by the one operation that uses
    # them: listing, reading and deleting payment methods do not pay for them at cold start.
    from cashew.accounts import cards  # noqa: PLC0415
    from cashew.gateways import get_gateway  # noqa: PLC0415
    from cashew.gateways.base import TokenRejectedError  # noqa: PLC0415

    gateway = get_gateway()
    method_id = ids.new_id("pm")
    if isinstance(request.card, CardInput):
        card = request.card
        number = card.number.get_secret_value()
        _refuse_expired(card.exp_month, card.exp_year, "card.exp_year")
        tokenised = gateway.tokenise(
            number, card.exp_month, card.exp_year, card.cvc.get_secret_value()
        )
        token, risk_flag = tokenised.token, tokenised.risk_flag
        brand, last4, exp_month, exp_year = (
            cards.brand(number),
            number[-4:],
            card.exp_month,
            card.exp_year,
        )
        fingerprint = cards.fingerprint(number)
    else:
        token_given = request.gateway_token
        if not isinstance(token_given, SecretStr):  # pragma: no cover - the model requires one
            raise InvalidRequestError("give exactly one of card and gateway_token")
        try:
            attached = gateway.attach_token(token_given.get_secret_value())
        except TokenRejectedError as exc:
            raise _token_refused(str(exc)) from exc
        _refuse_expired(attached.exp_month, attached.exp_year, "gateway_token")
        token, risk_flag = attached.token, attached.risk_flag
        brand, last4 = attached.brand, attached.last4
        exp_month, exp_year = attached.exp_month, attached.exp_year
        fingerprint = cards.token_fingerprint(get_settings().gateway, attached.fingerprint)
    sealed = cards.seal(token, caller.user_id, method_id)
    method = PaymentMethod(
        user_id=caller.user_id,
        id=method_id,
        brand=brand,
        last4=last4,
        exp_month=exp_month,
        exp_year=exp_year,
        fingerprint=fingerprint,
        billing_name=request.billing_name,
        gateway_risk_flag=risk_flag,
        token_ciphertext=sealed.ciphertext,
        token_nonce=sealed.nonce,
        token_data_key=sealed.data_key,
        created_at=clock.utcnow_str(),
    )
    try:
        default = store.put_payment_method(method, cards.token_digest(token))
    except store.TokenAttachedError as exc:
        raise _token_refused("gateway_token is attached to a payment method already") from exc
    metrics.add_metric(name="PaymentMethodAdded", unit=MetricUnit.Count, value=1)
    logger.info(
        "payment method added",
        extra={
            "payment_method_id": method_id,
            "by": "card" if isinstance(request.card, CardInput) else "token",
        },
    )
    return _method_response(method, default)


def _refuse_expired(exp_month: int, exp_year: int, field: str) -> None:
    from cashew.accounts import cards  # noqa: PLC0415

    if cards.is_expired(exp_month, exp_year):
        raise InvalidRequestError(
            "card has expired", errors=[{"field": field, "message": "card has expired"}]
        )


def _token_refused(detail: str) -> InvalidRequestError:
    """422 on `gateway_token` (the detail never quotes the token)."""
    message = detail.removeprefix("gateway_token ")
    return InvalidRequestError(detail, errors=[{"field": "gateway_token", "message": message}])


def _is_method_id(value: str) -> bool:
    return ids.PATTERNS["pm"].fullmatch(value) is not None


def list_payment_methods(caller: Caller, limit: int, cursor: str | None) -> PaymentMethodList:
    """The caller's payment methods, newest first, `limit` per page."""
    after = cursor_codec.decode(cursor, {"id": ids.PATTERNS["pm"]})["id"] if cursor else None
    methods, has_more = store.list_payment_methods(caller.user_id, limit, after)
    default = store.default_method_id(caller.user_id) if methods else None
    return PaymentMethodList(
        data=[_method_response(method, method.id == default) for method in methods],
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
    return _method_response(method, store.default_method_id(caller.user_id) == method.id)


def update_payment_method(
    caller: Caller, method_id: str, request: UpdatePaymentMethodRequest
) -> PaymentMethodResponse:
    """`{default: true}`: make the method the caller's default; the previous default no
    longer is (one pointer, written in one transaction that checks the method exists and is
    still stored `active`). A method that cannot be charged (expired, invalid) is 422
    `payment_method_unusable`: a default that every charge refuses would only hide the cards
    that work."""
    method = (
        store.get_payment_method(caller.user_id, method_id) if _is_method_id(method_id) else None
    )
    if method is None:
        raise NotFoundError("payment method not found")
    if method.current_status() != "active":
        raise PaymentMethodUnusableError(f"the payment method is {method.current_status()}")
    if not store.set_default_method(caller.user_id, method_id):
        # deleted, or no longer active, since it was read: as if it had been first
        method = store.get_payment_method(caller.user_id, method_id)
        if method is None:
            raise NotFoundError("payment method not found")
        raise PaymentMethodUnusableError(f"the payment method is {method.current_status()}")
    logger.info("default payment method set", extra={"payment_method_id": method_id})
    return _method_response(method, True)


def successor(methods: list[PaymentMethod], leaving: str) -> str | None:
    """The default after `leaving` is deleted: the most recently used other active card
    (cards never used after those used, newest first), or None when there is none."""
    candidates = [m for m in methods if m.id != leaving and m.current_status() == "active"]
    if not candidates:
        return None
    return max(candidates, key=lambda m: (m.last_used_at or "", m.created_at, m.id)).id


def delete_payment_method(caller: Caller, method_id: str) -> None:
    """Delete one of the caller's payment methods (conditional on it existing); 404 as for
    get_payment_method, and for a method already deleted. Deleting the default makes the
    most recently used other active card the default (none: the caller has no default), in
    the same transaction, which also checks that the default did not change meanwhile."""
    if not _is_method_id(method_id):
        raise NotFoundError("payment method not found")
    user_id = caller.user_id
    for _ in range(_DELETE_ROUNDS):
        is_default = store.default_method_id(user_id) == method_id
        after = successor(store.all_payment_methods(user_id), method_id) if is_default else None
        try:
            deleted = store.delete_payment_method(user_id, method_id, is_default, after)
        except ConflictError:
            continue  # the default or the successor changed: read them again
        if not deleted:
            raise NotFoundError("payment method not found")
        logger.info(
            "payment method deleted",
            extra={"payment_method_id": method_id, "new_default": after if is_default else None},
        )
        metrics.add_metric(name="PaymentMethodDeleted", unit=MetricUnit.Count, value=1)
        return
    raise ConflictError("the account's payment methods are changing; retry the request")
