"""The local stack answers as API Gateway would: 5XX bodies that state their status, unrouted
methods as the template's 404, and a worker killed between requests replaced before the next."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local.api import Gateway, HttpRequest, make_server
from local.cfn import load_template
from local.runtime import Invocation, Runtime
from local.specs import FunctionSpec, apis, functions

TEMPLATE = load_template()
FIVE_XX = {
    "DEFAULT_5XX": 502,  # what API Gateway answers for a crashed Lambda
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "AUTHORIZER_FAILURE": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "API_CONFIGURATION_ERROR": 500,
}


def _responses() -> dict[str, Any]:
    (api,) = apis(TEMPLATE).values()
    return api.gateway_responses


@pytest.mark.parametrize(("kind", "status"), FIVE_XX.items())
def test_every_5xx_gateway_response_states_its_own_status(kind: str, status: int) -> None:
    # A StatusCode on DEFAULT_5XX alone would give every 5XX type that status: each is explicit
    response = _responses()[kind]
    body = json.loads(response.templates["application/json"])
    assert response.status == body["status"] == status
    assert body["code"] == "internal_error"
    assert response.headers["Content-Type"] == "'application/problem+json'"


class _Functions:
    """The runtime's stand-in: the authorizer allows, the function answers `outcome`."""

    def __init__(self, outcome: Invocation) -> None:
        self.outcome = outcome
        self.invoked: list[str] = []

    def __call__(self, function_id: str, event: Any) -> Invocation:
        self.invoked.append(function_id)
        if event.get("type") == "TOKEN":
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
            }
            return Invocation("a", {"principalId": "usr_1", "policyDocument": policy})
        return self.outcome


@pytest.mark.parametrize(
    "outcome",
    [
        Invocation("r", error={"errorType": "Runtime.ExitError", "errorMessage": "exited"}),
        Invocation("r", payload="not a proxy response"),
        Invocation("r", payload={"body": "no status code"}),
    ],
    ids=["crashed", "not-an-object", "no-status"],
)
def test_a_failed_function_is_502_with_a_body_that_says_502(outcome: Invocation) -> None:
    gateway = Gateway.from_template(TEMPLATE, _Functions(outcome))
    response = gateway.handle(HttpRequest("GET", "/v1/health", "", [], b"", "10.0.0.1"))
    body = json.loads(response.body)
    headers = dict(response.headers)
    assert response.status == body["status"] == 502
    assert headers["Content-Type"] == "application/problem+json"
    assert body["request_id"] == headers["X-Request-Id"]


def _known_path_unrouted_method() -> tuple[str, str]:
    routed: dict[str, set[str]] = {}
    for spec in functions(TEMPLATE).values():
        for event in spec.api_events:
            routed.setdefault(event.path, set()).add(event.method)
    path, methods = next((p, m) for p, m in routed.items() if "{" not in p and "DELETE" not in m)
    assert "ANY" not in methods
    return path, "DELETE"


PATH, METHOD = _known_path_unrouted_method()
UNROUTED = [("GET", "/v1/nowhere"), ("POST", "/v1/users/me/nothing"), (METHOD, PATH)]


@pytest.mark.parametrize(("method", "path"), UNROUTED)
@pytest.mark.parametrize("token", [None, "Bearer x.y.z"])
def test_an_unrouted_method_or_path_is_the_templates_404(
    method: str, path: str, token: str | None
) -> None:
    # Given a request API Gateway does not route (unknown path, or a known path's other method)
    functions_ = _Functions(Invocation("r", {"statusCode": 200, "body": "{}"}))
    gateway = Gateway.from_template(TEMPLATE, functions_)
    headers = [("Authorization", token)] if token else []
    # When it is sent, with or without a token
    response = gateway.handle(HttpRequest(method, path, "", headers, b"{}", "10.0.0.1"))
    # Then it is the template's MISSING_AUTHENTICATION_TOKEN response, and nothing ran
    body = json.loads(response.body)
    assert (response.status, body["status"], body["code"]) == (404, 404, "not_found")
    assert dict(response.headers)["Content-Type"] == "application/problem+json"
    assert functions_.invoked == []


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "FOO", "DELETE"])
def test_the_http_front_answers_any_method_as_api_gateway(method: str) -> None:
    server = make_server(
        Gateway.from_template(TEMPLATE, _Functions(Invocation("r", {"statusCode": 200}))), port=0
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    try:
        connection = http.client.HTTPConnection(str(host), port, timeout=5)
        connection.request(method, "/v1/health", headers={"Authorization": "Bearer x"})
        answer = connection.getresponse()
        body = json.loads(answer.read())
        assert (answer.status, body["code"]) == (404, "not_found")
        assert answer.getheader("Content-Type") == "application/problem+json"
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_worker_killed_between_requests_is_replaced_before_the_next(tmp_path: Path) -> None:
    # Given a function whose warm worker served one invocation
    (tmp_path / "app.py").write_text(
        "import os\n\ndef handler(event, context):\n    return {'pid': os.getpid()}\n"
    )
    spec = FunctionSpec("Fn", "cashew-Fn", tmp_path, "app", "handler", 5, 128, {}, (), (), ())
    runtime = Runtime({"Fn": spec}, {"Fn": {}}, max_workers=1)
    try:
        first = runtime.invoke("Fn", {})
        assert first.ok, first.error
        # When that worker is killed while idle (as Lambda may lose an instance)
        os.kill(first.payload["pid"], signal.SIGKILL)
        time.sleep(0.2)
        # Then the next invocation succeeds, in a new execution environment
        second = runtime.invoke("Fn", {})
        assert second.ok, second.error
        assert second.payload["pid"] != first.payload["pid"]
        # And a kill right before a request (no pause) is survived too
        os.kill(second.payload["pid"], signal.SIGKILL)
        third = runtime.invoke("Fn", {})
        assert third.ok, third.error
    finally:
        runtime.shutdown()
