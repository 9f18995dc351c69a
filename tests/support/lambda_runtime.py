"""Run handlers in-process as Lambda would: the module from its CodeUri (`local.handlers`),
a real context, and the events/ sample of the function with the variations a test needs
(`local.events.api_event`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from local.handlers import load_module
from local.specs import FunctionSpec


@dataclass
class FakeContext:
    function_name: str = "cashew-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cashew-test"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/cashew-test"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


_modules: dict[str, ModuleType] = {}


def handler_module(spec: FunctionSpec) -> ModuleType:
    """The function's handler module, loaded once from its CodeUri (like a warm instance)."""
    if spec.logical_id not in _modules:
        _modules[spec.logical_id] = load_module(spec, f"fn_{spec.logical_id}")
    return _modules[spec.logical_id]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def reply(raw: dict[str, Any]) -> Reply:
    headers = {k: v for k, v in (raw.get("headers") or {}).items()}
    for name, values in (raw.get("multiValueHeaders") or {}).items():
        headers[name] = values[-1]
    body = raw.get("body")
    if body and not headers.get("Content-Type", "").startswith("text/"):
        body = json.loads(body)
    return Reply(raw["statusCode"], headers, body or None)
