"""Invoke Cashew's handlers in-process against the embedded AWS endpoint, counting AWS calls.

- `CallCounter` hooks botocore's `before-call` event on `cashew.aws.session()`, the one
  session every client of the layer is made from (DynamoDB, SQS, KMS, and Secrets Manager
  through the Powertools SecretsProvider that `cashew.aws` builds with its own client).
  botocore copies a session's hooks into a client when the client is created, so the counter
  first resets the layer (`cashew.aws.reset()`: no clients, no cached secrets, as in a new
  execution environment) and hooks the new session before any client exists. A call is one
  API operation, named `Service.Operation` (`DynamoDB.TransactWriteItems`); retries of the
  same call are not counted again.
- `local_stack()` starts an embedded endpoint, provisions template.yaml on it and points the
  process at it: os.environ is the stack's environment until the block exits.
- `Driver` plays the callers of the functions (API Gateway, the authorizer's caller, the SQS
  event source mapping): it builds each function's event from its events/ sample, with real
  ids, tokens and queue messages, and checks that the answer is the success path.

The driver works with any `Stack`: the one `local_stack()` yields, or a test fixture that
has the same `functions`, `clients` and `invoke`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from cashew import aws
from cashew.config import get_settings
from local import aws as local_aws
from local.api import authorizer_context
from local.consumers import sqs_event
from local.runtime import LambdaContext, WorkerConfig
from local.template import (
    REPO_ROOT,
    ClientFactory,
    FunctionSpec,
    Resources,
    functions,
    load_template,
    provision,
    stack_env,
)

EVENTS_DIR = REPO_ROOT / "events"
PASSWORD = "correct horse battery staple"
CARD_NUMBER = "4242424242424242"
CURRENCY = "USD"
_SQS_BATCH = 10  # the most messages one ReceiveMessage / *Batch request handles


class HarnessError(RuntimeError):
    """An invocation did not take the path the harness expected (or could not be set up)."""


# ----------------------------------------------------------------------------- counting
def call_name(model: Any) -> str:
    """`DynamoDB.TransactWriteItems` for the botocore OperationModel of a call."""
    service = str(model.service_model.service_id).replace(" ", "")
    return f"{service}.{model.name}"


class CallCounter:
    """Records the AWS API calls the layer makes inside `window()` blocks."""

    def __init__(self) -> None:
        self._session: Any = None
        self._window: list[str] | None = None

    def install(self) -> None:
        """Give the process a fresh layer whose session is hooked before any client exists."""
        self.uninstall()
        self._session = aws.session()
        self._session.events.register("before-call", self._before_call)

    def uninstall(self) -> None:
        """Drop the hooked session and every client and cached secret made with it."""
        if self._session is not None:
            self._session.events.unregister("before-call", self._before_call)
            self._session = None
        aws.reset()
        get_settings.cache_clear()

    @contextlib.contextmanager
    def window(self) -> Iterator[list[str]]:
        """The calls made inside the block, in order."""
        if self._session is None or aws.session() is not self._session:
            raise HarnessError("the counter is not installed on the layer's current session")
        calls: list[str] = []
        self._window = calls
        try:
            yield calls
        finally:
            self._window = None

    def _before_call(self, model: Any, **_: Any) -> None:
        # Returns None: a value would short-circuit the call (emit_until_response).
        if self._window is not None:
            self._window.append(call_name(model))


@contextlib.contextmanager
def counting() -> Iterator[CallCounter]:
    """An installed counter; the layer is reset again (unhooked) when the block exits."""
    counter = CallCounter()
    counter.install()
    try:
        yield counter
    finally:
        counter.uninstall()


# -------------------------------------------------------------------------------- stacks
class Stack(Protocol):
    """What the driver needs of a running stack."""

    @property
    def functions(self) -> dict[str, FunctionSpec]: ...

    @property
    def clients(self) -> ClientFactory: ...

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any: ...


@dataclass
class LocalStack:
    """template.yaml provisioned on an embedded endpoint; handlers run in this process."""

    endpoint: str
    resources: Resources
    functions: dict[str, FunctionSpec]
    clients: ClientFactory
    _handlers: dict[str, Callable[[Any, Any], Any]] = field(default_factory=dict)

    def handler(self, function_id: str) -> Callable[[Any, Any], Any]:
        """The function's handler; its module is loaded once, as in a warm environment."""
        if function_id not in self._handlers:
            spec = self.functions[function_id]
            for layer in reversed(spec.layer_dirs):
                if str(layer) not in sys.path:
                    sys.path.insert(0, str(layer))
            path = spec.code_dir / f"{spec.handler_module}.py"
            module_spec = importlib.util.spec_from_file_location(f"fn_{function_id}", path)
            if module_spec is None or module_spec.loader is None:
                raise HarnessError(f"cannot load {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            self._handlers[function_id] = getattr(module, spec.handler_attr)
        return self._handlers[function_id]

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        spec = self.functions[function_id]
        context = LambdaContext(WorkerConfig.of(spec, {}, False), str(uuid.uuid4()))
        return self.handler(function_id)(event, context)


@contextlib.contextmanager
def local_stack() -> Iterator[LocalStack]:
    """A provisioned embedded endpoint; os.environ and the layer are restored on exit."""
    server, endpoint = local_aws.start(0)
    saved = dict(os.environ)
    try:
        template = load_template()
        clients = local_aws.clients(endpoint)
        resources = provision(template, clients)
        os.environ.update(stack_env(template, resources, endpoint))
        aws.reset()
        get_settings.cache_clear()
        yield LocalStack(endpoint, resources, functions(template), clients)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()
        get_settings.cache_clear()
        server.stop()


# -------------------------------------------------------------------------------- driving
@dataclass(frozen=True)
class Account:
    """A registered, logged-in user and the authorizer context API Gateway passes for them."""

    id: str
    email: str
    access_token: str
    authorizer: dict[str, str]


@dataclass(frozen=True)
class Request:
    """One invocation: the function, its event, and what its caller does with the result
    (check it is the success path, and return the useful part)."""

    function_id: str
    event: dict[str, Any]
    complete: Callable[[Any], Any]


def unique_email() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}@example.com"


def _api_reply(function_id: str, status: int, payment_status: str | None, raw: Any) -> Any:
    if not isinstance(raw, dict) or raw.get("statusCode") != status:
        got = raw.get("statusCode") if isinstance(raw, dict) else raw
        detail = raw.get("body") if isinstance(raw, dict) else ""
        raise HarnessError(f"{function_id} answered {got}, expected {status}: {detail}")
    body = json.loads(raw["body"]) if raw.get("body") else None
    if payment_status is not None and (body or {}).get("status") != payment_status:
        raise HarnessError(f"{function_id}: the payment is not {payment_status}: {body}")
    return body


def _allowed_policy(raw: Any) -> dict[str, Any]:
    statements = raw.get("policyDocument", {}).get("Statement", []) if isinstance(raw, dict) else []
    if not any(statement.get("Effect") == "Allow" for statement in statements):
        raise HarnessError(f"the authorizer did not allow the token: {raw}")
    policy: dict[str, Any] = raw
    return policy


class Driver:
    """Builds realistic events for the functions of a stack and invokes them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def send(self, request: Request) -> Any:
        return request.complete(self.stack.invoke(request.function_id, request.event))

    # -- events
    def sample(self, function_id: str) -> dict[str, Any]:
        """A copy of the function's events/ sample (events/<CodeUri dir>/<module>.json)."""
        spec = self.stack.functions[function_id]
        return copy.deepcopy(_sample(spec.code_dir.name, spec.handler_module))

    def api_request(
        self,
        function_id: str,
        status: int,
        *,
        body: Any = None,
        caller: Account | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        payment_status: str | None = None,
    ) -> Request:
        """A REST proxy event for the function; its reply must have `status`."""
        event = self.sample(function_id)
        event["requestContext"]["requestId"] = str(uuid.uuid4())
        if body is not None:
            event["body"] = json.dumps(body)
        extra = dict(headers or {})
        if caller is None:
            event["requestContext"].pop("authorizer", None)
            for name in ("headers", "multiValueHeaders"):
                (event.get(name) or {}).pop("Authorization", None)
        else:
            event["requestContext"]["authorizer"] = dict(caller.authorizer)
            extra["Authorization"] = f"Bearer {caller.access_token}"
        for name, value in extra.items():
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
        if query is not None:
            event["queryStringParameters"] = dict(query) or None
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
        complete = functools.partial(_api_reply, function_id, status, payment_status)
        return Request(function_id, event, complete)

    # -- requests of the operations
    def register_request(self, email: str | None = None) -> Request:
        body = {"email": email or unique_email(), "password": PASSWORD, "name": "Bench User"}
        return self.api_request("RegisterFunction", 201, body=body)

    def login_request(self, email: str) -> Request:
        body = {"email": email, "password": PASSWORD}
        return self.api_request("LoginFunction", 200, body=body)

    def authorizer_request(self, access_token: str) -> Request:
        event = self.sample("AuthorizerFunction")
        event["authorizationToken"] = f"Bearer {access_token}"
        return Request("AuthorizerFunction", event, _allowed_policy)

    def add_card_request(self, caller: Account, number: str = CARD_NUMBER) -> Request:
        card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
        return self.api_request("AddPaymentMethodFunction", 201, body={"card": card}, caller=caller)

    def top_up_request(self, caller: Account, method_id: str, amount: int) -> Request:
        return self.api_request(
            "CreateTopUpFunction",
            201,
            body={"amount": amount, "currency": CURRENCY, "payment_method_id": method_id},
            caller=caller,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            payment_status="succeeded",
        )

    def payment_request(self, payer: Account, payee_id: str, amount: int) -> Request:
        """A balance payment that must succeed (the payer has the money)."""
        body = {
            "amount": amount,
            "currency": CURRENCY,
            "payee_id": payee_id,
            "source": {"type": "balance"},
            "description": "Dinner",
        }
        return self.api_request(
            "CreatePaymentFunction",
            201,
            body=body,
            caller=payer,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            payment_status="succeeded",
        )

    def consume_request(self, payment_id: str, expected: int = 1, timeout: float = 5.0) -> Request:
        """The log consumer's invocation for the `expected` outcome messages of one payment.

        The messages are received from the queue (the event is built from ReceiveMessage's
        answer, as Lambda's poller builds it); other messages received on the way are made
        visible again. The consumed messages are deleted once the batch succeeded.
        """
        sqs = self.stack.clients("sqs")
        url = os.environ["CASHEW_OUTCOMES_QUEUE_URL"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        mine: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while len(mine) < expected:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{len(mine)} of {expected} outcomes of {payment_id} queued")
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=_SQS_BATCH,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                for message in messages:
                    ours = _payment_id(message["Body"]) == payment_id
                    (mine if ours else others).append(message)
                if not messages:
                    time.sleep(0.05)
        finally:
            _release(sqs, url, others)
        event = sqs_event(mine, attributes["Attributes"]["QueueArn"])

        def complete(result: Any) -> Any:
            failures = result.get("batchItemFailures") if isinstance(result, dict) else None
            if failures != []:
                raise HarnessError(f"the log consumer failed items: {result}")
            _delete(sqs, url, mine)
            return result

        return Request("LogConsumerFunction", event, complete)

    # -- the set-up a scenario needs
    def new_account(self) -> Account:
        """Registers and logs in a new user; the context comes from the real authorizer."""
        email = unique_email()
        user = self.send(self.register_request(email))
        token = str(self.send(self.login_request(email))["access_token"])
        policy = self.send(self.authorizer_request(token))
        return Account(str(user["id"]), email, token, authorizer_context(policy))

    def add_card(self, caller: Account, number: str = CARD_NUMBER) -> str:
        return str(self.send(self.add_card_request(caller, number))["id"])

    def top_up(self, caller: Account, method_id: str, amount: int) -> dict[str, Any]:
        payment: dict[str, Any] = self.send(self.top_up_request(caller, method_id, amount))
        return payment

    def pay(self, payer: Account, payee_id: str, amount: int) -> dict[str, Any]:
        payment: dict[str, Any] = self.send(self.payment_request(payer, payee_id, amount))
        return payment


@functools.cache
def _sample_text(directory: str, module: str) -> str:
    return (EVENTS_DIR / directory / f"{module}.json").read_text(encoding="utf-8")


def _sample(directory: str, module: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(_sample_text(directory, module))
    return event


def _payment_id(body: str) -> str | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message.get("payment_id") if isinstance(message, dict) else None


def _batches(messages: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(messages), _SQS_BATCH):
        yield messages[start : start + _SQS_BATCH]


def _release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for batch in _batches(messages):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(batch)
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for batch in _batches(messages):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
