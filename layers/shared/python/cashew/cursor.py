"""Opaque list cursors: a DynamoDB start key, encoded; decoding checks every field against
what the list can legitimately produce, so a forged cursor is a 422, never a 500."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from cashew.errors import InvalidRequestError


def encode(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(key), sort_keys=True).encode()).decode()


def decode(cursor: str, fields: Mapping[str, re.Pattern[str]], **fixed: str) -> dict[str, Any]:
    """The start key in `cursor`: exactly `fields` (each a string matching its pattern), with
    the `fixed` ones (e.g. the caller's id) equal to the given values."""
    invalid = InvalidRequestError(
        "cursor is invalid", errors=[{"field": "cursor", "message": "is invalid"}]
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise invalid from exc
    if not isinstance(key, dict) or set(key) != set(fields):
        raise invalid
    for name, pattern in fields.items():
        value = key[name]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise invalid
    if any(key.get(name) != value for name, value in fixed.items()):
        raise invalid
    return key


def decode_key(cursor: str) -> dict[str, str]:
    """The start key in a cursor the service saved itself (a sweep's, never a client's):
    any key whose every attribute is a string."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise ValueError("not a saved start key") from exc
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise ValueError("not a saved start key")
    return {str(name): value for name, value in key.items()}
