"""Prefixed, time-sortable identifiers (ULID), and the patterns that recognise them."""

import re
from typing import Literal, get_args

Prefix = Literal["usr", "ses", "pm", "pay", "re", "po", "txn", "dsp", "evt", "we", "whd", "job"]

PATTERNS: dict[Prefix, re.Pattern[str]] = {
    prefix: re.compile(rf"{prefix}_[0-9A-Z]{{26}}") for prefix in get_args(Prefix)
}
"""The id of each prefix, `pay_` and 26 Crockford base32 characters (`PATTERNS["pay"]`)."""


def new_id(prefix: Prefix) -> str:
    # Imported here: python-ulid reads its own version through importlib.metadata (about
    # 11 ms of a cold start), and most handlers only recognise ids, never mint one.
    from ulid import ULID  # noqa: PLC0415

    return f"{prefix}_{ULID()}"
