"""Run handlers in-process as Lambda would: the module from its CodeUri, a real context, and
the events/ sample of the function with the variations a test needs."""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.template import FunctionSpec

REPO = Path(__file__).resolve().parents[2]


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
    path = Path(spec.code_dir) / f"{spec.handler_module}.py"
    if str(path) not in _modules:
        module_spec = importlib.util.spec_from_file_location(f"fn_{spec.logical_id}", path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        _modules[str(path)] = module
    return _modules[str(path)]


def sample_event(relative: str) -> dict[str, Any]:
    return json.loads((REPO / "events" / relative).read_text())


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def api_event(
    relative: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    authorizer: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The events/ sample with a fresh request id and the given variations. Without
    `authorizer` the sample's authorizer context is removed (as for a public route)."""
    event = copy.deepcopy(sample_event(relative))
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    if authorizer is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"] = authorizer
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    if path is not None:  # fill the resource's {name} parameters, as API Gateway does
        event["pathParameters"] = path
        concrete = event["resource"]
        for name, value in path.items():
            concrete = concrete.replace("{" + name + "}", value)
        event["path"] = concrete
        event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{concrete}"
    if query is not None:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return event


def reply(raw: dict[str, Any]) -> Reply:
    headers = {k: v for k, v in (raw.get("headers") or {}).items()}
    for name, values in (raw.get("multiValueHeaders") or {}).items():
        headers[name] = values[-1]
    body = raw.get("body")
    if body and not headers.get("Content-Type", "").startswith("text/"):
        body = json.loads(body)
    return Reply(raw["statusCode"], headers, body or None)
