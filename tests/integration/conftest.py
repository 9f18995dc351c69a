"""Integration fixtures: handlers invoked in-process with their events/ samples, against the
embedded AWS endpoint (moto, one request at a time) provisioned from template.yaml."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cashew import aws
from cashew.config import get_settings
from local import aws as local_aws
from local.cfn import load_template
from local.consumers import StreamPoller, sqs_event, succeeded
from local.events import api_event
from local.provision import provision
from local.runtime import Invocation
from local.specs import FunctionSpec, functions, stack_env
from tests.support.lambda_runtime import FakeContext, Reply, handler_module, reply

PASSWORD = "correct horse battery staple"


class Died(BaseException):
    """A function's process dying mid-invocation: no handler catches it, nothing after it
    runs, and the invocation fails."""


@dataclass
class Stack:
    endpoint: str
    env: dict[str, str]
    functions: dict[str, FunctionSpec]
    clients: Callable[[str], Any]
    resources: dict[str, dict[str, Any]]

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        spec = self.functions[function_id]
        module = handler_module(spec)
        return getattr(module, spec.handler_attr)(event, FakeContext(function_name=spec.name))

    def call(self, function_id: str, sample: str, **variations: Any) -> Reply:
        return reply(self.invoke(function_id, api_event(sample, **variations)))

    def gateway_webhook_secret(self) -> str:
        """The webhook secret of this stack's gateway: its GatewaySecret's, as generated."""
        secret_id = self.env["CASHEW_GATEWAY_SECRET_ID"]
        value = self.clients("secretsmanager").get_secret_value(SecretId=secret_id)
        return str(json.loads(value["SecretString"])["webhook_secret"])

    def invocation(self, function_id: str, event: dict[str, Any]) -> Invocation:
        """`invoke`, reported as local.runtime reports it: a handler that raised is an error."""
        request_id = str(uuid.uuid4())
        try:
            return Invocation(request_id, payload=self.invoke(function_id, event))
        except (Exception, Died) as exc:  # a failed invocation, as Lambda reports it
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return Invocation(request_id, error=error)

    @functools.cached_property
    def publishers(self) -> dict[str, StreamPoller]:
        """The publisher's event source mappings (the payments and the disputes streams) by
        table, each run by hand with `step()`."""
        return {
            event.table_id: StreamPoller(
                event, self.resources[event.table_id]["StreamArn"], self.invocation, self.clients
            )
            for event in self.functions["PublishOutcomesFunction"].stream_events
        }

    @property
    def publisher(self) -> StreamPoller:
        """The payments stream's event source mapping."""
        return self.publishers["PaymentsTable"]

    def skip_changes(self) -> None:
        """Move every stream past what earlier tests committed (a test that only wants its
        own outcomes)."""
        for poller in self.publishers.values():
            poller.skip()

    def settle(self) -> int:
        """What the deployed stack does in the background: publish every committed change of
        the payments and disputes tables, then append every queued outcome to the log.
        Returns how many outcome messages the log consumer took."""
        while sum(poller.step() for poller in self.publishers.values()):
            pass
        sqs, url = self.clients("sqs"), self.env["CASHEW_OUTCOMES_QUEUE_URL"]
        arn = self.resources["OutcomesQueue"]["Arn"]
        consumed = 0
        while messages := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages"):
            invocation = self.invocation("LogConsumerFunction", sqs_event(messages, arn))
            done = succeeded(messages, invocation, report_failures=True)
            assert len(done) == len(messages), invocation
            for message in done:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            consumed += len(done)
        return consumed


_SERVE = """
import signal, sys, threading
from local import aws
server, url = aws.start(int(sys.argv[1]))
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
server.stop()
"""


@contextlib.contextmanager
def _separate_endpoint() -> Iterator[str]:
    """An embedded endpoint in a process of its own: moto keeps its state per process, so
    this one shares nothing with the session's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, "-c", _SERVE, str(port)], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 60
        while not local_aws.is_listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the separate embedded endpoint did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def running_stack(*, separate: bool = False) -> Iterator[Stack]:
    """A new embedded endpoint provisioned from template.yaml, with this process's
    environment pointing at it until the block ends (then as it was before). `separate`:
    in a process of its own, sharing no state with any other endpoint of this process."""
    if separate:
        with _separate_endpoint() as endpoint:
            yield from _provisioned(endpoint)
        return
    server, endpoint = local_aws.start(0)
    try:
        yield from _provisioned(endpoint)
    finally:
        server.stop()


def _provisioned(endpoint: str) -> Iterator[Stack]:
    template = load_template()
    clients = local_aws.clients(endpoint)
    resources = provision(template, clients)
    saved = dict(os.environ)
    # The template's variables, as another stack of this process set them, would count as
    # the user's overrides (CASHEW_*): this stack's own values are computed without them.
    for name in template["Globals"]["Function"]["Environment"]["Variables"]:
        os.environ.pop(name, None)
    os.environ.update(stack_env(template, resources, endpoint))
    get_settings.cache_clear()
    aws.reset()
    try:
        yield Stack(endpoint, dict(os.environ), functions(template), clients, resources)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        aws.reset()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    """A stack of the module's own, for tests that read every account (the audit does): the
    session's holds hundreds of accounts by the time they run. A module uses it by defining
    its `stack` fixture as this one."""
    with running_stack(separate=True) as running:
        yield running


@dataclass
class User:
    id: str
    email: str
    access_token: str
    refresh_token: str
    session_id: str
    authorizer: dict[str, Any]


@pytest.fixture
def new_user(stack: Stack) -> Callable[..., User]:
    """Registers and logs in a fresh user; the authorizer context comes from the real
    authorizer run on the user's access token."""

    def make(name: str = "Test User") -> User:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        registered = stack.call(
            "RegisterFunction",
            "accounts/register.json",
            body={"email": email, "password": PASSWORD, "name": name},
        )
        assert registered.status == 201, registered.body
        return signed_in(stack, registered.body["id"], email)

    return make


def signed_in(stack: Stack, user_id: str, email: str) -> User:
    """The user, logged in; the authorizer context comes from the real authorizer run on
    their access token."""
    login = stack.call(
        "LoginFunction", "auth/login.json", body={"email": email, "password": PASSWORD}
    )
    assert login.status == 200, login.body
    return User(
        id=user_id,
        email=email,
        access_token=login.body["access_token"],
        refresh_token=login.body["refresh_token"],
        session_id=login.body["session_id"],
        authorizer=authorize(stack, login.body["access_token"])["context"],
    )


@pytest.fixture
def new_admin(stack: Stack) -> Callable[[], User]:
    """Creates an admin (as the operator's command does) and logs them in."""
    from cashew.auth.admins import create_admin

    def make() -> User:
        email = f"ops-{uuid.uuid4().hex[:12]}@example.com"
        admin, _ = create_admin(email, PASSWORD, "Ops")
        return signed_in(stack, admin.id, email)

    return make


def authorize(stack: Stack, token: str, method_arn: str | None = None) -> dict[str, Any]:
    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {token}",
        "methodArn": method_arn
        or "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/v1/users/me",
    }
    result: dict[str, Any] = stack.invoke("AuthorizerFunction", event)
    return result


def add_card(stack: Stack, user: User, number: str = "4242424242424242") -> str:
    reply = stack.call(
        "AddPaymentMethodFunction",
        "accounts/add_payment_method.json",
        body={"card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}},
        authorizer=user.authorizer,
    )
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def top_up(stack: Stack, user: User, method_id: str, amount: int, key: str | None = None) -> Reply:
    return stack.call(
        "CreateTopUpFunction",
        "payments/create_top_up.json",
        body={"amount": amount, "currency": "USD", "payment_method_id": method_id},
        authorizer=user.authorizer,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


def pay(
    stack: Stack, payer: User, payee_id: str, amount: int, key: str | None = None, **extra: Any
) -> Reply:
    body = {
        "amount": amount,
        "currency": "USD",
        "payee_id": payee_id,
        "source": {"type": "balance"},
        **extra,
    }
    return stack.call(
        "CreatePaymentFunction",
        "payments/create_payment.json",
        body=body,
        authorizer=payer.authorizer,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


def balance(stack: Stack, user: User, currency: str = "USD") -> int:
    reply = stack.call(
        "ListBalancesFunction", "accounts/list_balances.json", authorizer=user.authorizer
    )
    return next((b["available"] for b in reply.body["data"] if b["currency"] == currency), 0)


def take_messages(stack: Stack, queue_id: str) -> list[dict[str, Any]]:
    """Every message now on the template's queue, received (with its attributes) and deleted:
    a test that delivers them by hand, or wants its queue to itself."""
    sqs, url = stack.clients("sqs"), stack.resources[queue_id]["Ref"]
    taken: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages"):
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        taken += batch
    return taken


def call_with_id(
    stack: Stack, function_id: str, sample: str, resource_id: str, **variations: Any
) -> Reply:
    """Stack.call for a route with `{id}`: the sample with its path parameter and path filled
    in, as API Gateway does."""
    return stack.call(function_id, sample, path={"id": resource_id}, **variations)


def sandbox_token(stack: Stack, number: str = "4242424242424242", year: int = 2030) -> str:
    """A client token of the stack's sandbox gateway for `number` (what the local stack's
    POST /_sandbox/v1/tokens answers), issued under the stack's gateway secret."""
    from cashew.gateways.sandbox import SandboxGateway

    return SandboxGateway(secret=stack.gateway_webhook_secret()).issue_token(number, 12, year)


def add_card_by_token(stack: Stack, user: User, token: str) -> Reply:
    return stack.call(
        "AddPaymentMethodFunction",
        "accounts/add_payment_method.json",
        body={"gateway_token": token},
        authorizer=user.authorizer,
    )


def card_update_webhook(
    stack: Stack, charging_token: str, last4: str, exp_month: int, exp_year: int
) -> tuple[str, Callable[[], Reply]]:
    """The sandbox's signed card-update event for the method charged by `charging_token`: its
    event id, and its delivery to GatewayWebhookFunction (a reply)."""
    from cashew.gateways.base import sign_webhook

    event_id = f"evt_sbx_{uuid.uuid4().hex[:24]}"
    event = json.dumps({
        "id": event_id, "type": "payment_method.automatically_updated",
        "data": {"token": charging_token, "last4": last4, "exp_month": exp_month,
                 "exp_year": exp_year},
    })  # fmt: skip
    signature = sign_webhook(event.encode(), stack.gateway_webhook_secret(), int(time.time()))
    return event_id, lambda: stack.call(
        "GatewayWebhookFunction", "payments/gateway_webhook.json", raw_body=event,
        headers={"Gateway-Signature": signature},
    )  # fmt: skip
