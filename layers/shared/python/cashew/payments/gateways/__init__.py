"""Payment gateways behind one interface; the configured one is built on first use."""

from __future__ import annotations

import functools

from cashew.config import get_settings
from cashew.payments.gateways.base import Gateway


@functools.cache
def get_gateway() -> Gateway:
    name = get_settings().gateway
    if name == "sandbox":
        from cashew.payments.gateways.sandbox import SandboxGateway  # noqa: PLC0415

        return SandboxGateway()
    raise ValueError(f"unknown gateway {name}")  # pragma: no cover - settings forbid it
