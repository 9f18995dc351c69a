"""Account operations: register, profile, balances."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.accounts import store
from cashew.accounts.models import (
    Balance,
    BalancesResponse,
    RegisterRequest,
    UserResponse,
    UserSettings,
)
from cashew.auth import passwords
from cashew.errors import NotFoundError
from cashew.identity import Caller
from cashew.observability import metrics


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
