"""How an email writes money and time: `$25.00`, `€10.00`, `£1.00`, `¥500` (the minor units of
`cashew.money`), and `1 December 2026, 22:43 UTC`."""

from __future__ import annotations

from datetime import datetime

from cashew import clock
from cashew.money import MINOR_UNIT_DIGITS

SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def amount(minor: int, currency: str) -> str:
    """`minor` units of `currency`, with its symbol (or its code, for one we have none for)
    and thousands separators."""
    digits = MINOR_UNIT_DIGITS.get(currency, 2)
    sign, minor = ("-", -minor) if minor < 0 else ("", minor)
    whole, fraction = divmod(minor, 10**digits)
    number = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def moment(rfc3339: str) -> str:
    """A stored time (RFC 3339, UTC) as a person reads it; as given if it is not one."""
    if not clock.RFC3339.fullmatch(rfc3339):
        return rfc3339
    at = clock.to_utc(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")))
    return f"{at.day} {at:%B %Y, %H:%M} UTC"


def card(brand: str, last4: str) -> str:
    """A card as an email may name it: its brand and last four digits, nothing more."""
    return f"{brand.title()} •••• {last4[-4:]}"


def one_line(text: str) -> str:
    """A user-given text (a name) on one line: no control characters reach a header."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
