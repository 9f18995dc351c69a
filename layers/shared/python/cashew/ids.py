"""Prefixed, time-sortable identifiers (ULID)."""

from typing import Literal

from ulid import ULID

Prefix = Literal["usr", "ses", "pm", "pay", "re", "txn", "dsp", "evt"]


def new_id(prefix: Prefix) -> str:
    return f"{prefix}_{ULID()}"
