"""How get_gateway is configured: its keys come from the GatewaySecret, are refreshed after
CASHEW_SECRETS_MAX_AGE like the token signing keys, and unsafe ones are refused outside the
local stack (fail closed, never logging the secret)."""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import base as powertools_parameters

from cashew import aws
from cashew.config import get_settings
from cashew.gateways import GatewayConfigurationError, get_gateway
from cashew.gateways.base import WebhookError, sign_webhook
from cashew.gateways.sandbox import DEFAULT_WEBHOOK_SECRET
from cashew.observability import logger

NOW = 1_750_000_000
SECRET_ID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cashew-GatewaySecret"
OLD = "old" + "o" * 61
NEW = "new" + "n" * 61
PAYLOAD = json.dumps(
    {
        "id": "evt_sbx_rotation",
        "type": "charge.failed",
        "data": {"charge_id": "ch_sbx_1", "status": "failed", "failure_code": "card_declined"},
    }
).encode()


class SecretsManager:
    """Stands in for the Secrets Manager client under Powertools' SecretsProvider (so the
    real caching is exercised): holds one secret, counts GetSecretValue calls."""

    def __init__(self, value: dict[str, str]) -> None:
        self.value = value
        self.calls = 0

    def get_secret_value(self, **request: Any) -> dict[str, Any]:
        assert request == {"SecretId": SECRET_ID}
        self.calls += 1
        return {"ARN": SECRET_ID, "SecretString": json.dumps(self.value)}


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> SecretsManager:
    manager = SecretsManager({"api_key": "", "webhook_secret": OLD})
    monkeypatch.setenv("CASHEW_GATEWAY_SECRET_ID", SECRET_ID)
    # (cached like the real one, so aws.reset() still works while it is in place)
    monkeypatch.setattr(aws, "_client", functools.cache(lambda service: manager))
    return manager


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[timedelta]:
    """Powertools' cache clock, moved forward by appending to the returned list."""
    start = datetime(2025, 6, 1, 12, 0, 0)
    moved: list[timedelta] = []

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return start + sum(moved, timedelta())

    monkeypatch.setattr(powertools_parameters, "datetime", Clock)
    return moved


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything the layer's logger writes, formatted as in Lambda (extras included)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    yield stream
    logger._logger.removeHandler(handler)


def _verifies(secret: str) -> bool:
    try:
        get_gateway().parse_webhook(PAYLOAD, sign_webhook(PAYLOAD, secret, NOW), NOW)
    except WebhookError:
        return False
    return True


def test_a_rotated_webhook_secret_is_used_after_the_max_age(
    secrets_manager: SecretsManager, clock: list[timedelta], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed gateway that verified a webhook with the current secret
    monkeypatch.setenv("CASHEW_SECRETS_MAX_AGE", "60")
    assert _verifies(OLD)
    assert secrets_manager.calls == 1
    # When the secret is rotated, and less than the max age has passed
    secrets_manager.value = {"api_key": "", "webhook_secret": NEW}
    clock.append(timedelta(seconds=59))
    # Then the instance still uses the secret it read, without asking Secrets Manager again
    assert _verifies(OLD)
    assert not _verifies(NEW)
    assert secrets_manager.calls == 1
    # When the max age has passed
    clock.append(timedelta(seconds=2))
    # Then the next webhook verifies with the new secret, and the old one is refused
    assert _verifies(NEW)
    assert not _verifies(OLD)
    assert secrets_manager.calls == 2


def test_the_adapter_is_rebuilt_only_when_the_secret_changes(
    secrets_manager: SecretsManager, clock: list[timedelta]
) -> None:
    first = get_gateway()
    clock.append(timedelta(seconds=301))
    assert get_gateway() is first  # read again, unchanged: the same adapter
    assert secrets_manager.calls == 2
    secrets_manager.value = {"api_key": "", "webhook_secret": NEW}
    clock.append(timedelta(seconds=301))
    assert get_gateway() is not first


SHORT = "s" * 31


@pytest.mark.parametrize(
    ("webhook_secret", "problem"),
    [
        (DEFAULT_WEBHOOK_SECRET, "documented default"),
        ("", "empty"),
        (SHORT, "shorter than 32"),
    ],
    ids=["documented-default", "empty", "short"],
)
@pytest.mark.parametrize("stage", [None, "prod", "dev"])
def test_a_deployed_gateway_refuses_an_unsafe_webhook_secret(
    secrets_manager: SecretsManager,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: io.StringIO,
    webhook_secret: str,
    problem: str,
    stage: str | None,
) -> None:
    # Given a stack other than the local one whose GatewaySecret holds an unsafe secret
    if stage:
        monkeypatch.setenv("CASHEW_STAGE", stage)
    secrets_manager.value = {"api_key": "", "webhook_secret": webhook_secret}
    # When the gateway is built, then it is refused, every time (nothing is cached)
    for _ in range(2):
        with pytest.raises(GatewayConfigurationError, match=problem):
            get_gateway()
    # ... with a log line that names the problem, not the secret
    logged = log_lines.getvalue()
    assert "gateway configuration refused" in logged
    assert problem in logged
    if webhook_secret:
        assert webhook_secret not in logged


def test_a_deployed_stripe_gateway_needs_an_api_key(
    secrets_manager: SecretsManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the GatewaySecret as deployed, before the operator put Stripe's keys in
    monkeypatch.setenv("CASHEW_GATEWAY", "stripe")
    monkeypatch.setenv("CASHEW_STAGE", "prod")
    secrets_manager.value = {"api_key": "", "webhook_secret": OLD}
    with pytest.raises(GatewayConfigurationError, match="api_key is empty"):
        get_gateway()


def test_a_safe_secret_is_accepted_and_no_stage_accepts_an_unsafe_one(
    secrets_manager: SecretsManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASHEW_STAGE", "prod")
    secrets_manager.value = {"api_key": "", "webhook_secret": "x" * 32}
    assert _verifies("x" * 32)
    # A stack deployed as Stage=local (or the local stack, which generates its secret too)
    # gets no exemption: the documented default is refused there as well
    monkeypatch.setenv("CASHEW_STAGE", "local")
    get_settings.cache_clear()
    secrets_manager.value = {"api_key": "", "webhook_secret": DEFAULT_WEBHOOK_SECRET}
    aws.reset()
    with pytest.raises(GatewayConfigurationError, match="documented default"):
        get_gateway()
