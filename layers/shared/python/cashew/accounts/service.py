"""Account operations: register, profile (read and update), balances."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.accounts import passwords, store
from cashew.accounts.models import (
    Balance,
    BalancesResponse,
    RegisterRequest,
    UpdateMeRequest,
    UserResponse,
    UserSettings,
)
from cashew.accounts.store import Profile, Settings
from cashew.errors import NotFoundError
from cashew.identity import Caller
from cashew.observability import logger, metrics


def user_response(profile: Profile) -> UserResponse:
    return UserResponse(
        id=profile.id,
        email=profile.email,
        email_verified=profile.email_verified,
        name=profile.name,
        phone=profile.phone,
        role=profile.role,
        settings=UserSettings.model_validate(
            {
                "default_currency": profile.settings.default_currency,
                "notify_email": profile.settings.notify_email,
            }
        ),
        mfa_enabled=profile.mfa_enabled,
        created_at=profile.created_at,
    )


def register(request: RegisterRequest, role: str = "user") -> UserResponse:
    profile = Profile(
        id=ids.new_id("usr"),
        email=request.email,
        name=request.name,
        phone=None,
        role=role,
        settings=Settings(),
        created_at=clock.utcnow_str(),
    )
    store.create_user(profile, passwords.hash_password(request.password.get_secret_value()))
    metrics.add_metric(name="UserRegistered", unit=MetricUnit.Count, value=1)
    return user_response(profile)


def get_me(caller: Caller) -> UserResponse:
    profile = store.get_profile(caller.user_id)
    if profile is None:
        raise NotFoundError("user not found")
    return user_response(profile)


def update_me(caller: Caller, request: UpdateMeRequest) -> UserResponse:
    """Change the caller's name, phone and settings (only the keys given) in one conditional
    UpdateItem; the profile as it is afterwards."""
    sent = request.model_dump()  # only the fields the client sent
    settings: dict[str, str | bool] = sent.pop("settings", {})
    fields: dict[str, str | None] = sent
    profile = store.update_profile(caller.user_id, fields, settings, clock.utcnow_str())
    if profile is None:
        raise NotFoundError("user not found")
    # Which fields changed, never their values (a phone number is personal data).
    changed = sorted(fields) + [f"settings.{key}" for key in sorted(settings)]
    logger.info("profile updated", extra={"fields": changed})
    metrics.add_metric(name="ProfileUpdated", unit=MetricUnit.Count, value=1)
    return user_response(profile)


def list_balances(caller: Caller) -> BalancesResponse:
    balances = store.list_balances(caller.user_id)
    return BalancesResponse(
        data=[Balance(currency=b.currency, available=b.available) for b in balances]
    )
