"""Payment gateways behind one interface; the configured one is built on first use.

`CASHEW_GATEWAY` picks the adapter: `sandbox` (default; its webhook secret is
`CASHEW_GATEWAY_WEBHOOK_SECRET`, and `CASHEW_SANDBOX_WEBHOOK_URL` is where it schedules the
webhooks of processing charges) or `stripe` (its `api_key` and `webhook_secret` come from the
Secrets Manager JSON secret `CASHEW_STRIPE_SECRET_ID`; `CASHEW_STRIPE_API_BASE` is for tests).
Only the chosen adapter's module is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from cashew.config import Settings, get_settings
from cashew.payments.gateways.base import Gateway


def _sandbox(settings: Settings) -> Gateway:
    from cashew.payments.gateways.sandbox import SandboxGateway  # noqa: PLC0415

    return SandboxGateway(
        webhook_url=settings.sandbox_webhook_url,
        secret=settings.gateway_webhook_secret.get_secret_value(),
    )


def _stripe(settings: Settings) -> Gateway:
    from cashew import aws  # noqa: PLC0415
    from cashew.payments.gateways.stripe_gateway import StripeGateway  # noqa: PLC0415

    secret_id = settings.stripe_secret_id
    if secret_id is None:
        raise ValueError("CASHEW_STRIPE_SECRET_ID is required when CASHEW_GATEWAY=stripe")
    secret = aws.secret_json(secret_id, settings.secrets_max_age)
    return StripeGateway(
        api_key=str(secret["api_key"]),
        webhook_secret=str(secret["webhook_secret"]),
        api_base=settings.stripe_api_base,
    )


_BUILDERS: dict[str, Callable[[Settings], Gateway]] = {"sandbox": _sandbox, "stripe": _stripe}


@functools.cache
def get_gateway() -> Gateway:
    settings = get_settings()
    builder = _BUILDERS.get(settings.gateway)
    if builder is None:  # pragma: no cover - settings forbid it
        raise ValueError(f"unknown gateway {settings.gateway}")
    return builder(settings)
