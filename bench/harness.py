"""Invoke Cashew's handlers in-process against the embedded AWS endpoint, counting AWS calls.

- `CallCounter` hooks botocore's `before-call` event on `cashew.aws.session()`, the one
  session every client of the layer is made from (DynamoDB, SQS, KMS, and Secrets Manager
  through the Powertools SecretsProvider that `cashew.aws` builds with its own client).
  botocore copies a session's hooks into a client when the client is created, so the counter
  first resets the layer (`cashew.aws.reset()`: no clients, no cached secrets, as in a new
  execution environment) and hooks the new session before any client exists. A call is one
  API operation, named `Service.Operation` (`DynamoDB.TransactWriteItems`); retries of the
  same call are not counted again. The counter also times each call, from its `before-call`
  to its `after-call` (or `after-call-error`) event: signing, sending, retries and parsing
  of the answer. That is the I/O time the bench takes out of the handler time. (The sandbox
  gateway makes no network calls: its calls are handler time. Its one HTTP request, the
  scheduling of a processing charge's webhook, is only made when CASHEW_SANDBOX_WEBHOOK_URL
  is set, which `local_stack()` makes sure it is not.)
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
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cashew import aws
from cashew.config import get_settings
from local import aws as local_aws
from local.api import authorizer_context
from local.cfn import Resources, load_template
from local.consumers import sqs_event, stream_event
from local.events import api_event, sample_of
from local.handlers import load_handler
from local.provision import ClientFactory, provision
from local.runtime import LambdaContext, WorkerConfig
from local.specs import FunctionSpec, functions, stack_env

PASSWORD = "correct horse battery staple"  # nosec B105 # bench user
CARD_NUMBER = "4242424242424242"
CURRENCY = "USD"
PROCESSING_CARD = "4000000000003220"  # the sandbox answers `processing`; a webhook settles it
NEW_PASSWORD = "a much longer passphrase now"  # nosec B105 # bench user
SANDBOX_WEBHOOK_URL = "CASHEW_SANDBOX_WEBHOOK_URL"
_SQS_BATCH = 10  # the most messages one ReceiveMessage / *Batch request handles


class HarnessError(RuntimeError):
    """An invocation did not take the path the harness expected (or could not be set up)."""


# ----------------------------------------------------------------------------- counting
def call_name(model: Any) -> str:
    """`DynamoDB.TransactWriteItems` for the botocore OperationModel of a call."""
    service = str(model.service_model.service_id).replace(" ", "")
    return f"{service}.{model.name}"


class CallLog(list[str]):
    """The calls made inside a window, in order, and `io_ms`: the milliseconds spent in them
    (from `before-call` to `after-call` or `after-call-error`, retries included)."""

    io_ms: float = 0.0


class CallCounter:
    """Records the AWS API calls the layer makes inside `window()` blocks, and times them."""

    def __init__(self) -> None:
        self._session: Any = None
        self._window: CallLog | None = None
        self._started: dict[int, float] = {}  # id(request context) -> perf_counter()
        self._hooks: tuple[tuple[str, Callable[..., None]], ...] = (
            ("before-call", self._before_call),
            ("after-call", self._after_call),  # also when AWS answers an error status
            ("after-call-error", self._after_call),  # sending failed (after the retries)
        )

    def install(self) -> None:
        """Give the process a fresh layer whose session is hooked before any client exists."""
        self.uninstall()
        self._session = aws.session()
        for event, handler in self._hooks:
            self._session.events.register(event, handler)

    def uninstall(self) -> None:
        """Drop the hooked session and every client and cached secret made with it."""
        if self._session is not None:
            for event, handler in self._hooks:
                self._session.events.unregister(event, handler)
            self._session = None
        aws.reset()
        get_settings.cache_clear()

    @contextlib.contextmanager
    def window(self) -> Iterator[CallLog]:
        """The calls made inside the block, in order, and the time spent in them."""
        if self._session is None or aws.session() is not self._session:
            raise HarnessError("the counter is not installed on the layer's current session")
        calls = CallLog()
        self._started.clear()
        self._window = calls
        try:
            yield calls
        finally:
            self._window = None
            self._started.clear()  # a call that raised before it was sent has no end event

    # The handlers return None: a value from a `before-call` handler would short-circuit
    # the call (emit_until_response). botocore passes the same request context to the
    # events of one call, so it pairs a call's start with its end.
    def _before_call(self, model: Any, context: Any = None, **_: Any) -> None:
        if self._window is not None:
            self._window.append(call_name(model))
            self._started[id(context)] = time.perf_counter()

    def _after_call(self, context: Any = None, **_: Any) -> None:
        started = self._started.pop(id(context), None)
        if self._window is not None and started is not None:
            self._window.io_ms += (time.perf_counter() - started) * 1000


@contextlib.contextmanager
def counting() -> Iterator[CallCounter]:
    """An installed counter; the layer is reset again (unhooked) when the block exits."""
    counter = CallCounter()
    counter.install()
    try:
        yield counter
    finally:
        counter.uninstall()


BENCH_VELOCITY_LIMITS = {
    "CASHEW_FRAUD_MAX_PAYMENTS_10MIN": "1000000",
    "CASHEW_FRAUD_MAX_AMOUNT_24H": "1000000000000",
}


# -------------------------------------------------------------------------------- stacks
class Stack(Protocol):
    """What the driver needs of a running stack."""

    @property
    def functions(self) -> dict[str, FunctionSpec]: ...

    @property
    def clients(self) -> ClientFactory: ...

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]: ...

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
            self._handlers[function_id] = self.new_instance(function_id, f"fn_{function_id}")
        return self._handlers[function_id]

    def new_instance(self, function_id: str, module_name: str) -> Callable[[Any, Any], Any]:
        """The function's handler from its module loaded anew as `module_name`: the module
        state of another execution environment."""
        return load_handler(self.functions[function_id], module_name)

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
        # The sandbox gateway would POST each processing charge's webhook there (real I/O
        # that no AWS call accounts for); the bench delivers the webhooks itself.
        os.environ.pop(SANDBOX_WEBHOOK_URL, None)
        os.environ.update(stack_env(template, resources, endpoint))
        # One payer makes hundreds of payments within minutes here; fraud screening's
        # velocity limits would block them (the calls made are the same either way).
        os.environ.update(BENCH_VELOCITY_LIMITS)
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

    @property
    def session_id(self) -> str:
        return self.authorizer["session_id"]


@dataclass(frozen=True)
class Request:
    """One invocation: the function, its event, and what its caller does with the result
    (check it is the success path, and return the useful part)."""

    function_id: str
    event: dict[str, Any]
    complete: Callable[[Any], Any]


def unique_email() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}@example.com"


def _api_reply(function_id: str, status: int, body_status: str | None, raw: Any) -> Any:
    if not isinstance(raw, dict) or raw.get("statusCode") != status:
        got = raw.get("statusCode") if isinstance(raw, dict) else raw
        detail = raw.get("body") if isinstance(raw, dict) else ""
        raise HarnessError(f"{function_id} answered {got}, expected {status}: {detail}")
    headers = {**(raw.get("headers") or {}), **{
        name: values[-1] for name, values in (raw.get("multiValueHeaders") or {}).items()
    }}  # fmt: skip
    if str(headers.get("Content-Type", "")).startswith("text/"):  # the CSV export
        return raw.get("body")
    body = json.loads(raw["body"]) if raw.get("body") else None
    if body_status is not None and (body or {}).get("status") != body_status:
        raise HarnessError(f"{function_id}: the answer's status is not {body_status}: {body}")
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
        self._stream_arn = str(stack.resources["PaymentsTable"]["StreamArn"])
        self._stream_checkpoint: str | None = None

    def send(self, request: Request) -> Any:
        return request.complete(self.stack.invoke(request.function_id, request.event))

    # -- events
    def sample(self, function_id: str) -> dict[str, Any]:
        """A copy of the function's events/ sample (events/<CodeUri dir>/<module>.json)."""
        return sample_of(self.stack.functions[function_id])

    def api_request(
        self,
        function_id: str,
        status: int,
        *,
        body: Any = None,
        raw_body: str | None = None,
        caller: Account | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        path: dict[str, str] | None = None,
        payment_status: str | None = None,
    ) -> Request:
        """A REST proxy event for the function; its reply must have `status` (and its body
        the `status` field `payment_status`, when given). `path` fills the resource's
        {name} parameters, as API Gateway does."""
        event = api_event(
            self.sample(function_id),
            body=body,
            raw_body=raw_body,
            authorizer=caller.authorizer if caller else None,
            token=caller.access_token if caller else None,
            headers=headers,
            query=query,
            path=path,
        )
        complete = functools.partial(_api_reply, function_id, status, payment_status)
        return Request(function_id, event, complete)

    # -- requests of the operations
    def register_request(self, email: str | None = None) -> Request:
        body = {"email": email or unique_email(), "password": PASSWORD, "name": "Bench User"}
        return self.api_request("RegisterFunction", 201, body=body)

    def login_request(self, email: str) -> Request:
        body = {"email": email, "password": PASSWORD}
        return self.api_request("LoginFunction", 200, body=body)

    def login_mfa_required_request(self, email: str) -> Request:
        """The first step of an MFA user's login: 401 `mfa_required` with its mfa_token."""
        body = {"email": email, "password": PASSWORD}
        event = self.api_request("LoginFunction", 401, body=body).event

        def complete(raw: Any) -> str:
            problem = _api_reply("LoginFunction", 401, None, raw)
            if not isinstance(problem, dict) or problem.get("code") != "mfa_required":
                raise HarnessError(f"LoginFunction: not mfa_required: {problem}")
            return str(problem["mfa_token"])

        return Request("LoginFunction", event, complete)

    def login_mfa_request(self, mfa_token: str, code: str) -> Request:
        body = {"mfa_token": mfa_token, "code": code}
        return self.api_request("LoginMfaFunction", 200, body=body)

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

    def payment_request(
        self,
        payer: Account,
        payee_id: str,
        amount: int,
        *,
        method_id: str | None = None,
        capture: bool = True,
        status: str = "succeeded",
    ) -> Request:
        """A payment whose answer must be `status`: from the balance (the payer has the
        money), or charged to the card `method_id` (`capture` false only authorises it)."""
        body: dict[str, Any] = {
            "amount": amount,
            "currency": CURRENCY,
            "payee_id": payee_id,
            "source": {"type": "balance"},
            "description": "Dinner",
        }
        if method_id is not None:
            body["source"] = {"type": "card", "payment_method_id": method_id}
            body["capture"] = capture
        return self.api_request(
            "CreatePaymentFunction",
            201,
            body=body,
            caller=payer,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            payment_status=status,
        )

    def payment_action_request(
        self,
        function_id: str,
        caller: Account,
        payment_id: str,
        *,
        status: int,
        result_status: str,
        body: dict[str, Any] | None = None,
    ) -> Request:
        """POST /v1/payments/{id}/capture, /cancel or /refunds, with a new idempotency key;
        the answer (the payment, or the refund) must be `result_status`."""
        return self.api_request(
            function_id,
            status,
            body=body or {},
            caller=caller,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            path={"id": payment_id},
            payment_status=result_status,
        )

    def refund_request(self, payee: Account, payment_id: str, amount: int) -> Request:
        """A refund by the payee that must succeed (the payee has the money)."""
        body = {"amount": amount, "reason": "requested_by_customer"}
        return self.payment_action_request(
            "CreateRefundFunction",
            payee,
            payment_id,
            status=201,
            result_status="succeeded",
            body=body,
        )

    def webhook_request(self, payment_id: str) -> Request:
        """The sandbox gateway's signed `charge.succeeded` webhook for a processing card
        payment; the payment must be settled (succeeded) afterwards."""
        from cashew.gateways.base import sign_webhook
        from cashew.payments import store  # after the stack's environment is set

        stored = store.get(payment_id)
        if stored is None or stored.payment.status != "processing":
            raise HarnessError(f"{payment_id} is not a processing payment")
        event = {
            "id": f"evt_sbx_{uuid.uuid4().hex[:24]}",
            "type": "charge.succeeded",
            "data": {
                "charge_id": stored.charge_id,
                "payment_id": payment_id,
                "status": "succeeded",
                "failure_code": None,
                "amount_captured": stored.payment.amount,
            },
        }
        body = json.dumps(event, separators=(",", ":"))
        secret_id = str(get_settings().gateway_secret_id)  # the stack's GatewaySecret
        value = self.stack.clients("secretsmanager").get_secret_value(SecretId=secret_id)
        secret = str(json.loads(value["SecretString"])["webhook_secret"])
        signature = sign_webhook(body.encode(), secret, int(time.time()))
        reply = self.api_request(
            "GatewayWebhookFunction",
            200,
            raw_body=body,
            headers={"Gateway-Signature": signature},
        )

        def complete(raw: Any) -> Any:
            result = reply.complete(raw)
            settled = store.get(payment_id)
            if settled is None or settled.payment.status != "succeeded":
                got = settled.payment.status if settled else None
                raise HarnessError(f"the webhook did not settle {payment_id}: it is {got}")
            return result

        return Request(reply.function_id, reply.event, complete)

    def _stream_records(self) -> list[dict[str, Any]]:
        """The payments stream's records since the last call (one shard, as locally)."""
        streams = self.stack.clients("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        where = (
            {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": self._stream_checkpoint,
            }
            if self._stream_checkpoint
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = streams.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=shards[0]["ShardId"], **where
        )["ShardIterator"]
        records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator)["Records"]
        if records:
            self._stream_checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
        return records

    def publish_request(self, payment_id: str) -> Request:
        """The publisher's invocation for the payments stream's records of one payment (and
        its refunds), as Lambda's poller delivers them; records of other payments read on
        the way are not published."""
        records = [r for r in self._stream_records() if _record_payment(r) == payment_id]
        if not records:
            raise HarnessError(f"no change of {payment_id} in the payments stream")
        event = stream_event(records, self._stream_arn)

        def complete(result: Any) -> Any:
            failures = result.get("batchItemFailures") if isinstance(result, dict) else None
            if failures != []:
                raise HarnessError(f"the publisher failed items: {result}")
            return result

        return Request("PublishOutcomesFunction", event, complete)

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

    def email_request(self, payment_id: str, timeout: float = 5.0) -> Request:
        """The email consumer's invocation for the bus event of one payment's outcome,
        received from EmailQueue (the events of other payments received on the way are
        deleted: nothing else consumes that queue here)."""
        from cashew.config import get_settings

        table = str(self.stack.resources["NotificationsTable"]["Ref"])
        if os.environ.get("CASHEW_NOTIFICATIONS_TABLE") != table:  # the function's own variable
            os.environ["CASHEW_NOTIFICATIONS_TABLE"] = table
            get_settings.cache_clear()
        sqs = self.stack.clients("sqs")
        url = str(self.stack.resources["EmailQueue"]["Ref"])
        mine: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not mine:
            if time.monotonic() > deadline:
                raise HarnessError(f"no bus event of {payment_id} on EmailQueue")
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=_SQS_BATCH, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            for message in messages:
                detail = json.loads(message["Body"]).get("detail", {})
                (mine if detail.get("id") == payment_id else []).append(message)
            _delete(sqs, url, [m for m in messages if m not in mine])
            if not messages:
                time.sleep(0.05)
        event = sqs_event(mine, str(self.stack.resources["EmailQueue"]["Arn"]))

        def complete(result: Any) -> Any:
            if not isinstance(result, dict) or result.get("batchItemFailures") != []:
                raise HarnessError(f"the email consumer failed items: {result}")
            _delete(sqs, url, mine)
            return result

        return Request("SendEmailsFunction", event, complete)

    # -- the set-up a scenario needs
    def new_account(self) -> Account:
        """Registers and logs in a new user; the context comes from the real authorizer."""
        email = unique_email()
        self.send(self.register_request(email))
        return self.sign_in(email)

    def new_admin(self) -> Account:
        """An admin, made as the operator's command makes one, and signed in."""
        from cashew.auth.admins import create_admin

        email = unique_email()
        create_admin(email, PASSWORD, "Bench Admin")
        return self.sign_in(email)

    def new_mfa_account(self) -> tuple[str, str]:
        """(email, TOTP secret) of a new user with MFA on (enrolled and confirmed with the
        current step's code: the next login takes the next step's)."""
        import pyotp

        account = self.new_account()
        body = {"password": PASSWORD}
        enrolled = self.send(self.api_request("MfaEnrolFunction", 200, caller=account, body=body))
        secret = str(enrolled["secret"])
        code = pyotp.TOTP(secret).now()
        self.send(self.api_request("MfaConfirmFunction", 200, caller=account, body={"code": code}))
        return account.email, secret

    def sign_in(self, email: str) -> Account:
        """A new session of the user; the context comes from the real authorizer."""
        token = str(self.send(self.login_request(email))["access_token"])
        policy = self.send(self.authorizer_request(token))
        context = authorizer_context(policy)
        return Account(context["user_id"], email, token, context)

    def add_card(self, caller: Account, number: str = CARD_NUMBER) -> str:
        return str(self.send(self.add_card_request(caller, number))["id"])

    def top_up(self, caller: Account, method_id: str, amount: int) -> dict[str, Any]:
        payment: dict[str, Any] = self.send(self.top_up_request(caller, method_id, amount))
        return payment

    def pay(
        self,
        payer: Account,
        payee_id: str,
        amount: int,
        *,
        method_id: str | None = None,
        capture: bool = True,
        status: str = "succeeded",
    ) -> dict[str, Any]:
        request = self.payment_request(
            payer, payee_id, amount, method_id=method_id, capture=capture, status=status
        )
        payment: dict[str, Any] = self.send(request)
        return payment


def _record_payment(record: dict[str, Any]) -> str | None:
    """The payment a record of the payments table's stream is about."""
    image = record["dynamodb"].get("NewImage", {})
    for name in ("payment_id", "pk"):  # a refund names its payment; a payment is its pk
        value = image.get(name, {}).get("S", "")
        if value.startswith("pay_"):
            return str(value)
    return None


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
