"""GET /v1/openapi.json: OpenApiFunction with its events/ sample serves the committed document.

The function touches no AWS service, so it runs without the embedded endpoint (no `stack`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.cfn import load_template
from local.events import api_event
from local.specs import FunctionSpec, functions
from tests.support.lambda_runtime import FakeContext, Reply, handler_module, reply
from tools.openapi import OUTPUT

SAMPLE = "docs/openapi.json"


@pytest.fixture(scope="module")
def spec() -> FunctionSpec:
    return functions(load_template())["OpenApiFunction"]


def invoke(spec: FunctionSpec, event: dict[str, Any]) -> tuple[dict[str, Any], Reply]:
    raw = getattr(handler_module(spec), spec.handler_attr)(event, FakeContext(spec.name))
    return raw, reply(raw)


def test_serves_the_committed_document(spec: FunctionSpec) -> None:
    event = api_event(SAMPLE)
    raw, answer = invoke(spec, event)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Request-Id"] == event["requestContext"]["requestId"]
    committed = OUTPUT.read_text(encoding="utf-8")
    assert raw["body"] == committed  # served as generated, not re-serialised
    assert answer.body == json.loads(committed)
    assert "get" in answer.body["paths"]["/v1/openapi.json"]


def test_an_unknown_path_is_a_problem_json_404(spec: FunctionSpec) -> None:
    event = api_event(SAMPLE)
    event["path"] = event["resource"] = "/v1/openapi.yaml"
    _, answer = invoke(spec, event)
    assert answer.status == 404
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.code == "not_found"
    assert answer.body["request_id"] == answer.headers["X-Request-Id"]
