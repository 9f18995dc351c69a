"""Payment gateways behind one interface; the configured one is built on first use.

`CASHEW_GATEWAY` picks the adapter: `sandbox` (`CASHEW_SANDBOX_WEBHOOK_URL` is where it
schedules the webhooks of processing charges) or `stripe` (`CASHEW_STRIPE_API_BASE` is for
tests). Either takes its keys from the Secrets Manager JSON secret `CASHEW_GATEWAY_SECRET_ID`
(the template's `GatewaySecret`): `{"api_key": ..., "webhook_secret": ...}`; the sandbox
signs and verifies its webhooks with that `webhook_secret` (generated at deploy time), Stripe
uses both. Only the chosen adapter's module is imported.

The secret is read through `aws.secret_json`, so it is cached for `CASHEW_SECRETS_MAX_AGE`
seconds like the token signing keys; the adapter is rebuilt only when the secret's value has
changed. On every stack (the local one generates its GatewaySecret too), a webhook secret
that is empty, shorter than 32 characters or the sandbox's documented default, or a Stripe
adapter without an api key, is refused: `get_gateway` raises GatewayConfigurationError (logged
without the secret) and every request that needs the gateway fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from cashew import aws
from cashew.config import Settings, get_settings
from cashew.gateways.base import Gateway
from cashew.observability import logger

MIN_WEBHOOK_SECRET_LENGTH = 32
DOCUMENTED_WEBHOOK_SECRETS = frozenset({"whsec_sandbox_local"})
"""Secrets published in this repository's docs and code: never acceptable when deployed."""


class GatewayConfigurationError(RuntimeError):
    """The gateway's configuration is unsafe or incomplete; no request may use it."""


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    api_key: str
    webhook_secret: str

    def __repr__(self) -> str:  # never shows the keys
        return "GatewayKeys(...)"


def _sandbox(settings: Settings, keys: GatewayKeys) -> Gateway:
    from cashew.gateways.sandbox import SandboxGateway  # noqa: PLC0415

    return SandboxGateway(
        webhook_url=settings.sandbox_webhook_url,
        secret=keys.webhook_secret,
        challenge_url=settings.sandbox_challenge_url,
    )


def _stripe(settings: Settings, keys: GatewayKeys) -> Gateway:
    from cashew.gateways.stripe_gateway import StripeGateway  # noqa: PLC0415

    return StripeGateway(
        api_key=keys.api_key,
        webhook_secret=keys.webhook_secret,
        api_base=settings.stripe_api_base,
        return_url=settings.three_ds_return_url or urljoin(settings.app_url, "#/3ds-return"),
    )


_BUILDERS: dict[str, Callable[[Settings, GatewayKeys], Gateway]] = {
    "sandbox": _sandbox,
    "stripe": _stripe,
}


def _refuse(settings: Settings, problem: str) -> GatewayConfigurationError:
    message = f"the {settings.gateway} gateway is not configured safely: {problem}"
    logger.error(
        "gateway configuration refused",
        extra={"gateway": settings.gateway, "stage": settings.stage, "problem": problem},
    )
    return GatewayConfigurationError(message)


def keys(settings: Settings) -> GatewayKeys:
    """The gateway's keys from its secret (cached for `secrets_max_age` seconds)."""
    if not settings.gateway_secret_id:
        raise _refuse(settings, "CASHEW_GATEWAY_SECRET_ID (the GatewaySecret) is not set")
    secret = aws.secret_json(settings.gateway_secret_id, settings.secrets_max_age)
    return GatewayKeys(
        api_key=str(secret.get("api_key") or ""),
        webhook_secret=str(secret.get("webhook_secret") or ""),
    )


def _check(settings: Settings, gateway_keys: GatewayKeys) -> None:
    """Fail closed, on every stack: the local one generates its GatewaySecret too, so no stage
    (a deployed `Stage=local` included) needs a weak one."""
    webhook_secret = gateway_keys.webhook_secret
    if webhook_secret in DOCUMENTED_WEBHOOK_SECRETS:
        raise _refuse(settings, "the webhook_secret is the documented default")
    if not webhook_secret:
        raise _refuse(settings, "the webhook_secret is empty")
    if len(webhook_secret) < MIN_WEBHOOK_SECRET_LENGTH:
        raise _refuse(
            settings, f"the webhook_secret is shorter than {MIN_WEBHOOK_SECRET_LENGTH} characters"
        )
    if settings.gateway == "stripe" and not gateway_keys.api_key:
        raise _refuse(settings, "the api_key is empty (put Stripe's key into the GatewaySecret)")


_cache: dict[tuple[Settings, str], Gateway] = {}


def _fingerprint(gateway_keys: GatewayKeys) -> str:
    both = f"{len(gateway_keys.api_key)}:{gateway_keys.api_key}{gateway_keys.webhook_secret}"
    return hashlib.sha256(both.encode()).hexdigest()


def get_gateway() -> Gateway:
    """The configured adapter, keyed by the secret as it is now (the adapter is memoised)."""
    settings = get_settings()
    builder = _BUILDERS.get(settings.gateway)
    if builder is None:  # pragma: no cover - settings forbid it
        raise ValueError(f"unknown gateway {settings.gateway}")
    gateway_keys = keys(settings)
    cache_key = (settings, _fingerprint(gateway_keys))
    gateway = _cache.get(cache_key)
    if gateway is None:
        _check(settings, gateway_keys)
        gateway = builder(settings, gateway_keys)
        _cache.clear()
        _cache[cache_key] = gateway
    return gateway


def reset() -> None:
    """Forget the built adapter (tests change the configuration)."""
    _cache.clear()
