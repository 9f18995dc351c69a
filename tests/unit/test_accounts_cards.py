"""Card brand detection and expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cashew import clock
from cashew.accounts import cards


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        # the sandbox table of API.md
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("4000000000000002", "visa"),
        ("4000000000009995", "visa"),
        ("4000000000000069", "visa"),
        ("4000000000000119", "visa"),
        ("4000000000003220", "visa"),
        ("4100000000000019", "visa"),
        # Mastercard 51-55 and the 2-series 2221-2720, bounds inclusive
        ("5105105105105100", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("2720999999999996", "mastercard"),
        ("2220990000000000", "unknown"),
        ("2721000000000000", "unknown"),
        ("5000000000000000", "unknown"),
        ("5600000000000000", "unknown"),
        # American Express
        ("378282246310005", "amex"),
        ("341111111111111", "amex"),
        ("6011111111111117", "unknown"),
    ],
)
def test_brand(number: str, expected: str) -> None:
    assert cards.brand(number) == expected


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Given today is 15 November 2026 (UTC)."""
    moment = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: moment)
    return moment


@pytest.mark.parametrize(
    ("month", "year", "expired"),
    [
        (11, 2026, False),  # this month: valid until its last day
        (10, 2026, True),  # last month
        (12, 2026, False),
        (1, 2027, False),
        (12, 2025, True),  # a later month of an earlier year
        (1, 2026, True),
        (11, 2025, True),
    ],
)
def test_is_expired(today: datetime, month: int, year: int, expired: bool) -> None:
    assert cards.is_expired(month, year) is expired


def test_is_expired_across_new_year(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given it is the first minute of 2027
    monkeypatch.setattr(clock, "now", lambda: datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    # Then December 2026 has just expired and January 2027 has not
    assert cards.is_expired(12, 2026)
    assert not cards.is_expired(1, 2027)
