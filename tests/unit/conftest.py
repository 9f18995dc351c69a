"""Unit-test fixtures: a clean, dummy configuration for every test and no network at all.

Settings are read once per process (`get_settings` is cached), so every test starts from a
known environment and an empty cache, and leaves the cache empty for the next one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from cashew import aws, gateways
from cashew.auth import keys
from cashew.config import get_settings

# Every variable cashew.config.Settings requires (fields without a default).
REQUIRED_ENV = {
    "CASHEW_SESSIONS_TABLE": "test-sessions",
    "CASHEW_ACCOUNTS_TABLE": "test-accounts",
    "CASHEW_PAYMENTS_TABLE": "test-payments",
    "CASHEW_IDEMPOTENCY_TABLE": "test-idempotency",
    "CASHEW_LOG_TABLE": "test-log",
    "CASHEW_DISPUTES_TABLE": "test-disputes",
    "CASHEW_REPORTS_TABLE": "test-reports",
    "CASHEW_OUTCOMES_QUEUE_URL": "https://sqs.invalid/000000000000/test-outcomes",
    "CASHEW_EVENT_BUS_NAME": "test-payments-bus",
    "CASHEW_CARD_KEY_ID": "alias/test-cards",
    "CASHEW_JWT_SECRET_ID": "test/jwt",
    "CASHEW_RECEIPT_SECRET_ID": "test/receipts",
    "CASHEW_FINGERPRINT_SECRET_ID": "test/fingerprint",
}


def _clear_caches() -> None:
    get_settings.cache_clear()
    gateways.reset()
    keys._cache.clear()
    aws.reset()


@pytest.fixture(autouse=True)
def cashew_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Given only the required CASHEW_ variables (dummy values) and default settings."""
    for name in list(os.environ):
        if name.startswith("CASHEW_"):
            monkeypatch.delenv(name)
    for name, value in REQUIRED_ENV.items():
        monkeypatch.setenv(name, value)
    _clear_caches()
    yield
    _clear_caches()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never open a connection: any attempt fails the test loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a unit test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
