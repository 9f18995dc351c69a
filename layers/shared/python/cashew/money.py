"""Money: integers in the currency's minor unit, never floats."""

from typing import Annotated, Literal

from pydantic import Field

MAX_AMOUNT = 100_000_000

Amount = Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT, description="minor units")]
Currency = Literal["USD", "EUR", "GBP", "JPY"]

MINOR_UNIT_DIGITS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}
