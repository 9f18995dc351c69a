"""Account operations: register, profile, balances, payment methods."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.accounts import cards, store
from cashew.accounts.models import (
    AddPaymentMethodRequest,
    Balance,
    BalancesResponse,
    CardResponse,
    PaymentMethodResponse,
    RegisterRequest,
    UserResponse,
    UserSettings,
)
from cashew.auth import passwords
from cashew.errors import InvalidRequestError, NotFoundError
from cashew.http import Caller
from cashew.observability import metrics
from cashew.payments.gateways import get_gateway


def _user_response(profile: dict[str, Any]) -> UserResponse:
    return UserResponse(
        id=profile["id"],
        email=profile["email"],
        name=profile["name"],
        phone=profile.get("phone"),
        role=profile["role"],
        settings=UserSettings.model_validate(profile.get("settings") or {}),
        created_at=profile["created_at"],
    )


def register(request: RegisterRequest, role: str = "user") -> UserResponse:
    profile = {
        "id": ids.new_id("usr"),
        "email": request.email,
        "name": request.name,
        "phone": None,
        "role": role,
        "settings": UserSettings().model_dump(),
        "created_at": clock.utcnow_str(),
    }
    store.create_user(profile, passwords.hash_password(request.password.get_secret_value()))
    metrics.add_metric(name="UserRegistered", unit=MetricUnit.Count, value=1)
    return _user_response(profile)


def get_me(caller: Caller) -> UserResponse:
    profile = store.get_profile(caller.user_id)
    if profile is None:
        raise NotFoundError("user not found")
    return _user_response(profile)


def list_balances(caller: Caller) -> BalancesResponse:
    items = store.list_balances(caller.user_id)
    return BalancesResponse(
        data=[Balance(currency=i["currency"], available=int(i["available"])) for i in items]
    )


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
